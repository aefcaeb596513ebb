using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using CoTeX.Contracts;
using CoTeX.ServiceDefaults;
using CoTeX.Shared.Events;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>Whom an event is stored for: a user, and their tracked repo it arrived for.</summary>
public sealed record Recipient(Guid RepoId, Guid UserId, string FullName);

public sealed record IncomingGitHubEvent(
    Recipient Recipient, string DeliveryId, string EventType, ParsedGitHubEvent Fields, byte[] Payload);

public enum StoreOutcome
{
    Stored,
    Duplicate,
    RepoGone,
    /// <summary>Not stored: too many deliveries are already waiting for the database.</summary>
    Busy,
}

public sealed record StoreResult(
    StoreOutcome Outcome, long Id = 0, long Position = 0, DateTimeOffset ReceivedAt = default, bool RepoPaused = false);

/// <summary>
/// Stores deliveries through the database function <c>ingest_github_events</c>, defined in
/// <c>CoTeX.Shared/Data/Functions/ingest_github_events.sql</c>, which holds the ingest rules (read them there; they are
/// enforced in the database, in the same statement as the insert):
/// <list type="bullet">
/// <item>Dedupe: a delivery whose (repo, delivery id) was stored before (<c>github_deliveries</c>, kept for the
/// retention window), or earlier in the same batch, is <see cref="StoreOutcome.Duplicate"/> and stores nothing.</item>
/// <item>A repo that no longer exists for its user is <see cref="StoreOutcome.RepoGone"/> and stores nothing.</item>
/// <item>Positions: each stored event takes its user's next position, contiguous per user in input order; a duplicate
/// or a vanished repo takes none. The user rows are locked first, sorted, so a user's positions commit in order and two
/// batches cannot deadlock (Realtime relies on both).</item>
/// <item>Paused repos: their events are stored and deduplicated like any other's; the function returns the repo's
/// <c>paused</c>, and this store announces live only the events of active repos (<see cref="StoreResult.RepoPaused"/>).</item>
/// <item>Each stored delivery stamps its repo's <c>last_delivery_at</c> (a ping also <c>last_ping_at</c>).</item>
/// </list>
/// <para>
/// Group commit: deliveries that arrive while a commit is under way are queued and written together in one batch —
/// one statement, one transaction, one WAL flush — and each caller is answered once that transaction has committed.
/// Then the batch's stored events are announced to Realtime in one message. One writer per Api process, so a user's positions are announced in
/// commit order, and the batches grow with the load (measured in docs/benchmarks.md: four writers made batches of
/// about four deliveries and cost more database time per delivery than one writer with batches of about twenty; two
/// writers partitioned by user, which never wait on each other's row locks, still lost on two shared cores).
/// A batch that fails on one bad row is retried delivery by delivery, so one delivery cannot fail its neighbours.
/// </para>
/// <para>
/// A delivery is one event, or (from the GitHub App) the same event for each of the repo's followers: those are
/// written in the same transaction, each into its user's own positions, and answered together. Their payload is sent
/// once and stored once (<c>github_event_payloads</c>, migration 0009), which each follower's row references.
/// </para>
/// <para>
/// Tracing: each batch is a span (<c>ingest batch</c>) whose parent is the first delivery's request and which links
/// the others; the statement and the announcement to Realtime are its children, and each announced event carries its
/// own request's trace context to the Realtime replicas. So a lone webhook is one trace from the request to the
/// client, and under load every request's trace still reaches the replicas' sends.
/// </para>
/// </summary>
public sealed class GitHubEventStore : IAsyncDisposable
{
    private const string Sql = "select o_outcome, o_id, o_position, o_received_at, o_paused from ingest_github_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    private const int MaxBatch = 128;
    // Payloads go up to 25 MB; a batch stops growing past this many payload bytes, and always takes at least one delivery.
    private const long MaxBatchBytes = 16 * 1024 * 1024;

    /// <param name="Events">One delivery's events (more than one when the GitHub App's delivery has several followers).</param>
    /// <param name="Origin">The span of the request that delivered the event (default when there was none).</param>
    /// <param name="Deadline">Until when the write may be retried while the database is unavailable.</param>
    private sealed record Pending(IncomingGitHubEvent[] Events, TaskCompletionSource<StoreResult[]> Result, ActivityContext Origin,
        DateTimeOffset Deadline)
    {
        // The events of one delivery share its payload: held in memory once, sent to Postgres once (and stored once
        // when it has more than one follower: ingest_github_events).
        public int Bytes => Events[0].Payload.Length;
    }

    private readonly NpgsqlDataSource _dataSource;
    private readonly LiveEventPublisher _publisher;
    private readonly GitHubWebhookOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<GitHubEventStore> _logger;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Histogram<int> _batchSizes;
    private readonly List<(Pending, StoreResult[])> _committed = new(MaxBatch); // the writer's, reused batch to batch
    private readonly Task _writer;
    private int _pendingDeliveries;
    private long _pendingBytes;

