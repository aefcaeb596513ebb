using Npgsql;
using StackExchange.Redis;

namespace CoTeX.Shared.Events;

/// <summary>
/// Numbers that live in one process but are read by another: each Realtime replica's connection count (a heartbeat
/// that the Api's admin stats show and that the replicas balance their connections by), and the Worker's Stripe drift
/// corrections.
/// </summary>
public static class OpsCounters
{
    public static readonly RedisKey RealtimeConnections = "cotex:ops:realtime-connections";
    public static readonly RedisKey DriftCorrections = "cotex:ops:billing-drift-corrections";

    /// <summary>A replica's entry counts as live for this long after its last heartbeat.</summary>
    public static readonly TimeSpan HeartbeatLifetime = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The deployment a process serves, as heartbeats name it: its database's host, port and name. Several deployments
    /// (or test runs) may share a Redis; replicas balance, and the admin stats count, only their own.
    /// </summary>
    public static string DeploymentScope(string connectionString)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{settings.Host}:{settings.Port}/{settings.Database}";
    }

    /// <param name="scope">Which deployment the replica serves (<see cref="DeploymentScope"/>).</param>
    public static string FormatHeartbeat(int connections, DateTimeOffset at, string scope) =>
        $"{connections}|{at.ToUnixTimeSeconds()}|{scope}";

    private static readonly long MaxUnixSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    /// <returns>Null for a value that is not a heartbeat (a garbled one included: it must not stop a replica); <c>Scope</c> is null from replicas older than scopes.</returns>
    public static (int Connections, DateTimeOffset At, string? Scope)? ParseHeartbeat(string? value)
    {
        var parts = value?.Split('|', 3);
        return parts is [var count, var at, ..] && int.TryParse(count, out var c) && long.TryParse(at, out var seconds)
               && seconds >= 0 && seconds <= MaxUnixSeconds
            ? (c, DateTimeOffset.FromUnixTimeSeconds(seconds), parts.Length == 3 ? parts[2] : null)
            : null;
    }
}
