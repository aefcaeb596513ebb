using StackExchange.Redis;

namespace CoTeX.Shared.Events;

/// <summary>
/// Numbers that live in one process but are read by another (the Api's admin stats): each Realtime replica's
/// connection count (a heartbeat), and the Worker's Stripe drift corrections.
/// </summary>
public static class OpsCounters
{
    public static readonly RedisKey RealtimeConnections = "cotex:ops:realtime-connections";
    public static readonly RedisKey DriftCorrections = "cotex:ops:billing-drift-corrections";

    /// <summary>A replica's entry counts as live for this long after its last heartbeat.</summary>
    public static readonly TimeSpan HeartbeatLifetime = TimeSpan.FromSeconds(30);

    public static string FormatHeartbeat(int connections, DateTimeOffset at) => $"{connections}|{at.ToUnixTimeSeconds()}";

    public static (int Connections, DateTimeOffset At)? ParseHeartbeat(string? value)
    {
        var parts = value?.Split('|');
        return parts is [var count, var at] && int.TryParse(count, out var c) && long.TryParse(at, out var seconds)
            ? (c, DateTimeOffset.FromUnixTimeSeconds(seconds))
            : null;
    }
}
