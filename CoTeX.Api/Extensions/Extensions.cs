using CoTeX.Api;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Api.Infrastructure;
using CoTeX.Api.Repos;
using CoTeX.Shared.Web;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.Hosting;

internal static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.AddCoTeXDatabase(maxPoolSize: 30);
        builder.AddCoTeXRedis();
        builder.AddCoTeXAuthentication();

        builder.Services.AddOptions<ApiOptions>().BindConfiguration(ApiOptions.Section);
        builder.AddCoTeXBilling();
        builder.AddCoTeXCors();
        builder.AddCoTeXRateLimiting();
        // Request bodies are strict: a field the endpoint does not know is a 400 naming it, not silently dropped.
        builder.Services.ConfigureHttpJsonOptions(options =>
            options.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow);
        builder.Services.AddOpenApi(options => options.AddDocumentTransformer<BearerSecurityTransformer>());
        builder.Services.AddOptions<GitHubWebhookOptions>().BindConfiguration(GitHubWebhookOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();

        // Webhook secrets are encrypted with a key ring every replica shares, kept in Postgres, its keys encrypted in
        // turn with a key-encryption key the database never sees.
        builder.Services.AddOptions<KeyRingOptions>().BindConfiguration(KeyRingOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<KeyEncryptionKeys>();
        builder.Services.AddDataProtection().SetApplicationName("CoTeX");
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp =>
            new ConfigureOptions<KeyManagementOptions>(o =>
            {
                o.XmlRepository = ActivatorUtilities.CreateInstance<PostgresXmlRepository>(sp);
                o.XmlEncryptor = ActivatorUtilities.CreateInstance<KeyRingEncryptor>(sp);
            }));
        builder.Services.AddSingleton<KeyRingMonitor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KeyRingMonitor>());
        builder.Services.AddHealthChecks().AddCheck<KeyRingMonitor>("key-ring", timeout: TimeSpan.FromSeconds(5));
        builder.Services.AddSingleton<WebhookSecrets>();

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<WebhookRepoCache>();
        builder.Services.AddSingleton<GitHubEventStore>();
        builder.Services.AddSingleton<LiveEventPublisher>();
    }
}
