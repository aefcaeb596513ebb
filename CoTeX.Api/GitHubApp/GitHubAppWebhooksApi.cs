using System.Text;
using System.Text.Json;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Shared.GitHubApp;
using CoTeX.Shared.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CoTeX.Api.GitHubApp;

/// <summary>
/// <c>POST /api/webhooks/github-app</c>: the GitHub App's webhook URL, where GitHub sends the events of every
/// repository of every installation. Checks as the per-repo receiver's: the sender is within its limit (429), the mode
/// is on (404), a signature is sent (401), the body fits (413) in the unverified budget (503), the signature matches
/// the app's webhook secret (401), GitHub's headers (400), the body (415/400). Then an event that
/// changes access is applied once per delivery id (<see cref="GitHubAppEvents"/>), and a repository's event is stored
/// once for each follower, all in one transaction, answered after the commit.
/// </summary>
public static class GitHubAppWebhooksApi
{
    public static RouteHandlerBuilder MapGitHubAppWebhooksApi(this IEndpointRouteBuilder app) =>
        // Limited per address outside GitHub's published ranges only: GitHub is the one genuine sender and its bursts
        // are real events, while anyone else's request costs a body read (within the unverified budget) and an HMAC.
        app.MapPost("/api/webhooks/github-app", ReceiveAsync).RequireRateLimit(RateLimitPolicy.PerWebhookSender)
            .WithTags("Webhooks").WithName("ReceiveGitHubAppWebhook")
            .WithSummary("Receives the GitHub App's deliveries, for every repository of every installation.")
            .AllowAnonymous().WithMetadata(new Microsoft.AspNetCore.Cors.DisableCorsAttribute()).DisableAntiforgery()
            .AddWebhookMetrics(app)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

    /// <param name="Status">
    /// <c>stored</c> (for <paramref name="Stored"/> of <paramref name="Followers"/> followers; the others had it
    /// already), <c>duplicate</c>, <c>no followers</c> (nobody receives this repository's events),
    /// <c>applied</c> (an access change), <c>ignored</c> (an event for no repository), or <c>pong</c>.
    /// </param>
    public sealed record AppWebhookAccepted(string Status, int Followers = 0, int Stored = 0) : IWebhookAnswer;

    /// <summary>
    /// Check the mode, read the body within the budget, check its signature, GitHub's headers and the payload, apply an
    /// access change, and store a repository's event for each of its followers, answering after the commit.
    /// </summary>
    internal static async Task<Results<Ok<AppWebhookAccepted>, ProblemHttpResult>> ReceiveAsync(
        HttpContext context, [AsParameters] GitHubAppWebhookServices services, CancellationToken cancellationToken)
    {
        var app = services.App.Value;
        if (!app.IsEnabled)
        {
            return WebhookRequest.Problem(StatusCodes.Status404NotFound, "GitHub App mode is off",
                "This server has no GitHub App configured (GitHubApp:AppId and the rest). Per-repo webhooks use /api/webhooks/github/{repoId}.");
        }
        var deadline = services.Time.GetUtcNow().AddSeconds(services.Options.Value.DatabaseRetrySeconds);

        string? signature = context.Request.Headers[WebhookSignature.Sha256Header];
        if (signature is null)
        {
            // Refused before a byte of the body is read: without a signature it could never be accepted.
            return WebhookRequest.Problem(StatusCodes.Status401Unauthorized, "Missing signature",
                $"The {WebhookSignature.Sha256Header} header is required.");
        }
        var (unverified, unread) = await WebhookRequest.ReadBodyAsync(context, cancellationToken);
        if (unread is not null)
        {
            return unread;
        }
        byte[] body;
        using (unverified)
        {
            if (!WebhookSignature.IsValidSha256(signature, Encoding.UTF8.GetBytes(app.WebhookSecret!), unverified!.Sequence))
            {
                return WebhookRequest.Problem(StatusCodes.Status401Unauthorized, "Invalid signature",
                    "The signature does not match the body and the GitHub App's webhook secret.");
            }
            body = unverified.ToVerifiedArray();
        }
        var (eventType, deliveryId, badHeaders) = WebhookRequest.Headers(context.Request.Headers);
        if (badHeaders is not null)
        {
            return badHeaders;
        }
        var payload = await WebhookRequest.PayloadAsync(context.Request.ContentType, body);
        if (payload.Problem is { } badBody)
        {
            return badBody;
        }

        JsonDocument document;
        try
        {
            document = GitHubEventParser.ParseDocument(payload.Json);
        }
        catch (JsonException ex)
        {
            return WebhookRequest.Problem(StatusCodes.Status400BadRequest, "Invalid payload", $"The payload is not valid JSON: {ex.Message}");
        }
        using (document)
        {
            if (eventType == "ping")
            {
                return TypedResults.Ok(new AppWebhookAccepted("pong"));
            }
            var fields = GitHubEventParser.Parse(eventType, document.RootElement);
            bool? applied = null;
            if (GitHubAppEvents.ChangesAccess(eventType, fields.Action))
            {
                // Before the delivery below: whoever just lost access does not receive the event that says so.
                applied = await services.Events.ApplyAsync(eventType, deliveryId, document.RootElement, deadline, cancellationToken);
            }
            if (fields is not { RepositoryId: { } repositoryId, InstallationId: { } installationId })
            {
                return TypedResults.Ok(new AppWebhookAccepted(applied switch { true => "applied", false => "duplicate", null => "ignored" }));
            }

            var followers = await services.Events.FollowersAsync(installationId, repositoryId, eventType, deadline, cancellationToken);
            if (followers.Length == 0)
            {
                return TypedResults.Ok(new AppWebhookAccepted("no followers"));
            }
            var incoming = followers.Select(f => new IncomingGitHubEvent(f, deliveryId, eventType, fields, payload.Json)).ToArray();
            return Answer(await services.Store.StoreAsync(incoming, deadline, cancellationToken), followers.Length, context);
        }
    }

    /// <summary>The answer once the store has spoken for the followers: too busy for any of them, or how many it stored.</summary>
    private static Results<Ok<AppWebhookAccepted>, ProblemHttpResult> Answer(StoreResult[] results, int followers, HttpContext context)
    {
        if (results.Any(r => r.Outcome == StoreOutcome.Busy))
        {
            context.Response.Headers.RetryAfter = "5";
            return WebhookRequest.Problem(StatusCodes.Status503ServiceUnavailable, "Too many deliveries waiting",
                "Too many deliveries are waiting for the database; this one was not stored. Retry later.");
        }
        var stored = results.Count(r => r.Outcome == StoreOutcome.Stored);
        return TypedResults.Ok(new AppWebhookAccepted(stored > 0 ? "stored" : "duplicate", followers, stored));
    }
}

/// <summary>What the GitHub App's webhook receiver needs besides the request, bound with <c>[AsParameters]</c>.</summary>
public sealed class GitHubAppWebhookServices(
    GitHubAppEvents events,
    GitHubEventStore store,
    IOptions<GitHubAppOptions> app,
    IOptions<GitHubWebhookOptions> options,
    TimeProvider time)
{
    public GitHubAppEvents Events { get; } = events;
    public GitHubEventStore Store { get; } = store;
    public IOptions<GitHubAppOptions> App { get; } = app;
    public IOptions<GitHubWebhookOptions> Options { get; } = options;
    public TimeProvider Time { get; } = time;
}
