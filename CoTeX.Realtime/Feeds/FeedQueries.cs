using CoTeX.Contracts;
using CoTeX.Shared.Events;
using Dapper;
using Npgsql;

namespace CoTeX.Realtime.Feeds;

/// <summary>What a feed reads from Postgres: a user's position and the events they are entitled to after a position.</summary>
public sealed class FeedQueries(NpgsqlDataSource dataSource, Microsoft.Extensions.Options.IOptions<RealtimeOptions> options)
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentQueries);

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try
        {
            return await dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    /// <summary>A connection that gives its query slot back when disposed.</summary>
    private sealed class Slot(NpgsqlConnection connection, SemaphoreSlim slots) : IAsyncDisposable
    {
        public NpgsqlConnection Connection { get; } = connection;

        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            slots.Release();
        }
    }

    private async Task<Slot> AcquireAsync(CancellationToken cancellationToken) => new(await OpenAsync(cancellationToken), _slots);

    public sealed record UserPosition(long Current, long PrunedThrough);

    // A catch-up read is two statements in one round trip: the user's repos that deliver, then their events in a range
    // of positions. Not one join: a cached plan is made again whenever the statistics of a table it reads change, and
    // every delivery stamps its repo, so under load autovacuum analyses tracked_repos about once a minute; each time,
    // every pooled connection planned the join over all daily partitions again (~8 ms). Apart, the events' plan does
    // not depend on tracked_repos, and a page costs less (2.0-2.4 + 0.2 ms against 3.7-4.8 ms for the join, which also
    // scanned every user's repos; docs/benchmarks.md).
    private const string ReadReposSql = "select id, full_name from tracked_repos where user_id = $1 and not paused";

    private const string ReadEventsSql = """
        select id, seq, repo_id, event_type, action, sender, title, html_url, received_at
          from github_events
         where user_id = $1 and seq > $2 and seq <= $3
         order by seq
        """;

    public async Task<UserPosition> GetPositionAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var slot = await AcquireAsync(cancellationToken);
        var connection = slot.Connection;
        var row = await connection.QuerySingleOrDefaultAsync<(long Current, long PrunedThrough)?>(new CommandDefinition(
            "select last_event_seq, pruned_through_seq from users where id = @userId",
            new { userId }, cancellationToken: cancellationToken));
        return row is { } found ? new UserPosition(found.Current, found.PrunedThrough) : new UserPosition(0, 0);
    }

    /// <summary>Each user's latest position, and whether their account is closed, in one query (the periodic sweep).</summary>
    public async Task<Dictionary<Guid, (long Position, bool Closed)>> GetPositionsAsync(Guid[] userIds, CancellationToken cancellationToken)
    {
        await using var slot = await AcquireAsync(cancellationToken);
        var connection = slot.Connection;
        var rows = await connection.QueryAsync<(Guid Id, long Position, bool Closed)>(new CommandDefinition(
            "select id, last_event_seq, deleted_at is not null from users where id = any(@userIds)", new { userIds },
            cancellationToken: cancellationToken));
        return rows.ToDictionary(r => r.Id, r => (r.Position, r.Closed));
    }

    /// <summary>
    /// The user's deliverable events with <paramref name="after"/> &lt; position ≤ <paramref name="upTo"/>, oldest
    /// first. Events of paused repos are not deliverable (they stay readable over REST).
    /// <para>
    /// Callers page by position ranges of at most <see cref="RealtimeOptions.CatchUpBatchSize"/>, not with LIMIT:
    /// positions are unique per user, so a range of n positions holds at most n events, whatever plan Postgres picks.
    /// With <c>order by seq limit n</c> over the whole rest, a partition whose statistics were not yet analysed got a
    /// plan that read and sorted every remaining event for each page, and 10,000 events took ~1 s instead of ~0.3 s
    /// (docs/benchmarks.md).
    /// </para>
    /// </summary>
    public async Task<IReadOnlyList<GitHubEventSummary>> ReadAsync(Guid userId, long after, long upTo,
        CancellationToken cancellationToken)
    {
        await using var slot = await AcquireAsync(cancellationToken);
        await using var batch = ReadBatch(slot.Connection, userId, after, upTo);
        // Prepared once per physical connection (PrepareConnectionAsync), then reused: planning the events' read over
        // two weeks of daily partitions cost ~1.5 ms per page, as much as running it.
        await batch.PrepareAsync(cancellationToken);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var repos = new Dictionary<Guid, string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            repos[reader.GetGuid(0)] = reader.GetString(1);
        }
        await reader.NextResultAsync(cancellationToken);
        var events = new List<GitHubEventSummary>((int)Math.Min(upTo - after, 1024));
        string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
        while (await reader.ReadAsync(cancellationToken))
        {
            if (repos.TryGetValue(reader.GetGuid(2), out var fullName)) // else the repo is paused
            {
                events.Add(new GitHubEventRows.SummaryRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetGuid(2), fullName,
                    reader.GetString(3), Text(4), Text(5), Text(6), Text(7), reader.GetDateTime(8)).ToContract());
            }
        }
        return events;
    }

    private static NpgsqlBatch ReadBatch(NpgsqlConnection connection, Guid userId, long after, long upTo) =>
        new(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(ReadReposSql) { Parameters = { new NpgsqlParameter<Guid> { TypedValue = userId } } },
                new NpgsqlBatchCommand(ReadEventsSql)
                {
                    Parameters =
                    {
                        new NpgsqlParameter<Guid> { TypedValue = userId },
                        new NpgsqlParameter<long> { TypedValue = after },
                        new NpgsqlParameter<long> { TypedValue = upTo },
                    },
                },
            },
        };

    /// <summary>
    /// Every connection of the pool ready for catch-up reads (<see cref="PrepareConnectionAsync"/>), and generic plans
    /// for the prepared reads: a custom plan is made for a prepared statement's first five runs on a connection, and
    /// planning the catch-up read over every daily partition cost 2–9 ms a page (~0.1 ms to bind the generic plan). The
    /// plans here do not depend on the values: index ranges on (user_id, seq) and primary-key lookups.
    /// </summary>
    public static void ConfigureDataSource(NpgsqlDataSourceBuilder dataSource)
    {
        var options = dataSource.ConnectionStringBuilder.Options;
        dataSource.ConnectionStringBuilder.Options = $"{options} -c plan_cache_mode=force_generic_plan".Trim();
        dataSource.UsePhysicalConnectionInitializer(PrepareConnection, PrepareConnectionAsync);
    }

    /// <summary>
    /// Readies a new physical connection for catch-up: prepares the reads and runs them once, for no one. A backend's
    /// first plan of the events' read loads the catalog entries of every daily partition and their indexes: ~25 ms of
    /// Postgres CPU, against ~2 ms for a page on a backend that has done it. The pool hands its idle connections out in
    /// turn, so without this a catch-up of 10,000 events met a cold backend on nearly every page once the pool had
    /// grown, and took twice as long (docs/benchmarks.md). Before the migrations have created the tables there is
    /// nothing to prepare.
    /// </summary>
    public static async Task PrepareConnectionAsync(NpgsqlConnection connection)
    {
        try
        {
            await using var batch = ReadBatch(connection, Guid.Empty, 0, 0);
            await batch.PrepareAsync();
            await using var reader = await batch.ExecuteReaderAsync();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
        }
    }

    /// <inheritdoc cref="PrepareConnectionAsync"/>
    public static void PrepareConnection(NpgsqlConnection connection)
    {
        try
        {
            using var batch = ReadBatch(connection, Guid.Empty, 0, 0);
            batch.Prepare();
            using var reader = batch.ExecuteReader();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
        }
    }
}
