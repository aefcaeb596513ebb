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
/// some of its clients to reconnect (<see cref="ReconnectCodes.Rebalance"/>), at most
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
    TimeProvider time,
    ILogger<ReplicaBalancer> logger) : BackgroundService
{
    /// <summary>How far above its share a replica may be before it moves clients: 10% (and at least one connection).</summary>
    public const double Tolerance = 0.1;

    private static readonly ReconnectNotice Notice =
        new("This server holds more than its share of connections; reconnect and resume.", ReconnectCodes.Rebalance);

    public string ReplicaId { get; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>The replicas of one deployment share its database; several deployments (or test runs) may share a Redis.</summary>
    private readonly string _scope = Scope(dataSource.ConnectionString);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(options.Value.HeartbeatSeconds);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var next = time.GetUtcNow() + interval;
                try
                {
                    var counts = await BeatAsync();
                    var excess = Excess(counts[0], counts);
                    var budget = (int)Math.Ceiling(options.Value.RebalancePerSecond * interval.TotalSeconds);
                    if (excess > 0 && budget > 0)
                    {
                        LogRebalancing(logger, counts[0], counts.Count, Math.Min(excess, budget));
                        await MoveAsync(Math.Min(excess, budget), interval, stoppingToken);
                    }
                }
                catch (Exception ex) when (RedisFailures.IsOutage(ex))
                {
                    // Redis is away; the next beat will do.
                }
                if (next > time.GetUtcNow())
                {
                    await Task.Delay(next - time.GetUtcNow(), time, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
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

    /// <summary>When each peer's heartbeat was last read: a peer counts only while its heartbeat keeps moving.</summary>
    private readonly Dictionary<string, DateTimeOffset> _peerBeats = [];

    /// <summary>
    /// Publishes this replica's count; returns the counts of the deployment's replicas that are alive, this one's
    /// first. A peer is alive when its heartbeat has moved since the last round: a crashed or frozen replica's last
    /// count stays in Redis for <see cref="OpsCounters.HeartbeatLifetime"/>, and moving clients toward it in a
    /// reconnect storm would only send them back into the storm.
    /// </summary>
    private async Task<IReadOnlyList<int>> BeatAsync()
    {
        var db = redis.GetDatabase();
        var now = time.GetUtcNow();
        var own = registry.Count;
        await db.HashSetAsync(OpsCounters.RealtimeConnections, ReplicaId, OpsCounters.FormatHeartbeat(own, now, _scope));
        var counts = new List<int> { own };
        foreach (var entry in await db.HashGetAllAsync(OpsCounters.RealtimeConnections))
        {
            var name = entry.Name.ToString();
            if (OpsCounters.ParseHeartbeat(entry.Value) is not { } beat || now - beat.At >= OpsCounters.HeartbeatLifetime)
            {
                // Gone (crashed, or stopped before it could say so): nobody reads it any more.
                _peerBeats.Remove(name);
                _ = db.HashDeleteAsync(OpsCounters.RealtimeConnections, name, CommandFlags.FireAndForget);
                continue;
            }
            if (name == ReplicaId || beat.Scope != _scope)
            {
                continue;
            }
            if (_peerBeats.TryGetValue(name, out var previous) && beat.At > previous)
            {
                counts.Add(beat.Connections);
            }
            _peerBeats[name] = beat.At;
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

    /// <summary>Asks <paramref name="count"/> caught-up clients to reconnect, spread over <paramref name="period"/>.</summary>
    private async Task MoveAsync(int count, TimeSpan period, CancellationToken stoppingToken)
    {
        // Only feeds that have started: one still catching up would throw its catch-up away.
        var feeds = registry.All.Where(f => f.Covered >= 0).Take(count).ToArray();
        var pause = period / Math.Max(1, feeds.Length);
        foreach (var feed in feeds)
        {
            _ = feed.AbortAsync(Notice);
            await Task.Delay(pause, time, stoppingToken);
        }
    }

    /// <summary>The deployment a replica serves, as its heartbeat names it: the database's host, port and name.</summary>
    public static string Scope(string connectionString)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{settings.Host}:{settings.Port}/{settings.Database}";
    }

    [LoggerMessage(LogLevel.Information,
        "Rebalancing: {ConnectionCount} connections here, more than a fair share across {ReplicaCount} replicas; asking {MovedCount} clients to reconnect")]
    private static partial void LogRebalancing(ILogger logger, int connectionCount, int replicaCount, int movedCount);
}