    public GitHubEventStore(NpgsqlDataSource dataSource, LiveEventPublisher publisher, IOptions<GitHubWebhookOptions> options,
        IMeterFactory meters, TimeProvider time, ILogger<GitHubEventStore> logger)
    {
        _dataSource = dataSource;
        _publisher = publisher;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _batchSizes = meters.Create(CoTeXTelemetry.Name).CreateHistogram<int>("cotex.ingest.batch.size", "{delivery}",
            "Deliveries written per group-committed batch",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128] });
        _writer = Task.Run(WriteAsync);
    }

    /// <summary>
    /// Returns once the delivery is committed (or known to be a duplicate, or its repo gone), or at once with
    /// <see cref="StoreOutcome.Busy"/> when too many deliveries are waiting already. While the database is unavailable
    /// its batch is retried until <paramref name="deadline"/> (<see cref="DatabaseRetry"/>); then it fails.
    /// </summary>
    public async Task<StoreResult> StoreAsync(IncomingGitHubEvent incoming, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        (await StoreAsync([incoming], deadline, cancellationToken))[0];

    /// <summary>
    /// One delivery's events (all with the same payload), written in one transaction; the results in the same order.
    /// As <see cref="StoreAsync(IncomingGitHubEvent, DateTimeOffset, CancellationToken)"/> otherwise.
    /// </summary>
    public Task<StoreResult[]> StoreAsync(IncomingGitHubEvent[] events, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var size = events[0].Payload.Length;
        var deliveries = Interlocked.Increment(ref _pendingDeliveries);
        var bytes = Interlocked.Add(ref _pendingBytes, size);
        if (deliveries > _options.MaxPendingDeliveries || bytes > _options.MaxPendingBytes)
        {
            Release(size);
            return Task.FromResult(events.Select(_ => new StoreResult(StoreOutcome.Busy)).ToArray());
        }
        var pending = new Pending(events, new TaskCompletionSource<StoreResult[]>(TaskCreationOptions.RunContinuationsAsynchronously),
            Activity.Current?.Context ?? default, deadline);
        if (!_queue.Writer.TryWrite(pending))
        {
            Release(size);
            throw new ObjectDisposedException(nameof(GitHubEventStore), "The service is shutting down.");
        }
        // The caller may stop waiting; the write itself goes on (a retry by GitHub is then a duplicate).
        return pending.Result.Task.WaitAsync(cancellationToken);
    }

    private void Release(int size)
    {
        Interlocked.Decrement(ref _pendingDeliveries);
        Interlocked.Add(ref _pendingBytes, -size);
    }

    private async Task WriteAsync()
    {
        // The writer outlives the request that happened to create the store; its spans belong to its batches.
        Activity.Current = null;
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            long bytes = 0;
            var events = 0;
            while (events < MaxBatch && bytes < MaxBatchBytes && _queue.Reader.TryRead(out var next))
            {
                batch.Add(next);
                bytes += next.Bytes;
                events += next.Events.Length;
            }
            await CommitAsync(batch);
            foreach (var pending in batch)
            {
                Release(pending.Bytes);
            }
            batch.Clear();
        }
    }

    /// <summary>Writes one batch, announces what was stored, then answers every caller in it.</summary>
    private async Task CommitAsync(List<Pending> taken)
    {
        // A delivery whose deadline passed while it waited is answered 503 without a write: every attempt ends at its
        // delivery's deadline (DatabaseRetry), and the batch's is its oldest delivery's, so one stale delivery would
        // otherwise fail its fresh neighbours without trying.
        var now = _time.GetUtcNow();
        var batch = taken;
        if (taken.Exists(p => p.Deadline <= now))
        {
            foreach (var late in taken.Where(p => p.Deadline <= now))
            {
                late.Result.TrySetException(new ServiceUnavailableException(
                    "The database did not take this delivery before its deadline; it was not stored. Retry later."));
            }
            batch = taken.Where(p => p.Deadline > now).ToList();
            if (batch.Count == 0)
            {
                return;
            }
        }
        using var activity = StartBatchActivity(batch);
        _batchSizes.Record(batch.Count);
        var committed = _committed;
        try
        {
            // Until the oldest delivery's deadline: a batch that succeeds after all may already have committed once,
            // and then answers "duplicate", which is still the truth (the event is stored).
            var results = await DatabaseRetry.RunAsync(token => ExecuteAsync(batch, token), _dataSource,
                batch.Min(p => p.Deadline), _time, _logger);
            var next = 0;
            foreach (var pending in batch)
            {
                committed.Add((pending, results[next..(next += pending.Events.Length)]));
            }
        }
        catch (PostgresException) when (batch.Count > 1)
        {
            // One row the database refused rolled back the batch: go delivery by delivery.
            foreach (var pending in batch)
            {
                try
                {
                    committed.Add((pending, await DatabaseRetry.RunAsync(token => ExecuteAsync([pending], token), _dataSource,
                        pending.Deadline, _time, _logger)));
                }
                catch (Exception ex)
                {
                    pending.Result.TrySetException(ex);
                }
            }
        }
        catch (Exception ex)
        {
            activity?.AddException(ex).SetStatus(ActivityStatusCode.Error, ex.Message);
            foreach (var pending in batch)
            {
                pending.Result.TrySetException(ex);
            }
        }
        Announce(committed);
        foreach (var (pending, result) in committed)
        {
            pending.Result.TrySetResult(result);
        }
        committed.Clear();
    }

    private static Activity? StartBatchActivity(List<Pending> batch)
    {
        if (!CoTeXTelemetry.ActivitySource.HasListeners())
        {
            return null;
        }
        var links = batch.Skip(1).Where(p => p.Origin != default).Select(p => new ActivityLink(p.Origin)).ToList();
        return CoTeXTelemetry.ActivitySource.StartActivity("ingest batch", ActivityKind.Internal, batch[0].Origin,
            [new("cotex.batch.size", batch.Count)], links);
    }

    /// <summary>The batch's stored events, in commit order; a paused repo (over the plan's limit) delivers nothing live.</summary>
    private void Announce(List<(Pending Pending, StoreResult[] Results)> committed)
    {
        var live = new List<LiveGitHubEvent>(committed.Count);
        foreach (var (pending, results) in committed)
        {
            for (var i = 0; i < results.Length; i++)
            {
                if (results[i] is { Outcome: StoreOutcome.Stored, RepoPaused: false } result)
                {
                    var (recipient, _, eventType, fields, _) = pending.Events[i];
                    live.Add(new LiveGitHubEvent(recipient.UserId, new GitHubEventSummary(result.Id, result.Position,
                        recipient.RepoId, recipient.FullName, eventType, fields.Action, fields.Sender, fields.Title, fields.HtmlUrl, result.ReceivedAt),
                        LiveEvents.ToTraceParent(pending.Origin)));
                }
            }
        }
        _publisher.Publish(live);
    }

    /// <summary>
    /// One batch, one statement, one implicit transaction (<c>ingest_github_events</c>, Data/Functions): the results,
    /// one per event in order, are returned after it has committed.
    /// </summary>
    private async Task<StoreResult[]> ExecuteAsync(List<Pending> pendings, CancellationToken cancellationToken)
    {
        var all = pendings.Count == 1 ? pendings[0].Events : pendings.SelectMany(p => p.Events).ToArray();
        var n = all.Length;
        var repoIds = new Guid[n];
        var userIds = new Guid[n];
        var deliveryIds = new string[n];
        var eventTypes = new string[n];
        var actions = new string?[n];
        var senders = new string?[n];
        var titles = new string?[n];
        var htmlUrls = new string?[n];
        // Each delivery's payload once, and each event's (1-based) index into them: the followers of an app delivery
        // share one.
        var payloadRefs = new int[n];
        var payloads = new byte[pendings.Count][];
        for (int p = 0, i = 0; p < pendings.Count; p++)
        {
            payloads[p] = pendings[p].Events[0].Payload;
            foreach (var _ in pendings[p].Events)
            {
                payloadRefs[i++] = p + 1;
            }
        }
        for (var i = 0; i < n; i++)
        {
            var incoming = all[i];
            repoIds[i] = incoming.Recipient.RepoId;
            userIds[i] = incoming.Recipient.UserId;
            deliveryIds[i] = incoming.DeliveryId;
            eventTypes[i] = incoming.EventType;
            actions[i] = Text(incoming.Fields.Action);
            senders[i] = Text(incoming.Fields.Sender);
            titles[i] = Text(incoming.Fields.Title);
            htmlUrls[i] = Text(incoming.Fields.HtmlUrl);
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(Sql, connection);
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = repoIds });
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = userIds });
        command.Parameters.Add(new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = deliveryIds });
        command.Parameters.Add(new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = eventTypes });
        command.Parameters.Add(TextArray(actions));
        command.Parameters.Add(TextArray(senders));
        command.Parameters.Add(TextArray(titles));
        command.Parameters.Add(TextArray(htmlUrls));
        command.Parameters.Add(new NpgsqlParameter<int[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, TypedValue = payloadRefs });
        // The payloads as delivered (bytea, migration 0007: Postgres does not parse them into jsonb), each once (0009).
        command.Parameters.Add(new NpgsqlParameter<byte[][]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, TypedValue = payloads });

        // Prepared once per pooled connection, then reused: parsing and planning this call each time cost ~0.9 ms.
        await command.PrepareAsync(cancellationToken);
        var results = new StoreResult[n];
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        for (var i = 0; i < n; i++)
        {
            await reader.ReadAsync(cancellationToken);
            results[i] = reader.GetString(0) switch
            {
                "stored" => new StoreResult(StoreOutcome.Stored, reader.GetInt64(1), reader.GetInt64(2),
                    reader.GetFieldValue<DateTimeOffset>(3), reader.GetBoolean(4)),
                "duplicate" => new StoreResult(StoreOutcome.Duplicate),
                _ => new StoreResult(StoreOutcome.RepoGone),
            };
        }
        return results;
    }

    // Postgres text cannot hold NUL; a payload field carrying one is stored without it.
    private static string? Text(string? value) => value?.Replace("\0", "", StringComparison.Ordinal);

    private static NpgsqlParameter<string?[]> TextArray(string?[] values) =>
        new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = values };

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer;
    }
}
