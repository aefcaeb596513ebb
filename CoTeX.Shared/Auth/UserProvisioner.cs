using System.Security.Claims;
using System.Threading.Channels;
using Dapper;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CoTeX.Shared.Auth;

/// <summary>
/// Creates the user row the first time a user's token is seen, and keeps email, anonymity and last-seen time current.
/// A process remembers whom it has checked for a few minutes, so a busy user costs one check per few minutes, not one
/// per request; and the check writes only when something changed or the row's last-seen time is over an hour old
/// (<see cref="LastSeenPrecision"/>), so thousands of clients reconnecting at once (a replica lost) cost reads, not
/// committed writes (docs/benchmarks/scale.md, storm).
/// <para>
/// The checks that are not remembered queue in the process, and one loop serves all that have queued (up to
/// <see cref="MaxBatch"/>) with one read and at most one write, on one pooled connection. In a storm each connect's
/// check used to take a connection of the replica's small pool for a one-row read, and connects that waited past the
/// pool's timeout were answered 503; now they wait here, and many share a read and a write. A lone check runs at once.
/// </para>
/// </summary>
public sealed partial class UserProvisioner : IDisposable
{
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(5);

    /// <summary>How stale <c>users.last_seen_at</c> may be (the admin list shows it) before a check writes it again.</summary>
    public static readonly TimeSpan LastSeenPrecision = TimeSpan.FromHours(1);

    /// <summary>The most checks one round trip serves; the rest wait for the next (a few milliseconds).</summary>
    public const int MaxBatch = 500;

    private readonly NpgsqlDataSource _dataSource;
    private readonly IMemoryCache _cache;
    private readonly ILogger<UserProvisioner> _logger;
    private readonly Channel<Check> _queue = Channel.CreateUnbounded<Check>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>What is remembered is only trusted while this has not moved (see <see cref="ForgetAll"/>).</summary>
    private long _generation;

    public UserProvisioner(NpgsqlDataSource dataSource, IMemoryCache cache, ILogger<UserProvisioner> logger)
    {
        (_dataSource, _cache, _logger) = (dataSource, cache, logger);
        // A singleton: created by the first service that needs it, it serves until the host disposes it.
        _ = Task.Run(ServeAsync);
    }

    /// <summary>One caller's check: the token's claims, and the generation read before asking the database.</summary>
    private sealed class Check(Guid userId, string? email, bool anonymous, long generation, CancellationToken cancellation)
    {
        public Guid UserId { get; } = userId;
        public string? Email { get; } = email;
        public bool Anonymous { get; } = anonymous;
        public long Generation { get; } = generation;
        public CancellationToken Cancellation { get; } = cancellation;
        public TaskCompletionSource<bool> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <returns>False when the account was deleted: its tokens must be refused.</returns>
    public async Task<bool> EnsureUserAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var userId = principal.GetUserId();
        var email = principal.FindFirst(CurrentUser.EmailClaim)?.Value;
        var anonymous = principal.IsAnonymous();

        // Read before the database is asked: a ForgetAll from now on makes what this check learns untrusted.
        var generation = Interlocked.Read(ref _generation);
        if (_cache.TryGetValue(Key(userId), out (string? Email, bool Anonymous, long Generation) known)
            && known == (email, anonymous, generation))
        {
            return true;
        }

        var check = new Check(userId, email, anonymous, generation, cancellationToken);
        if (!_queue.Writer.TryWrite(check))
        {
            throw new ObjectDisposedException(nameof(UserProvisioner));
        }
        // A caller that gives up (its request aborted) stops waiting; the rest of its batch is served all the same.
        return await check.Result.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Forgets a user this process has seen (after their account is closed).</summary>
    public void Forget(Guid userId) => _cache.Remove(Key(userId));

    /// <summary>Forgets every user this process has seen: each one's next request is checked against the database.</summary>
    public void ForgetAll() => Interlocked.Increment(ref _generation);

    /// <summary>Stops the loop: the batch in flight and any still queued fail as cancelled.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _stopping.Cancel();
    }

    private static (string, Guid) Key(Guid userId) => (nameof(UserProvisioner), userId);

