using CoTeX.Contracts;
using CoTeX.Shared.Events;
using StackExchange.Redis;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// Announces a committed event to the Realtime replicas. Fire-and-forget on purpose: the webhook's 2xx depends only on
/// the Postgres commit, and a lost announcement is repaired by Realtime from Postgres (see <see cref="LiveEvents"/>).
/// </summary>
public sealed partial class LiveEventPublisher(IConnectionMultiplexer redis, ILogger<LiveEventPublisher> logger)
{
    public void Publish(Guid userId, GitHubEventSummary summary)
    {
        try
        {
            redis.GetSubscriber().Publish(LiveEvents.Channel, LiveEvents.Serialize(new LiveGitHubEvent(userId, summary)),
                CommandFlags.FireAndForget);
        }
        catch (RedisException ex)
        {
            LogPublishFailed(logger, ex, summary.Id);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Could not announce event {EventId} to Realtime; clients will get it from Postgres")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, long eventId);
}
