namespace CoTeX.Contracts;

/// <summary>
/// The SignalR protocol of <c>/ws</c> (see docs/realtime-protocol.md). The client calls
/// <see cref="Subscribe"/> once per connection; the server then sends the named messages.
/// </summary>
public static class RealtimeProtocol
{
    public const string HubPath = "/ws";

    /// <summary>Client → server: <c>Subscribe(long? fromPosition)</c>.</summary>
    public const string Subscribe = "Subscribe";

    /// <summary>Server → client: one live <see cref="GitHubEventSummary"/>.</summary>
    public const string Event = "Event";

    /// <summary>Server → client: <see cref="GitHubEventSummary"/>[] in position order (catch-up and gap repair).</summary>
    public const string Events = "Events";

    /// <summary>Server → client: <see cref="FeedPosition"/>; every missed event has been sent, live from here on.</summary>
    public const string CaughtUp = "CaughtUp";

    /// <summary>Server → client: <see cref="FeedReset"/>; the position cannot be resumed, reload history over REST.</summary>
    public const string Reset = "Reset";

    /// <summary>Server → client: <see cref="ReconnectNotice"/>; this replica is going away, reconnect (and resume).</summary>
    public const string Reconnect = "Reconnect";
}

public sealed record FeedPosition(long Position);

/// <param name="Position">Live delivery continues after this position; history up to it is in the REST API.</param>
public sealed record FeedReset(long Position, string Reason);

public sealed record ReconnectNotice(string Reason);
