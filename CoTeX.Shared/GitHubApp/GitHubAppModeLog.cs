using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CoTeX.Shared.GitHubApp;

/// <summary>Says once, at start, whether GitHub App mode is on (and for which app) or off.</summary>
internal sealed partial class GitHubAppModeLog(IOptions<GitHubAppOptions> options, ILogger<GitHubAppModeLog> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.IsEnabled)
        {
            LogOn(logger, options.Value.AppId!, options.Value.ApiBaseUrl);
        }
        else
        {
            LogOff(logger);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Information, "GitHub App mode is on: app {AppId}, GitHub API {ApiBaseUrl}")]
    private static partial void LogOn(ILogger logger, string appId, Uri apiBaseUrl);

    [LoggerMessage(LogLevel.Information, "GitHub App mode is off (GitHubApp:AppId is not set): repos are tracked with their own webhooks only")]
    private static partial void LogOff(ILogger logger);
}
