using System.Text.Json;
using System.Text.Json.Serialization;
using CoTeX.Contracts;
using StackExchange.Redis;

namespace CoTeX.Shared.Events;

/// <summary>
/// How the Api tells every Realtime replica that an event was committed: one Redis pub/sub message per event on
/// <see cref="Channel"/>. Pub/sub keeps nothing, so a message may be lost (Redis restarting, a replica reconnecting);
/// Realtime notices the hole in the user's positions, or resynchronises after reconnecting, and reads Postgres.
/// </summary>
public static class LiveEvents
{
    public static readonly RedisChannel Channel = RedisChannel.Literal("cotex:github-events");

    public static byte[] Serialize(LiveGitHubEvent message) =>
        JsonSerializer.SerializeToUtf8Bytes(message, LiveEventsJsonContext.Default.LiveGitHubEvent);

    public static LiveGitHubEvent? Deserialize(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, LiveEventsJsonContext.Default.LiveGitHubEvent);
}

/// <summary>A committed event and the user it belongs to.</summary>
public sealed record LiveGitHubEvent(Guid UserId, GitHubEventSummary Event);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(LiveGitHubEvent))]
internal sealed partial class LiveEventsJsonContext : JsonSerializerContext;
