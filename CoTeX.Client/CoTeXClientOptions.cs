namespace CoTeX.Client;

public sealed class CoTeXClientOptions
{
    /// <summary>The Api's base URL, e.g. http://127.0.0.1:5080.</summary>
    public required Uri ApiUrl { get; init; }

    /// <summary>
    /// Realtime base URLs. In production one URL behind a load balancer; locally the replicas themselves
    /// (http://127.0.0.1:5081, http://127.0.0.1:5082): a feed that loses its connection tries the next one.
    /// </summary>
    public required IReadOnlyList<Uri> RealtimeUrls { get; init; }

    /// <summary>Returns a current Supabase access token (called for every request and every connection).</summary>
    public required Func<CancellationToken, ValueTask<string>> AccessTokenProvider { get; init; }

    /// <summary>Longest wait between reconnection attempts (the first retry is immediate).</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(5);
}
