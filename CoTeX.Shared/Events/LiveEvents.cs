using System.Diagnostics;
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

    /// <summary>A span context as a W3C <c>traceparent</c>; null for none.</summary>
    public static string? ToTraceParent(ActivityContext context) =>
        context == default
            ? null
            : $"00-{context.TraceId.ToHexString()}-{context.SpanId.ToHexString()}-{(context.TraceFlags.HasFlag(ActivityTraceFlags.Recorded) ? "01" : "00")}";

    /// <summary>The span context a <c>traceparent</c> names; default for none or a malformed one.</summary>
    public static ActivityContext FromTraceParent(string? traceParent) =>
        ActivityContext.TryParse(traceParent, null, isRemote: true, out var context) ? context : default;
}

/// <summary>A committed event and the user it belongs to.</summary>
/// <param name="TraceParent">
/// The trace of the webhook request that stored the event (W3C <c>traceparent</c>), so the Realtime replica's send
/// joins it. Added after the first release of this message: a replica of that version ignores it.
/// </param>
public sealed record LiveGitHubEvent(Guid UserId, GitHubEventSummary Event, string? TraceParent = null);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(IReadOnlyList<LiveGitHubEvent>))]
internal sealed partial class LiveEventsJsonContext : JsonSerializerContext;
