using System.Diagnostics;
using System.Threading.Channels;
using CoTeX.Contracts;
using CoTeX.Realtime.Hubs;
using CoTeX.ServiceDefaults;
using Microsoft.AspNetCore.SignalR;

namespace CoTeX.Realtime.Feeds;

/// <summary>
/// One client connection's event stream. Everything sent to the connection goes through one loop, in order:
/// the catch-up from Postgres, live events from Redis, and repairs from Postgres when a live event shows a hole
/// (positions are contiguous per user, so position p after p-2 means p-1 is missing). The loop tracks
/// <see cref="Covered"/>: every deliverable event up to it has been sent. A live event at or below it is a duplicate
/// and dropped. That is the whole exactly-once, in-order argument.
/// <para>
/// Tracing: a live event's send is a span in the trace of the webhook request that stored it; a catch-up is a span
/// of its own. The loop itself belongs to no request (not to the long-lived WebSocket request that started it).
/// </para>
/// </summary>
public sealed class ConnectionFeed
{
    private abstract record Command;
    private sealed record Start(long? From) : Command;
    private sealed record Live(GitHubEventSummary Event, ActivityContext Origin) : Command;
    private sealed record Resync : Command;

    private readonly Channel<Command> _commands;
    private readonly IHubContext<EventsHub> _hub;
    private readonly FeedQueries _queries;
    private readonly RealtimeOptions _options;
    private readonly FeedMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Action _abortConnection;
    private long _covered = -1;
    private volatile bool _needsResync;
    private volatile bool _caughtUp;

