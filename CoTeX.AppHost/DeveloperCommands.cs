using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using CoTeX.Client;
using CoTeX.Contracts;
using CoTeX.DevTools;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CoTeX.AppHost;

/// <summary>
/// Dashboard commands on the api resource for a local run, the first two things a developer does:
/// <list type="bullet">
/// <item><b>Mint a dev token</b>: a Supabase-shaped token for the local dev user, signed with the <c>jwt-secret</c>
/// parameter, shown ready to copy: <see cref="DevTokens.Mint"/>, as <c>eng/mint-token.sh</c> mints it.</item>
/// <item><b>Send a sample GitHub webhook</b>: tracks the sample repository for the dev user (or gives it a new
/// secret when it is tracked already) and posts a real push payload to the api, signed as GitHub signs it. The event
/// then shows up in the traces, in the logs and at every client the dev user has connected.</item>
/// </list>
/// </summary>
internal static class DeveloperCommands
{
    /// <summary>The repository the sample payload (Samples/push.json) comes from.</summary>
    public const string SampleRepository = "Codertocat/Hello-World";

    public static IResourceBuilder<ProjectResource> WithDeveloperCommands(this IResourceBuilder<ProjectResource> api,
        IResourceBuilder<ParameterResource> jwtSecret)
    {
        if (!api.ApplicationBuilder.ExecutionContext.IsRunMode)
        {
            return api;
        }
        var endpoint = api.GetEndpoint("http");

        api.WithCommand("mint-dev-token", "Mint a dev token", async context =>
        {
            var token = MintToken(await jwtSecret.Resource.GetValueAsync(context.CancellationToken));
            return CommandResults.Success(
                $"A token for the dev user {DevTokens.DevUserId}, valid for 24 hours: curl -H \"Authorization: Bearer <token>\" {endpoint.Url}/api/repos",
                token, CommandResultFormat.Text, displayImmediately: true);
        }, Options("Mints a token for the local dev user, signed with the jwt-secret parameter.", "Key"));

        api.WithCommand("send-sample-webhook", "Send a sample GitHub webhook", async context =>
        {
            var token = MintToken(await jwtSecret.Resource.GetValueAsync(context.CancellationToken));
            var result = await SendSampleWebhookAsync(new Uri(endpoint.Url), token, context.CancellationToken);
            return result.Success
                ? CommandResults.Success(result.Message)
                : CommandResults.Failure(result.Message);
        }, Options($"Tracks {SampleRepository} for the dev user and delivers a signed push event to the api, as GitHub would.",
            "Send"));
        return api;
    }

    private static CommandOptions Options(string description, string icon) => new()
    {
        Description = description,
        IconName = icon,
        // The api must be serving.
        UpdateState = context => context.ResourceSnapshot.HealthStatus == HealthStatus.Healthy
            ? ResourceCommandState.Enabled
            : ResourceCommandState.Disabled,
    };

    private static string MintToken(string? secret) => DevTokens.Mint(secret ?? "", DevTokens.DevUserId);

    private static async Task<(bool Success, string Message)> SendSampleWebhookAsync(Uri api, string token,
        CancellationToken cancellationToken)
    {
        using var client = new CoTeXClient(new CoTeXClientOptions
        {
            ApiUrl = api,
            RealtimeUrls = [],
            AccessTokenProvider = _ => ValueTask.FromResult(token),
        });
        Guid repoId;
        string secret;
        try
        {
            // A webhook repo, even when a GitHub App could deliver it: this command plays the webhook.
            var created = await client.AddRepoAsync(SampleRepository, RepoSources.Webhook, cancellationToken);
            (repoId, secret) = (created.Id, created.WebhookSecret!);
        }
        catch (CoTeXApiException ex) when (ex.Status == HttpStatusCode.Conflict)
        {
            // Tracked by an earlier run: its secret is shown only once, so take a new one.
            var repos = await client.ListReposAsync(cancellationToken);
            repoId = repos.Repos.Single(r => r.FullName.Equals(SampleRepository, StringComparison.OrdinalIgnoreCase)).Id;
            secret = (await client.RotateSecretAsync(repoId, cancellationToken)).WebhookSecret;
        }
        catch (CoTeXApiException ex)
        {
            return (false, $"Could not track {SampleRepository}: {ex.Message}");
        }

        var body = SamplePayload();
        var deliveryId = Guid.NewGuid().ToString();
        // GitHub sends no trace context, so neither does this: the delivery starts a trace of its own in the dashboard.
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ActivityHeadersPropagator = DistributedContextPropagator.CreateNoOutputPropagator(),
        }) { BaseAddress = api };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repoId}")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
            Headers =
            {
                { "X-GitHub-Event", "push" },
                { "X-GitHub-Delivery", deliveryId },
                { WebhookSigning.Sha256Header, WebhookSigning.Sign(secret, body) },
                { "User-Agent", "GitHub-Hookshot/cotex-dashboard" },
            },
        };
        using var response = await http.SendAsync(request, cancellationToken);
        var answer = await response.Content.ReadAsStringAsync(cancellationToken);
        return response.IsSuccessStatusCode
            ? (true, $"Delivered push {deliveryId} to {SampleRepository}: {answer}. Follow it under Traces (POST /api/webhooks/github/...).")
            : (false, $"The api answered {(int)response.StatusCode}: {answer}");
    }

    private static byte[] SamplePayload()
    {
        using var stream = typeof(DeveloperCommands).Assembly.GetManifestResourceStream("CoTeX.AppHost.Samples.push.json")!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
