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
    /// check of every connect and the sweeps need a connection too, and at 16 a reconnect storm's feeds took all 15,
    /// so connects waited out the pool's timeout and were answered 503 (docs/benchmarks/scale.md, storm).
    /// </summary>
    [Range(1, 1000)]
    public int MaxConcurrentQueries { get; set; } = 10;
}
