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

    /// <summary>
    /// Server → client: <see cref="ReconnectNotice"/>; this connection is about to close (the replica is going away or
    /// holds more than its share, or the token has expired): reconnect, with a fresh token for
    /// <see cref="ReconnectCodes.TokenExpired"/>, and resume.
    /// </summary>
    public const string Reconnect = "Reconnect";
}

public sealed record FeedPosition(long Position);

/// <param name="Position">Live delivery continues after this position; history up to it is in the REST API.</param>
public sealed record FeedReset(long Position, string Reason);

/// <param name="Reason">For people.</param>
/// <param name="Code">For programs: one of <see cref="ReconnectCodes"/> (null from servers older than the codes).</param>
public sealed record ReconnectNotice(string Reason, string? Code = null);

/// <summary>Why the server asks a client to reconnect (<see cref="ReconnectNotice.Code"/>).</summary>
public static class ReconnectCodes
{
    /// <summary>The replica is shutting down: reconnect (to another one) with the same token.</summary>
    public const string Shutdown = "shutdown";

    /// <summary>The replica could not continue the feed (Postgres or the connection failed): reconnect.</summary>
    public const string FeedFailed = "feed_failed";

    /// <summary>
    /// The replica holds more than its share of connections (another replica has restarted or been added): reconnect
    /// at once with the same token; the load balancer (or the client's next URL) picks the replica.
    /// </summary>
    public const string Rebalance = "rebalance";

    /// <summary>The connection's token has expired: reconnect with a fresh token (an expired one is refused).</summary>
    public const string TokenExpired = "token_expired";
}
