using CoTeX.Shared.GitHubApp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;

namespace Microsoft.Extensions.Hosting;

public static class GitHubAppExtensions
{
    /// <summary>
    /// GitHub App mode's settings (validated at start: all of the app's settings or none), its GitHub client and the
    /// users' connections. With no app configured the services are still there, and the mode says it is off.
    /// </summary>
    public static TBuilder AddCoTeXGitHubApp<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddOptions<GitHubAppOptions>().BindConfiguration(GitHubAppOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHttpClient(GitHubAppClient.HttpClientName, UserAgent);
        // A code exchange, a token mint or a redelivery must not be sent twice after a timeout: those are not retried.
        builder.Services.AddHttpClient(GitHubAppClient.UnretriedHttpClientName, UserAgent);
        builder.Services.Configure<HttpStandardResilienceOptions>($"{GitHubAppClient.UnretriedHttpClientName}-standard",
            resilience => resilience.Retry.ShouldHandle = _ => ValueTask.FromResult(false));
        builder.Services.AddSingleton<GitHubAppClient>();
        builder.Services.AddSingleton<GitHubConnections>();
        builder.Services.AddHostedService<GitHubAppModeLog>();
        return builder;
    }

    private static void UserAgent(HttpClient http) => http.DefaultRequestHeaders.UserAgent.ParseAdd("CoTeX");
}
