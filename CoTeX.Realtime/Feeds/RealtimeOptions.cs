using System.ComponentModel.DataAnnotations;

namespace CoTeX.Realtime.Feeds;

/// <summary>Bound from <c>Realtime</c>.</summary>
public sealed class RealtimeOptions
{
    public const string Section = "Realtime";

    /// <summary>Positions per read, and so at most events per <c>Events</c> message, during catch-up and gap repair.</summary>
    [Range(1, 5000)]
    public int CatchUpBatchSize { get; set; } = 500;

    /// <summary>
    /// Live events queued per connection for a slow client. Past this, live events are dropped and the connection is
    /// brought up to date from Postgres instead, so a slow client costs bounded memory and still misses nothing.
    /// </summary>
    [Range(1, 100_000)]
    public int QueueCapacity { get; set; } = 256;

    /// <summary>
    /// How often every connection is checked against its user's latest position in Postgres: the safety net for
    /// announcements lost while Redis was away.
    /// </summary>
    [Range(1, 3600)]
    public int SweepSeconds { get; set; } = 10;

    /// <summary>
    /// Postgres queries feeds may run at once on this replica. Thousands of clients reconnecting together (a replica
    /// restart) queue here instead of exhausting Postgres' connection slots (measured: 10,000 reconnects hit
    /// "too many clients" without it). Keep it below the replica's pool (<c>Database:MaxPoolSize</c>, 15): the token
    /// checks of the connects (their reads share one connection, <c>UserProvisioner</c>; a check that writes takes
    /// its own) and the sweeps need connections too, and at 16 a reconnect storm's feeds took all 15, so connects waited out the pool's timeout and were
    /// answered 503 (docs/benchmarks/scale.md, storm).
    /// </summary>
    [Range(1, 1000)]
    public int MaxConcurrentQueries { get; set; } = 10;

    /// <summary>
    /// Client connections (WebSockets) the replica holds at once; past it Kestrel refuses the upgrade and the client
    /// backs off and tries another replica. Each connection is an open file: a replica that reaches its open-file limit
    /// exits ("Out of memory.", docs/benchmarks/scale.md) instead of refusing. 0 (the default): the process' open-file
    /// limit, less <see cref="ReservedFiles"/> for everything else. When set, keep it that far below <c>ulimit -n</c>.
    /// </summary>
    [Range(0, 10_000_000)]
    public int MaxConnections { get; set; }

    /// <summary>
    /// How often a replica publishes its connection count to Redis and compares it with the other replicas'
    /// (<see cref="ReplicaBalancer"/>). A peer whose heartbeat has not moved since the previous round is not counted.
    /// </summary>
    [Range(1, 10)]
    public int HeartbeatSeconds { get; set; } = 5;

    /// <summary>
    /// Clients per second a replica holding more than its share of the deployment's connections asks to reconnect
    /// elsewhere (<see cref="ReplicaBalancer"/>), so a restarted or added replica takes load back without a herd.
    /// 0: never.
    /// </summary>
    [Range(0, 100_000)]
    public int RebalancePerSecond { get; set; } = 100;

    /// <summary>Open files kept for what is not a client connection: requests not yet upgraded, Postgres, Redis, logs.</summary>
    public const int ReservedFiles = 2048;

    /// <summary>The connection limit in force (null: none known, e.g. no /proc).</summary>
    public long? ConnectionLimit() =>
        MaxConnections > 0 ? MaxConnections
        : OpenFileLimit() is { } files ? Math.Max(1, files - ReservedFiles)
        : null;

    /// <summary>The soft RLIMIT_NOFILE of this process, from /proc/self/limits (Linux; null elsewhere or unlimited).</summary>
    private static long? OpenFileLimit()
    {
        const string Path = "/proc/self/limits";
        if (!File.Exists(Path))
        {
            return null;
        }
        // "Max open files            20000                20000                files"
        var line = File.ReadLines(Path).FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var soft = line?["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return long.TryParse(soft, out var limit) ? limit : null;
    }
}
