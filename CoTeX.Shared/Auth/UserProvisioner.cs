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
/// The reads are batched: checks that are not remembered queue in the process, and one loop reads the rows of all that
/// have queued (up to <see cref="MaxBatch"/>) in one statement on one pooled connection. In a storm each connect's
/// check used to take a connection of the replica's small pool for a one-row read, and connects that waited past the
/// pool's timeout were answered 503; now they wait here and share a read. A lone check runs at once. The rare write
/// (a new user, changed claims, an hour gone by) is the caller's own, on its own connection, as before: a write can
/// wait on the user's row lock (billing holds it while it calls Stripe), and that must hold up that user's request
/// only, not every check in the process. A read never waits on a row lock.
/// </para>
/// </summary>
public sealed partial class UserProvisioner : IDisposable
{
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(5);

    /// <summary>How stale <c>users.last_seen_at</c> may be (the admin list shows it) before a check writes it again.</summary>
    public static readonly TimeSpan LastSeenPrecision = TimeSpan.FromHours(1);

    /// <summary>The most checks one read serves; the rest wait for the next (a few milliseconds).</summary>
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
        // A singleton: created by the first service that needs it, it serves until the host disposes it. Not in the
        // creator's context: a request's trace must not become the parent of every batch's query.
        using (ExecutionContext.SuppressFlow())
        {
            _ = Task.Run(ServeAsync);
        }
    }

    /// <summary>What the read found of a user's row, for the claims of one token.</summary>
    private enum Standing { Current, NeedsWrite, Deleted }

    /// <summary>One caller's check, waiting for the batch read.</summary>
    private sealed record Check(Guid UserId, string? Email, bool Anonymous, CancellationToken Cancellation)
    {
        public TaskCompletionSource<Standing> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
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

        var check = new Check(userId, email, anonymous, cancellationToken);
        if (!_queue.Writer.TryWrite(check))
        {
            throw new ObjectDisposedException(nameof(UserProvisioner));
        }
        // A caller that gives up (its request aborted) stops waiting; the rest of its batch is served all the same.
        var standing = await check.Result.Task.WaitAsync(cancellationToken);
        if (standing == Standing.Deleted || (standing == Standing.NeedsWrite && !await WriteAsync(check, cancellationToken)))
        {
            return false; // a tombstone
        }
        _cache.Set(Key(userId), (email, anonymous, generation),
            new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = Remember, Size = 1 });
        return true;
    }

    /// <summary>
    /// Forgets a user this process has seen (after their account is closed). A check of theirs under way may have read
    /// the row before it was deleted and would remember it after this; so what every check under way learns is not
    /// trusted either (as after <see cref="ForgetAll"/>): a closing is rare, and a re-read costs a share of a batch.
    /// </summary>
    public void Forget(Guid userId)
    {
        Interlocked.Increment(ref _generation);
        _cache.Remove(Key(userId));
    }

    /// <summary>Forgets every user this process has seen: each one's next request is checked against the database.</summary>
    public void ForgetAll() => Interlocked.Increment(ref _generation);

    /// <summary>Stops the loop: the read in flight and any still queued fail as cancelled.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _stopping.Cancel();
    }

    private static (string, Guid) Key(Guid userId) => (nameof(UserProvisioner), userId);

    /// <summary>
    /// Takes everything queued (up to <see cref="MaxBatch"/>) while the previous read was in the database, so there
    /// is no timer: under load batches grow by themselves, and without load a check is a batch of one.
    /// </summary>
    private async Task ServeAsync()
    {
        var batch = new List<Check>(MaxBatch);
        try
        {
            await ServeBatchesAsync(batch);
        }
        catch (Exception ex)
        {
            // Nothing should get here; if something does, no check may wait for a loop that is gone.
            LogLoopFailed(_logger, ex);
            _queue.Writer.TryComplete(ex);
            foreach (var check in batch)
            {
                check.Result.TrySetException(ex);
            }
            while (_queue.Reader.TryRead(out var check))
            {
                check.Result.TrySetException(ex);
            }
        }
    }

    private async Task ServeBatchesAsync(List<Check> batch)
    {
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
                await ReadBatchAsync(batch);
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

    private async Task ReadBatchAsync(List<Check> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        Dictionary<Guid, (Guid Id, bool Deleted, string? Email, bool Anonymous, bool SeenLately)> rows;
        // The connection goes back to the pool before the callers go on: those that must write need one.
        await using (var connection = await _dataSource.OpenConnectionAsync(_stopping.Token))
        {
            rows = (await connection.QueryAsync<(Guid Id, bool Deleted, string? Email, bool Anonymous, bool SeenLately)>(
                new CommandDefinition(
                    """
                    select id, deleted_at is not null, email, is_anonymous, last_seen_at > now() - @precision
                      from users where id = any(@ids)
                    """,
                    new { ids = batch.Select(c => c.UserId).Distinct().ToArray(), precision = LastSeenPrecision },
                    cancellationToken: _stopping.Token)))
                .ToDictionary(r => r.Id);
        }
        foreach (var check in batch)
        {
            check.Result.TrySetResult(rows.TryGetValue(check.UserId, out var row)
                ? row.Deleted ? Standing.Deleted
                : row.Email == check.Email && row.Anonymous == check.Anonymous && row.SeenLately ? Standing.Current
                : Standing.NeedsWrite
                : Standing.NeedsWrite); // a new user
        }
        LogBatch(_logger, batch.Count);
    }

    /// <returns>False when the row is a tombstone (deleted since the read, or before it): nothing was written.</returns>
    private async Task<bool> WriteAsync(Check check, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            """
            insert into users (id, email, is_anonymous) values (@UserId, @Email, @Anonymous)
            on conflict (id) do update
                set email = excluded.email, is_anonymous = excluded.is_anonymous, last_seen_at = now()
                where users.deleted_at is null
            returning true
            """,
            new { check.UserId, check.Email, check.Anonymous }, cancellationToken: cancellationToken));
    }

    [LoggerMessage(LogLevel.Debug, "Read the rows of {CheckCount} token checks in one statement")]
    private static partial void LogBatch(ILogger logger, int checkCount);

    [LoggerMessage(LogLevel.Critical, "The loop serving token checks failed; checks that miss the memory fail from now on")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(LogLevel.Warning, "A read of {CheckCount} token checks' users failed; their requests fail")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, int checkCount);
}
