using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using StackExchange.Redis;

namespace CoTeX.Realtime.Feeds;

/// <summary>Publishes this replica's connection count to Redis every few seconds, for the Api's admin stats.</summary>
public sealed class ConnectionCountReporter(IConnectionMultiplexer redis, FeedRegistry registry, TimeProvider time) : BackgroundService
{
    public string ReplicaId { get; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await redis.GetDatabase().HashSetAsync(OpsCounters.RealtimeConnections, ReplicaId,
                        OpsCounters.FormatHeartbeat(registry.Count, time.GetUtcNow()));
                }
                catch (Exception ex) when (RedisFailures.IsOutage(ex))
                {
                    // Redis is away; the next beat will do.
                }
                await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
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
}
