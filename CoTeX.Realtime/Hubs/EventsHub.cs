using CoTeX.Contracts;
using CoTeX.Realtime.Feeds;
using CoTeX.Shared.Auth;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace CoTeX.Realtime.Hubs;

/// <summary>
/// <c>/ws</c>: a desktop client's live GitHub events. The client connects with its Supabase token, calls
/// <see cref="Subscribe"/> with the last position it holds, and receives what it missed and then everything new
/// (protocol: docs/realtime-protocol.md). The connection is closed when its token expires.
/// </summary>
[Authorize]
public sealed class EventsHub(
    FeedRegistry registry,
    FeedQueries queries,
    IHubContext<EventsHub> hubContext,
    IOptions<RealtimeOptions> options,
    ShutdownNotifier shutdown,
    FeedMetrics metrics,
    ILogger<ConnectionFeed> feedLogger) : Hub
{
    /// <param name="fromPosition">
    /// The highest position the client holds; null to start with new events only.
    /// </param>
    [HubMethodName(RealtimeProtocol.Subscribe)]
    public Task Subscribe(long? fromPosition)
    {
        var context = Context;
        var feed = new ConnectionFeed(context.ConnectionId, context.User!.GetUserId(), context.Abort, hubContext, queries,
            options.Value, metrics, feedLogger);
        // Posted before the feed is reachable by live events, so the catch-up is the first thing it does.
        feed.StartFrom(fromPosition);
        if (!registry.TryAdd(feed))
        {
            throw new HubException("This connection is already subscribed.");
        }
        shutdown.EnsureRegistered();
        // SignalR requests the close when the connection's token expires (Program.cs: CloseOnAuthenticationExpiration).
        context.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested
            .Register(static f => ((ConnectionFeed)f!).OnTokenExpired(), feed);
        _ = feed.RunAsync(context.ConnectionAborted);
        return Task.CompletedTask;
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        registry.Remove(Context.ConnectionId)?.Complete();
        return Task.CompletedTask;
    }
}
