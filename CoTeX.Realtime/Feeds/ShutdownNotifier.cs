using CoTeX.Contracts;

namespace CoTeX.Realtime.Feeds;

/// <summary>
/// On SIGTERM, tells every connected client to reconnect (and resume from its position on another replica) before
/// SignalR closes the connections. Registered on first use, after SignalR's own stopping handler, because stopping
/// handlers run last-registered-first: this one must run before the connections are closed.
/// </summary>
public sealed partial class ShutdownNotifier(IHostApplicationLifetime lifetime, FeedRegistry registry, ILogger<ShutdownNotifier> logger)
{
    private int _registered;

    public void EnsureRegistered()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
        {
            lifetime.ApplicationStopping.Register(NotifyAll);
        }
    }

    private static readonly ReconnectNotice Notice =
        new("This server is shutting down; reconnect and resume.", ReconnectCodes.Shutdown);

    private void NotifyAll()
    {
        var feeds = registry.All.ToArray();
        LogNotifying(logger, feeds.Length);
        // Bounded: the host's shutdown timeout keeps running meanwhile.
        Task.WhenAll(feeds.Select(f => f.AbortAsync(Notice)))
            .Wait(TimeSpan.FromSeconds(5));
    }

    [LoggerMessage(LogLevel.Information, "Shutting down: asking {ConnectionCount} clients to reconnect elsewhere")]
    private static partial void LogNotifying(ILogger logger, int connectionCount);
}
