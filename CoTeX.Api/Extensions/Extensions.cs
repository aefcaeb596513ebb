using CoTeX.Api;
using CoTeX.Api.GitHubApp;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Api.Infrastructure;
using CoTeX.Api.Repos;
using CoTeX.Api.WebhookIngress;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using CoTeX.Shared.Web;

namespace Microsoft.Extensions.Hosting;

internal static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.AddCoTeXDatabase(maxPoolSize: 30);
        builder.AddCoTeXRedis();
        builder.AddCoTeXAuthentication();

        builder.Services.AddOptions<ApiOptions>().BindConfiguration(ApiOptions.Section)
            .Validate(api => api.TrustedProxies.All(range => System.Net.IPNetwork.TryParse(range, out _)),
                "Api:TrustedProxies must be CIDR ranges such as 10.0.0.0/16.")
            .ValidateOnStart();
        // The client's address behind a trusted proxy (Api:TrustedProxies): what the per-address limits key on.
        builder.Services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<ApiOptions>>((forwarded, api) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            forwarded.ForwardLimit = 1; // only the entry the proxy itself appended: earlier ones are the client's to write
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var range in api.Value.TrustedProxies)
            {
                forwarded.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(range));
            }
        });
        builder.AddCoTeXBilling();
        builder.AddCoTeXCors();
        builder.AddCoTeXRateLimiting();
        // Request bodies are strict: a field the endpoint does not know is a 400 naming it, not silently dropped.
        builder.Services.ConfigureHttpJsonOptions(options =>
            options.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow);
        builder.Services.AddOpenApi(options => options.AddDocumentTransformer<BearerSecurityTransformer>());
        builder.Services.AddOptions<GitHubWebhookOptions>().BindConfiguration(GitHubWebhookOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();

        // Webhook secrets are encrypted with the key ring every service shares (its keys under the key-encryption key).
        builder.AddCoTeXDataProtection();
        builder.Services.AddSingleton<WebhookSecrets>();

        builder.Services.AddSingleton(TimeProvider.System);
        // What strangers may cost the webhook receivers before a signature is checked (README, "Webhook receivers").
        builder.Services.AddOptions<WebhookIngressOptions>().BindConfiguration(WebhookIngressOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<WebhookIngressOptions>, WebhookIngressOptionsValidator>();
        builder.Services.AddSingleton<WebhookSenders>();
        builder.Services.AddSingleton<IWebhookSenderRanges>(services => services.GetRequiredService<WebhookSenders>());
        builder.Services.AddSingleton<UnverifiedBodyBudget>();
        builder.Services.AddSingleton<WebhookRepoCache>();
        builder.Services.AddSingleton<GitHubEventStore>();
        builder.Services.AddSingleton<WebhookMetrics>();
        builder.Services.AddSingleton<LiveEventPublisher>();

        // GitHub App mode (off unless the app is configured): connections, the app's deliveries.
        builder.AddCoTeXGitHubApp();
        builder.Services.AddSingleton<GitHubAppEvents>();
        builder.Services.AddSingleton<ConnectStates>();
    }
}
