using System.Text.Json;
using CoTeX.Contracts;
using CoTeX.Shared.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// <c>POST /api/webhooks/github/{repoId}</c>: the URL a user pastes into a repository's webhook settings.
/// Order of checks: the sender is within its rate limits (429), the repo exists (404), a signature is sent (401), the
/// body fits (413) in the process's budget for unverified bodies (503), the signature matches the raw body (401), GitHub's
/// headers are there (400), the body is JSON or GitHub's form encoding (415/400), the payload is about this repo
/// (422). Only then is the event stored, and the 2xx goes out after the commit.
/// </summary>
public static class GitHubWebhooksApi
{
    public static RouteGroupBuilder MapGitHubWebhooksApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/webhooks/github").WithTags("Webhooks").AllowAnonymous()
            .WithMetadata(new Microsoft.AspNetCore.Cors.DisableCorsAttribute())
            .RequireRateLimit(RateLimitPolicy.PerWebhookSender).RequireRateLimit(RateLimitPolicy.PerRepo)
            .AddWebhookMetrics(app);
        api.MapPost("/{repoId:guid}", ReceiveAsync)
            .WithName("ReceiveGitHubWebhook")
            .WithSummary("Receives a GitHub webhook delivery for a tracked repo.")
            .DisableAntiforgery()
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType).ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status429TooManyRequests).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return api;
    }

    public sealed record WebhookAccepted(string Status, long? Id, long? Position) : IWebhookAnswer;

    /// <summary>
    /// Find the repo, read the body within the budget, check its signature, GitHub's headers and the payload, check the
    /// payload is about this repo, store the event and answer after the commit.
    /// </summary>
    internal static async Task<Results<Ok<WebhookAccepted>, ProblemHttpResult>> ReceiveAsync(
        Guid repoId, HttpContext context, [AsParameters] GitHubWebhookServices services, CancellationToken cancellationToken)
    {
        var request = context.Request;
        var options = services.Options.Value;
        // GitHub waits 10 s for an answer: while the database is unavailable, the steps below retry until this.
        var deadline = services.Time.GetUtcNow().AddSeconds(options.DatabaseRetrySeconds);

        var repo = await services.Repos.GetAsync(repoId, deadline, cancellationToken);
        if (repo is null)
        {
            return Problem(StatusCodes.Status404NotFound, "Unknown repo",
                $"No tracked repo has the id {repoId}. Register the repo with POST /api/repos and use the webhook URL it returns.");
        }

        if (!request.Headers.ContainsKey(WebhookSignature.Sha256Header)
            && !(options.AllowSha1 && request.Headers.ContainsKey(WebhookSignature.Sha1Header)))
        {
            // Refused before a byte of the body is read: without a signature it could never be accepted.
            return Problem(StatusCodes.Status401Unauthorized, "Missing signature",
                $"The {WebhookSignature.Sha256Header} header is required: set a secret on the GitHub webhook.");
        }
        var (unverified, unread) = await WebhookRequest.ReadBodyAsync(context, cancellationToken);
        if (unread is not null)
        {
            return unread;
        }
        byte[] body;
        using (unverified)
        {
            var signatureCheck = await VerifySignatureAsync(request.Headers, repo, unverified!.Sequence, services.Repos, options, deadline,
                cancellationToken);
            if (signatureCheck.Problem is { } unauthorized)
            {
                return unauthorized;
            }
            repo = signatureCheck.Repo!;
            body = unverified.ToVerifiedArray();
        }

        var (eventType, deliveryId, badHeaders) = WebhookRequest.Headers(request.Headers);
        if (badHeaders is not null)
        {
            return badHeaders;
        }

        var payload = await WebhookRequest.PayloadAsync(request.ContentType, body);
        if (payload.Problem is { } badBody)
        {
            return badBody;
        }

        ParsedGitHubEvent fields;
        try
        {
            fields = GitHubEventParser.Parse(eventType, payload.Json);
        }
        catch (JsonException ex)
        {
            return Problem(StatusCodes.Status400BadRequest, "Invalid payload", $"The payload is not valid JSON: {ex.Message}");
        }
        if (NotAboutThisRepo(eventType, fields, repo) is { } elsewhere)
        {
            return elsewhere;
        }

        var result = await services.Store.StoreAsync(new IncomingGitHubEvent(new Recipient(repo.Id, repo.UserId, repo.FullName), deliveryId,
            eventType, fields, payload.Json), deadline, cancellationToken);
        return Answer(result, repoId, context, services.Repos);
    }

    /// <summary>The 422 for a payload with no repository (a ping may have none) or another repository's.</summary>
    private static ProblemHttpResult? NotAboutThisRepo(string eventType, ParsedGitHubEvent fields, WebhookRepo repo)
    {
        if (fields.RepositoryFullName is null && eventType != "ping")
        {
            return Problem(StatusCodes.Status422UnprocessableEntity, "Payload has no repository",
                "The payload has no repository.full_name; this endpoint takes repository webhooks.");
        }
        if (fields.RepositoryFullName is not null
            && !string.Equals(fields.RepositoryFullName, repo.FullName, StringComparison.OrdinalIgnoreCase))
        {
            return Problem(StatusCodes.Status422UnprocessableEntity, "Payload is for another repository",
                $"The payload is for {fields.RepositoryFullName}, but this webhook URL belongs to {repo.FullName}.");
        }
        return null;
    }

    /// <summary>The answer once the store has spoken: stored or a duplicate (2xx, after the commit), the repo gone, or too busy.</summary>
    private static Results<Ok<WebhookAccepted>, ProblemHttpResult> Answer(StoreResult result, Guid repoId, HttpContext context,
        WebhookRepoCache repos)
    {
        switch (result.Outcome)
        {
            case StoreOutcome.RepoGone:
                repos.Evict(repoId);
                return Problem(StatusCodes.Status404NotFound, "Unknown repo", $"No tracked repo has the id {repoId}.");
            case StoreOutcome.Duplicate:
                return TypedResults.Ok(new WebhookAccepted("duplicate", null, null));
            case StoreOutcome.Busy:
                context.Response.Headers.RetryAfter = "5";
                return Problem(StatusCodes.Status503ServiceUnavailable, "Too many deliveries waiting",
                    "Too many deliveries are waiting for the database; this one was not stored. Retry later.");
            default:
                // Already announced to Realtime by the store, together with the rest of its batch.
                return TypedResults.Ok(new WebhookAccepted("stored", result.Id, result.Position));
        }
    }

    private static async Task<(WebhookRepo? Repo, ProblemHttpResult? Problem)> VerifySignatureAsync(
        IHeaderDictionary headers, WebhookRepo repo, System.Buffers.ReadOnlySequence<byte> body, WebhookRepoCache repos,
        GitHubWebhookOptions options, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        string? sha256 = headers[WebhookSignature.Sha256Header];
        string? sha1 = headers[WebhookSignature.Sha1Header];
        if (sha256 is null && !(options.AllowSha1 && sha1 is not null))
        {
            return (null, Problem(StatusCodes.Status401Unauthorized, "Missing signature",
                $"The {WebhookSignature.Sha256Header} header is required: set a secret on the GitHub webhook."));
        }

        bool Verify(WebhookRepo candidate) => sha256 is not null
            ? WebhookSignature.IsValidSha256(sha256, candidate.Key, body)
            : WebhookSignature.IsValidSha1(sha1, candidate.Key, body);

        if (Verify(repo))
        {
            return (repo, null);
        }
        // The secret may have been rotated through another replica since we cached it.
        if (await repos.ReloadAsync(repo, deadline, cancellationToken) is { } reloaded && Verify(reloaded))
        {
            return (reloaded, null);
        }
        return (null, Problem(StatusCodes.Status401Unauthorized, "Invalid signature",
            "The signature does not match the body and this repo's webhook secret."));
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        WebhookRequest.Problem(status, title, detail);
}

/// <summary>What the per-repo webhook receiver needs besides the request, bound with <c>[AsParameters]</c>.</summary>
public sealed class GitHubWebhookServices(
    WebhookRepoCache repos,
    GitHubEventStore store,
    IOptions<GitHubWebhookOptions> options,
    TimeProvider time)
{
    public WebhookRepoCache Repos { get; } = repos;
    public GitHubEventStore Store { get; } = store;
    public IOptions<GitHubWebhookOptions> Options { get; } = options;
    public TimeProvider Time { get; } = time;
}
