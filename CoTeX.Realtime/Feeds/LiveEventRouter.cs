using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CoTeX.Realtime.Feeds;

/// <summary>
/// Receives the Api's event announcements from Redis and routes them to this replica's feeds. Because pub/sub keeps
/// nothing, it also resynchronises every feed from Postgres when the Redis connection comes back, and sweeps on an
/// interval for feeds whose user has moved past them (one query for all users).
/// </summary>
public sealed partial class LiveEventRouter(
    IConnectionMultiplexer redis,
    FeedRegistry registry,
    FeedQueries queries,
    IOptions<RealtimeOptions> options,
    ILogger<LiveEventRouter> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var queue = await SubscribeWithRetryAsync(stoppingToken);
        if (queue is null)
        {
            return;
        }
        queue.OnMessage(message =>
        {
            foreach (var live in LiveEvents.Deserialize(((ReadOnlyMemory<byte>)message.Message).Span) ?? [])
            {
                registry.Route(live.UserId, live.Event, LiveEvents.FromTraceParent(live.TraceParent));
            }
        });
        redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SweepSeconds));
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await SweepAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            redis.ConnectionRestored -= OnConnectionRestored;
            await queue.UnsubscribeAsync();
        }
    }

    private async Task<ChannelMessageQueue?> SubscribeWithRetryAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                return await redis.GetSubscriber().SubscribeAsync(LiveEvents.Channel);
            }
            catch (Exception ex) when (RedisFailures.IsOutage(ex))
            {
                LogSubscribeFailed(logger, ex);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
        return null;
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        LogResync(logger, registry.Count);
        foreach (var feed in registry.All)
        {
            feed.RequestResync();
        }
    }

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var feeds = registry.All.Where(f => f.Covered >= 0).ToArray();
        if (feeds.Length == 0)
        {
            return;
        }
        try
        {
            var latest = await queries.GetPositionsAsync(feeds.Select(f => f.UserId).Distinct().ToArray(), cancellationToken);
            var behind = 0;
            foreach (var feed in feeds)
            {
                if (latest.TryGetValue(feed.UserId, out var user) && user.Closed)
                {
                    registry.CloseUser(feed.UserId); // its closing announcement was lost (Redis was away)
                    continue;
                }
                // Behind and no progress for a whole interval: something it should have been told was lost.
                // (Feeds that are merely working through queued live events make progress and are left alone.)
                var covered = feed.Covered;
                if (latest.ContainsKey(feed.UserId) && user.Position > covered && covered == feed.CoveredAtLastSweep)
                {
                    feed.RequestResync();
                    behind++;
                }
                feed.CoveredAtLastSweep = covered;
            }
            if (behind > 0)
            {
                LogSweep(logger, behind);
            }
        }
        catch (Npgsql.NpgsqlException ex)
        {
            LogSweepFailed(logger, ex);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Could not subscribe to live events; retrying")]
    private static partial void LogSubscribeFailed(ILogger logger, Exception exception);

    [LoggerMessage(LogLevel.Information, "Redis connection restored; resynchronising {FeedCount} feeds from Postgres")]
    private static partial void LogResync(ILogger logger, int feedCount);

    [LoggerMessage(LogLevel.Information, "Sweep found {FeedCount} feeds behind their user's position; resynchronising")]
    private static partial void LogSweep(ILogger logger, int feedCount);

    [LoggerMessage(LogLevel.Warning, "Sweep could not read positions from Postgres")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
