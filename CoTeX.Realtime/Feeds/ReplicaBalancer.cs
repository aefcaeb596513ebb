using CoTeX.Contracts;
using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;

namespace CoTeX.Realtime.Feeds;

/// <summary>
/// Every few seconds: publishes this replica's connection count to Redis (the Api's admin stats show it), reads the
/// counts of the other replicas of the same deployment, and when this replica holds clearly more than its share, asks
/// some of its caught-up clients to reconnect (<see cref="ReconnectCodes.Rebalance"/>), at most
/// <see cref="RealtimeOptions.RebalancePerSecond"/>. Connected clients otherwise stay where they are: a replica that
/// restarts after a crash, or one a scale-out adds, would get no clients until they reconnect for some other reason
/// (docs/benchmarks/scale.md, the storm). A client asked to move resumes from its position on whichever replica the
/// load balancer picks, so moving it costs a connect and an empty catch-up, and loses nothing.
/// </summary>
public sealed partial class ReplicaBalancer(
    IConnectionMultiplexer redis,
    FeedRegistry registry,
    NpgsqlDataSource dataSource,
    IOptions<RealtimeOptions> options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<ReplicaBalancer> logger) : BackgroundService
{
    /// <summary>How far above its share a replica may be before it moves clients: 10% (and at least one connection).</summary>
    public const double Tolerance = 0.1;

    /// <summary>The most rounds a replica waits after moves that did not lower its count (see <see cref="Settle"/>).</summary>
    private const int MaxQuietRounds = 16;

    private static readonly ReconnectNotice Notice =
        new("This server holds more than its share of connections; reconnect and resume.", ReconnectCodes.Rebalance);

    public string ReplicaId { get; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>The replicas of one deployment share its database; several deployments (or test runs) may share a Redis.</summary>
    private readonly string _scope = OpsCounters.DeploymentScope(dataSource.ConnectionString);

    /// <summary>Each peer's heartbeat as last read: a peer counts only while its heartbeat keeps moving.</summary>
    private readonly Dictionary<string, DateTimeOffset> _peerBeats = [];

    /// <summary>This replica's count before its last moves, and how many it moved; null when it moved none.</summary>
    private (int Before, int Moved)? _lastMoves;
    private int _quietRounds;
    private int _backoff = 1;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Stop as soon as the replica starts shutting down, before SignalR closes the connections (ShutdownNotifier):
        // a replica on its way out must not look like an empty peer to the others, nor move clients itself.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lifetime.ApplicationStopping);
        var interval = TimeSpan.FromSeconds(options.Value.HeartbeatSeconds);
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                var next = time.GetUtcNow() + interval;
                try
                {
                    await RoundAsync(interval, stopping.Token);
                }
                catch (Exception ex) when (RedisFailures.IsOutage(ex))
                {
                    // Redis is away; the next beat will do.
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Housekeeping: it must never stop the replica.
                    LogRoundFailed(logger, ex);
                }
                var wait = next - time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time, stopping.Token);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        try
        {
            await redis.GetDatabase().HashDeleteAsync(OpsCounters.RealtimeConnections, ReplicaId);
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
        }
    }

    private async Task RoundAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        var counts = await BeatAsync();
        if (!Settle(counts[0]))
        {
            return;
        }
        var budget = (int)Math.Ceiling(options.Value.RebalancePerSecond * interval.TotalSeconds);
        var moving = Math.Min(Excess(counts[0], counts), budget);
        if (moving > 0)
        {
            LogRebalancing(logger, counts[0], counts.Count, moving);
            _lastMoves = (counts[0], await MoveAsync(moving, interval, cancellationToken));
        }
    }

    /// <summary>
    /// Whether this round may move clients. Moves that did not lower this replica's count by a quarter of what it moved
    /// (half come back through a random load balancer; all do when the peer is counted but gets no connections: not
    /// ready, at its connection limit) make it wait, twice as long each time up to <see cref="MaxQuietRounds"/>, so a
    /// peer that takes no clients costs a few moves, not a hundred a second forever.
    /// </summary>
    private bool Settle(int own)
    {
        if (_lastMoves is { } last)
        {
            _lastMoves = null;
            if (last.Before - own < (last.Moved + 3) / 4)
            {
                _quietRounds = _backoff;
                _backoff = Math.Min(_backoff * 2, MaxQuietRounds);
            }
            else
            {
                _backoff = 1;
            }
        }
        if (_quietRounds > 0)
        {
            _quietRounds--;
            return false;
        }
        return true;
    }

    /// <summary>
    /// Publishes this replica's count; returns the counts of the deployment's replicas that are alive, this one's
    /// first. A peer is alive when its heartbeat has moved since the previous round: a crashed or frozen replica's last
    /// count stays in Redis for <see cref="OpsCounters.HeartbeatLifetime"/>, and moving clients toward it in a
    /// reconnect storm would only send them back into the storm. (A round that reads a live peer before its next beat
    /// leaves it out: with two replicas that round moves nobody.)
    /// </summary>
    private async Task<IReadOnlyList<int>> BeatAsync()
    {
        var db = redis.GetDatabase();
        var now = time.GetUtcNow();
        var own = registry.Count;
        await db.HashSetAsync(OpsCounters.RealtimeConnections, ReplicaId, OpsCounters.FormatHeartbeat(own, now, _scope));
        var counts = new List<int> { own };
        var seen = new HashSet<string>();
        foreach (var entry in await db.HashGetAllAsync(OpsCounters.RealtimeConnections))
        {
            var name = entry.Name.ToString();
            if (OpsCounters.ParseHeartbeat(entry.Value) is not { } beat || now - beat.At >= OpsCounters.HeartbeatLifetime)
            {
                // Gone (crashed, or stopped before it could say so), or garbled: nobody reads it any more.
                _ = db.HashDeleteAsync(OpsCounters.RealtimeConnections, name, CommandFlags.FireAndForget);
                continue;
            }
            if (name == ReplicaId || beat.Scope != _scope)
            {
                continue;
            }
            seen.Add(name);
            if (_peerBeats.TryGetValue(name, out var previous) && beat.At > previous)
            {
                counts.Add(beat.Connections);
            }
            _peerBeats[name] = beat.At;
        }
        // Peers that left (or whose entries were deleted) are forgotten here too.
        foreach (var gone in _peerBeats.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _peerBeats.Remove(gone);
        }
        return counts;
    }

    /// <summary>
    /// How many connections a replica holding <paramref name="own"/> should move this round, given every live replica's
    /// count (its own among them): half the way down to its share (the mean, rounded up), when it is more than
    /// <see cref="Tolerance"/> above it.
    /// </summary>
    public static int Excess(int own, IReadOnlyCollection<int> counts)
    {
        if (counts.Count < 2)
        {
            return 0;
        }
        var share = (int)Math.Ceiling(counts.Sum(c => (long)c) / (double)counts.Count);
        var excess = own - share;
        // Half of it, rounded up: the peers' counts are a round old, so moving all of it would overshoot.
        return excess > 0 && excess > share * Tolerance ? (excess + 1) / 2 : 0;
    }

    /// <summary>
    /// Asks up to <paramref name="count"/> caught-up clients to reconnect, spread over <paramref name="period"/>; returns
    /// how many it asked. A client still catching up is left alone: moving it would throw its catch-up away.
    /// </summary>
    private async Task<int> MoveAsync(int count, TimeSpan period, CancellationToken cancellationToken)
    {
        var feeds = registry.All.Where(f => f.IsCaughtUp).Take(count).ToArray();
        var pause = period / Math.Max(1, feeds.Length);
        foreach (var feed in feeds)
        {
            _ = feed.AbortAsync(Notice); // it handles its own failures: the connection is going anyway
            await Task.Delay(pause, time, cancellationToken);
        }
        return feeds.Length;
    }

    [LoggerMessage(LogLevel.Information,
        "Rebalancing: {ConnectionCount} connections here, more than a fair share across {ReplicaCount} replicas; asking {MovedCount} clients to reconnect")]
    private static partial void LogRebalancing(ILogger logger, int connectionCount, int replicaCount, int movedCount);

    [LoggerMessage(LogLevel.Warning, "A round of the replica balancer failed; the next one will try again")]
    private static partial void LogRoundFailed(ILogger logger, Exception exception);
}