    /// <summary>
    /// Takes everything queued (up to <see cref="MaxBatch"/>) while the previous batch was in the database, so there
    /// is no timer: under load batches grow by themselves, and without load a check is a batch of one.
    /// </summary>
    private async Task ServeAsync()
    {
        var batch = new List<Check>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var check))
            {
                if (!check.Cancellation.IsCancellationRequested) // its caller has stopped waiting
                {
                    batch.Add(check);
                }
            }
            try
            {
                await CheckBatchAsync(batch);
            }
            catch (Exception ex)
            {
                // Its callers get the error (their requests fail, an outage as a 503); the next batch starts afresh.
                if (!_stopping.IsCancellationRequested)
                {
                    LogBatchFailed(_logger, ex, batch.Count);
                }
                foreach (var check in batch)
                {
                    check.Result.TrySetException(ex);
                }
            }
            batch.Clear();
        }
    }

    private async Task CheckBatchAsync(List<Check> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        // A user connecting twice at once appears twice; the statements take each user once (an upsert may not touch a
        // row twice), with the claims of the token that queued last.
        var users = batch.GroupBy(c => c.UserId).Select(g => g.Last()).ToList();

        await using var connection = await _dataSource.OpenConnectionAsync(_stopping.Token);
        var rows = (await connection.QueryAsync<(Guid Id, bool Active, bool Current)>(new CommandDefinition(
            """
            select u.id, u.deleted_at is null,
                   u.email is not distinct from c.email and u.is_anonymous = c.anonymous and u.last_seen_at > now() - @precision
              from unnest(@ids, @emails, @anonymous) as c (id, email, anonymous)
              join users u on u.id = c.id
            """,
            Arrays(users, new { precision = LastSeenPrecision }), cancellationToken: _stopping.Token)))
            .ToDictionary(r => r.Id);

        var active = users.Where(u => rows.TryGetValue(u.UserId, out var row) && row is { Active: true, Current: true })
            .Select(u => u.UserId).ToHashSet();
        // New users, and live ones whose claims changed or who were last seen long ago; never a tombstone.
        var stale = users.Where(u => !rows.TryGetValue(u.UserId, out var row) || row is { Active: true, Current: false }).ToList();
        if (stale.Count > 0)
        {
            // In id order, so two processes writing overlapping batches lock the rows in the same order (no deadlock).
            // A row deleted since the read is not updated and not returned: a tombstone.
            active.UnionWith(await connection.QueryAsync<Guid>(new CommandDefinition(
                """
                insert into users (id, email, is_anonymous)
                select id, email, anonymous from unnest(@ids, @emails, @anonymous) as c (id, email, anonymous) order by id
                on conflict (id) do update
                    set email = excluded.email, is_anonymous = excluded.is_anonymous, last_seen_at = now()
                    where users.deleted_at is null
                returning id
                """,
                Arrays(stale), cancellationToken: _stopping.Token)));
        }
        LogBatch(_logger, batch.Count, stale.Count, users.Count(u => !active.Contains(u.UserId)));

        foreach (var user in users.Where(u => active.Contains(u.UserId)))
        {
            _cache.Set(Key(user.UserId), (user.Email, user.Anonymous, user.Generation),
                new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = Remember, Size = 1 });
        }
        foreach (var check in batch)
        {
            check.Result.TrySetResult(active.Contains(check.UserId));
        }
    }

    private static DynamicParameters Arrays(List<Check> users, object? more = null)
    {
        var parameters = new DynamicParameters(more);
        parameters.Add("ids", users.Select(u => u.UserId).ToArray());
        parameters.Add("emails", users.Select(u => u.Email).ToArray());
        parameters.Add("anonymous", users.Select(u => u.Anonymous).ToArray());
        return parameters;
    }

    [LoggerMessage(LogLevel.Debug, "Checked {CheckCount} token users in one batch: {WriteCount} needed a write, {RefusedCount} refused")]
    private static partial void LogBatch(ILogger logger, int checkCount, int writeCount, int refusedCount);

    [LoggerMessage(LogLevel.Warning, "A batch of {CheckCount} token user checks failed; its requests fail")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int checkCount);
}