    public ConnectionFeed(string connectionId, Guid userId, Action abortConnection, IHubContext<EventsHub> hub,
        FeedQueries queries, RealtimeOptions options, FeedMetrics metrics, ILogger logger)
    {
        _abortConnection = abortConnection;
        ConnectionId = connectionId;
        UserId = userId;
        _hub = hub;
        _queries = queries;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _commands = Channel.CreateBounded<Command>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public string ConnectionId { get; }
    public Guid UserId { get; }

    /// <summary>Highest position up to which the client has everything it is entitled to; -1 before the start.</summary>
    public long Covered => Volatile.Read(ref _covered);

    /// <summary>Whether the client has been told it is caught up (<c>CaughtUp</c> or <c>Reset</c> sent): live from here.</summary>
    public bool IsCaughtUp => _caughtUp;

    /// <summary><see cref="Covered"/> at the previous sweep (<see cref="LiveEventRouter"/>).</summary>
    internal long CoveredAtLastSweep { get; set; } = -1;

    public void StartFrom(long? fromPosition) => Post(new Start(fromPosition));

    /// <param name="origin">The trace of the request that stored the event (default for none).</param>
    public void OnLive(GitHubEventSummary summary, ActivityContext origin) => Post(new Live(summary, origin));

    /// <summary>Bring the connection up to the user's latest position from Postgres (after Redis was away).</summary>
    public void RequestResync() => Post(new Resync());

    public void Complete() => _commands.Writer.TryComplete();

    /// <summary>Ends the feed and drops the connection without asking the client to come back (its account is closed).</summary>
    public void Close()
    {
        _commands.Writer.TryComplete();
        _abortConnection();
    }

    private void Post(Command command)
    {
        // A full queue means a slow client: drop, and catch it up from Postgres once it drains.
        if (!_commands.Writer.TryWrite(command))
        {
            _needsResync = true;
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Activity.Current = null;
        var client = _hub.Clients.Client(ConnectionId);
        try
        {
            await foreach (var command in _commands.Reader.ReadAllAsync(cancellationToken))
            {
                switch (command)
                {
                    case Start start:
                        await StartAsync(client, start.From, cancellationToken);
                        break;
                    case Live live when _covered >= 0:
                        await DeliverLiveAsync(client, live.Event, live.Origin, cancellationToken);
                        break;
                    case Resync when _covered >= 0:
                        _needsResync = true;
                        break;
                }
                if (_needsResync && _covered >= 0)
                {
                    _needsResync = false;
                    var position = await _queries.GetPositionAsync(UserId, cancellationToken);
                    await FillAsync(client, position.Current, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // Postgres or the connection failed: drop the connection; the client reconnects and resumes.
            FeedLog.FeedFailed(_logger, ex, ConnectionId);
            _commands.Writer.TryComplete();
            await AbortAsync(new ReconnectNotice("The server could not continue this feed; reconnect and resume.",
                ReconnectCodes.FeedFailed));
        }
    }

    private async Task StartAsync(IClientProxy client, long? from, CancellationToken cancellationToken)
    {
        var position = await _queries.GetPositionAsync(UserId, cancellationToken);
        if (from is null)
        {
            Volatile.Write(ref _covered, position.Current);
        }
        else if (from < 0 || from > position.Current || from < position.PrunedThrough)
        {
            Volatile.Write(ref _covered, position.Current);
            var reason = from > position.Current
                ? "The position is ahead of the server's; reload history."
                : "Events after this position have passed the retention window; reload history.";
            await client.SendAsync(RealtimeProtocol.Reset, new FeedReset(position.Current, reason), cancellationToken);
            _caughtUp = true;
            return;
        }
        else
        {
            Volatile.Write(ref _covered, from.Value);
            using var activity = CoTeXTelemetry.ActivitySource.StartActivity("catch up");
            activity?.SetTag("cotex.feed.from", from.Value).SetTag("cotex.feed.to", position.Current);
            await FillAsync(client, position.Current, cancellationToken);
        }
        await client.SendAsync(RealtimeProtocol.CaughtUp, new FeedPosition(_covered), cancellationToken);
        _caughtUp = true;
    }

    private async Task DeliverLiveAsync(IClientProxy client, GitHubEventSummary summary, ActivityContext origin,
        CancellationToken cancellationToken)
    {
        if (summary.Position <= _covered)
        {
            return; // sent already (catch-up or repair)
        }
        using var activity = origin == default
            ? null
            : CoTeXTelemetry.ActivitySource.StartActivity(SendSpanName, ActivityKind.Producer, origin);
        activity?.SetTag("messaging.system", "signalr")
            .SetTag("messaging.destination.name", RealtimeProtocol.Event)
            .SetTag("cotex.connection.id", ConnectionId)
            .SetTag("cotex.event.position", summary.Position);
        if (summary.Position > _covered + 1)
        {
            // Every position below a published one is committed: read the hole from Postgres.
            await FillAsync(client, summary.Position - 1, cancellationToken);
        }
        await client.SendAsync(RealtimeProtocol.Event, summary, cancellationToken);
        _metrics.SentLive();
        Volatile.Write(ref _covered, summary.Position);
    }

    private const string SendSpanName = "send " + RealtimeProtocol.Event;

    /// <summary>
    /// Sends every deliverable event after <see cref="Covered"/> up to <paramref name="upTo"/> (all committed), one
    /// range of <see cref="RealtimeOptions.CatchUpBatchSize"/> positions at a time (positions without a deliverable
    /// event, of paused or deleted repos, are covered too). The next range is read from Postgres while the current one
    /// is being sent.
    /// </summary>
    private async Task FillAsync(IClientProxy client, long upTo, CancellationToken cancellationToken)
    {
        Task<IReadOnlyList<GitHubEventSummary>>? Read(long after) =>
            after < upTo ? _queries.ReadAsync(UserId, after, RangeEnd(after), cancellationToken) : null;
        long RangeEnd(long after) => Math.Min(upTo, after + _options.CatchUpBatchSize);

        var next = Read(_covered);
        while (next is not null)
        {
            var batch = await next;
            var coveredAfter = RangeEnd(_covered);
            next = Read(coveredAfter);
            try
            {
                if (batch.Count > 0)
                {
                    await client.SendAsync(RealtimeProtocol.Events, batch, cancellationToken);
                    _metrics.SentCatchUp(batch.Count);
                }
            }
            catch
            {
                // The read under way is abandoned with the send; its failure, if any, is of no interest.
                _ = next?.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                throw;
            }
            Volatile.Write(ref _covered, coveredAfter);
        }
    }

    /// <summary>Tells the client to reconnect (and resume from its position), then closes the connection.</summary>
    public async Task AbortAsync(ReconnectNotice notice)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _hub.Clients.Client(ConnectionId).SendAsync(RealtimeProtocol.Reconnect, notice, timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The connection is going anyway.
        }
        _abortConnection();
    }

    /// <summary>
    /// SignalR is closing the connection because its token has expired (CloseOnAuthenticationExpiration, the only
    /// close it requests): tell the client why. This runs inside SignalR's close request and before SignalR's own
    /// handler of it (cancellation callbacks run last-registered-first, and the hub registers this after the
    /// handshake), so unless a send of the feed holds the connection's write lock at that moment the notice is written
    /// ahead of the close. Either way the connection closes and the client reconnects.
    /// </summary>
    public void OnTokenExpired()
    {
        FeedLog.TokenExpired(_logger, ConnectionId);
        var notice = new ReconnectNotice("The access token has expired; reconnect with a fresh one and resume.",
            ReconnectCodes.TokenExpired);
        _ = _hub.Clients.Client(ConnectionId).SendAsync(RealtimeProtocol.Reconnect, notice)
            .ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
    }
}

internal static partial class FeedLog
{
    [LoggerMessage(LogLevel.Warning, "Feed of connection {ConnectionId} failed; asking the client to reconnect")]
    public static partial void FeedFailed(ILogger logger, Exception exception, string connectionId);

    [LoggerMessage(LogLevel.Information, "The token of connection {ConnectionId} has expired; closing the connection")]
    public static partial void TokenExpired(ILogger logger, string connectionId);
}
