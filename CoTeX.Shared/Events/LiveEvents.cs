using System.Text.Json;
using System.Text.Json.Serialization;
using CoTeX.Contracts;
using StackExchange.Redis;

namespace CoTeX.Shared.Events;

/// <summary>
/// How the Api tells every Realtime replica that events were committed: one Redis pub/sub message per committed
/// batch (group commit, see the Api's GitHubEventStore) on <see cref="Channel"/>, the batch's events in commit order.
/// Pub/sub keeps nothing, so a message may be lost (Redis restarting, a replica reconnecting); Realtime notices the
/// hole in the user's positions, or resynchronises after reconnecting, and reads Postgres.
/// </summary>
public static class LiveEvents
{
    // A new name for a new message shape: during a rollout, a replica of the other version simply hears nothing on
    // the channel it listens to and repairs from Postgres (the earlier per-event channel was cotex:github-events).
    public static readonly RedisChannel Channel = RedisChannel.Literal("cotex:github-event-batches");

    public static byte[] Serialize(IReadOnlyList<LiveGitHubEvent> batch) =>
        JsonSerializer.SerializeToUtf8Bytes(batch, LiveEventsJsonContext.Default.IReadOnlyListLiveGitHubEvent);

    public static IReadOnlyList<LiveGitHubEvent>? Deserialize(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, LiveEventsJsonContext.Default.IReadOnlyListLiveGitHubEvent);
}

/// <summary>A committed event and the user it belongs to.</summary>
public sealed record LiveGitHubEvent(Guid UserId, GitHubEventSummary Event);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(IReadOnlyList<LiveGitHubEvent>))]
internal sealed partial class LiveEventsJsonContext : JsonSerializerContext;
