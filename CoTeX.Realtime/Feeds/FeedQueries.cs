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
    /// </summary>
    public async Task<IReadOnlyList<GitHubEventSummary>> ReadAsync(Guid userId, long after, long upTo, int limit,
        CancellationToken cancellationToken)
    {
        await using var slot = await AcquireAsync(cancellationToken);
        var connection = slot.Connection;
        var rows = await connection.QueryAsync<GitHubEventRows.SummaryRow>(new CommandDefinition(
            $"""
            select {GitHubEventRows.SummaryColumns}
              from github_events e join tracked_repos r on r.id = e.repo_id
             where e.user_id = @userId and e.seq > @after and e.seq <= @upTo and not r.paused
             order by e.seq
             limit @limit
            """,
            new { userId, after, upTo, limit }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToContract()).ToList();
    }
}
