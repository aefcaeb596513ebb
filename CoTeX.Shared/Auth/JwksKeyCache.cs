using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Shared.Auth;

/// <summary>
/// The asymmetric signing keys published at <see cref="AuthOptions.JwksUrl"/>. Keys are read from memory on every
/// request; they are downloaded at start, every <see cref="AuthOptions.JwksRefreshSeconds"/>, and when a token names a
/// <c>kid</c> we do not know (at most once per <see cref="AuthOptions.JwksMinimumRefreshSeconds"/>, so a flood of
/// forged kids cannot turn into a flood of downloads). A failed download keeps the last good keys.
/// </summary>
public sealed partial class JwksKeyCache(
    IHttpClientFactory httpClientFactory,
    IOptions<AuthOptions> options,
    TimeProvider timeProvider,
    ILogger<JwksKeyCache> logger) : BackgroundService
{
    public const string HttpClientName = "jwks";

    private readonly Lock _refreshLock = new();
    private volatile IReadOnlyList<SecurityKey> _keys = [];
    private Task? _refreshing;
    private DateTimeOffset _lastAttempt = DateTimeOffset.MinValue;

    public bool Enabled => options.Value.JwksUrl is not null;

    public IReadOnlyList<SecurityKey> Keys => _keys;

    public bool Knows(string? kid) => kid is not null && _keys.Any(k => k.KeyId == kid);

    /// <summary>Downloads the key set again unless that happened less than the minimum interval ago.</summary>
    public Task RefreshIfAllowedAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return Task.CompletedTask;
        }
        Task refreshing;
        lock (_refreshLock)
        {
            if (_refreshing is null)
            {
                var minimum = TimeSpan.FromSeconds(options.Value.JwksMinimumRefreshSeconds);
                if (timeProvider.GetUtcNow() - _lastAttempt < minimum)
                {
                    return Task.CompletedTask;
                }
                _lastAttempt = timeProvider.GetUtcNow();
                _refreshing = DownloadAsync().ContinueWith(
                    _ => { lock (_refreshLock) { _refreshing = null; } }, TaskScheduler.Default);
            }
            refreshing = _refreshing;
        }
        // The caller stops waiting when its request ends; the download itself carries on for the next caller.
        return refreshing.WaitAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }
        var interval = TimeSpan.FromSeconds(options.Value.JwksRefreshSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            await RefreshIfAllowedAsync(stoppingToken);
            // Until the first download succeeds, retry at the minimum interval rather than waiting an hour.
            var wait = _keys.Count == 0 ? TimeSpan.FromSeconds(options.Value.JwksMinimumRefreshSeconds) : interval;
            await Task.Delay(wait, timeProvider, stoppingToken);
        }
    }

    private async Task DownloadAsync()
    {
        var url = options.Value.JwksUrl!;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var client = httpClientFactory.CreateClient(HttpClientName);
            var json = await client.GetStringAsync(url, timeout.Token);
            var keys = new JsonWebKeySet(json).GetSigningKeys();
            _keys = keys.ToArray();
            LogDownloaded(logger, _keys.Count, url);
        }
        catch (Exception ex)
        {
            LogDownloadFailed(logger, ex, url, _keys.Count);
        }
    }

    [LoggerMessage(LogLevel.Information, "Downloaded {KeyCount} JWT signing keys from {JwksUrl}")]
    private static partial void LogDownloaded(ILogger logger, int keyCount, Uri jwksUrl);

    [LoggerMessage(LogLevel.Warning, "Could not download JWT signing keys from {JwksUrl}; keeping the {KeyCount} known keys")]
    private static partial void LogDownloadFailed(ILogger logger, Exception exception, Uri jwksUrl, int keyCount);
}
