using System.Diagnostics;
using CoTeX.ServiceDefaults;
using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using StackExchange.Redis;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// Announces committed events to the Realtime replicas, one message per committed batch. Fire-and-forget on purpose:
/// the webhook's 2xx depends only on the Postgres commit, and a lost announcement is repaired by Realtime from Postgres
/// (see <see cref="LiveEvents"/>). The publish is a span (a child of the batch's) in the webhook's trace.
/// </summary>
public sealed partial class LiveEventPublisher(IConnectionMultiplexer redis, ILogger<LiveEventPublisher> logger)
{
    private static readonly string SpanName = $"publish {LiveEvents.Channel}";

    public void Publish(IReadOnlyList<LiveGitHubEvent> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        using var activity = CoTeXTelemetry.ActivitySource.StartActivity(SpanName, ActivityKind.Producer);
        activity?.SetTag("messaging.system", "redis")
            .SetTag("messaging.operation.type", "send")
            .SetTag("messaging.destination.name", LiveEvents.Channel.ToString())
            .SetTag("messaging.batch.message_count", batch.Count);
        try
        {
            redis.GetSubscriber().Publish(LiveEvents.Channel, LiveEvents.Serialize(batch), CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
            activity?.AddException(ex).SetStatus(ActivityStatusCode.Error, ex.Message);
            LogPublishFailed(logger, ex, batch.Count, batch[0].Event.Id);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Could not announce {Count} events (from {EventId}) to Realtime; clients will get them from Postgres")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, int count, long eventId);
}
