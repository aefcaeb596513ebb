using System.Security.Claims;
using System.Text.RegularExpressions;
using CoTeX.Api.Account;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Contracts;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Data;
using CoTeX.Shared.GitHubApp;
using CoTeX.Shared.Plans;
using CoTeX.Shared.Web;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CoTeX.Api.Repos;

/// <summary>
/// The repos a user tracks: register, list, pause, remove, rotate a webhook secret. A repo's events arrive through
/// its own webhook (the URL and secret are handed out at registration) or, for a repo the user can access through an
/// installation of CoTeX's GitHub App, through the app with nothing to set up (<see cref="RepoSources"/>).
/// </summary>
public static partial class ReposApi
{
    public static RouteGroupBuilder MapReposApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/repos").WithTags("Repos").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapPost("/", CreateAsync).WithSummary("Starts tracking a GitHub repository.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status410Gone);
        api.MapGet("/", ListAsync).WithSummary("Lists the caller's repos and plan usage.");
        api.MapPatch("/{id:guid}", UpdateAsync).WithSummary("Pauses a repo or makes it active again (within the plan's limit).")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status410Gone);
        api.MapDelete("/{id:guid}", DeleteAsync).WithSummary("Stops tracking a repo and deletes its events.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/{id:guid}/rotate-secret", RotateSecretAsync).WithSummary("Replaces the repo's webhook secret.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    // GitHub's rules: owner 1-39 of [A-Za-z0-9-]; repository 1-100 of [A-Za-z0-9._-], not "." or "..".
    [GeneratedRegex(@"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$")]
    private static partial Regex FullNamePattern();

    internal static async Task<Results<Created<CreatedRepo>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateRepoRequest request, ClaimsPrincipal user, HttpContext context, [AsParameters] ReposServices services,
        CancellationToken cancellationToken)
    {
        var fullName = request.FullName?.Trim();
        if (Invalid(request, fullName, services.App.Value) is { } invalid)
        {
            return invalid;
        }
        var userId = user.GetUserId();
        var id = Guid.CreateVersion7();

        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Lock the user row so two concurrent requests cannot both take the last free slot.
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return AccountApi.Closed();
        }
        var viaApp = services.App.Value.IsEnabled && request.Source != RepoSources.Webhook
            ? await GitHubAccessQueries.TrackableAsync(connection, transaction, userId, fullName!, cancellationToken)
            : null;
        if (NotTrackableThroughApp(request, fullName!, viaApp) is { } refused)
        {
            return refused;
        }
        if (await NoRoomForAnotherActiveRepoAsync(connection, transaction, userId, services.Plans.Value, cancellationToken) is { } full)
        {
            return full;
        }

        var secret = viaApp is null ? WebhookSecrets.Generate() : null;
        try
        {
            // An app repo keeps GitHub's spelling of its name and is found by GitHub's repository id.
            await TrackedRepoQueries.InsertAsync(connection, transaction, id, userId, viaApp?.FullName ?? fullName!,
                viaApp is null ? RepoSources.Webhook : RepoSources.App, secret is null ? null : services.Secrets.Protect(secret),
                viaApp?.RepoId, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Already tracked",
                detail: $"You already track {fullName}.");
        }

        var created = viaApp is null
            ? new CreatedRepo(id, fullName!, WebhookUrl(services.Api.Value, context.Request, id), secret, "application/json")
            : new CreatedRepo(id, viaApp.FullName, null, null, null, RepoSources.App);
        return TypedResults.Created($"/api/repos/{id}", created);
    }

    /// <summary>The 400 for a request that names no repository, an unknown source, or the app while its mode is off.</summary>
    private static ValidationProblem? Invalid(CreateRepoRequest request, string? fullName, GitHubAppOptions app)
    {
        if (fullName is null || !FullNamePattern().IsMatch(fullName))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["fullName"] = ["Give the repository as owner/name, e.g. octocat/Hello-World."],
            });
        }
        if (request.Source is not (null or RepoSources.Webhook or RepoSources.App))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["source"] = [$"Give source as \"{RepoSources.App}\" (CoTeX's GitHub App), \"{RepoSources.Webhook}\" (a webhook you add), or leave it out."],
            });
        }
        if (request.Source == RepoSources.App && !app.IsEnabled)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["source"] = ["GitHub App mode is off on this server: track the repo with a webhook."],
            });
        }
        return null;
    }

    /// <summary>The 403 when the app cannot deliver the repository to the caller (suspended, or not theirs on GitHub).</summary>
    private static ProblemHttpResult? NotTrackableThroughApp(CreateRepoRequest request, string fullName,
        GitHubAccessQueries.TrackableRepository? viaApp)
    {
        if (viaApp is { Suspended: true })
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "The GitHub App's installation is suspended",
                detail: $"The installation of the CoTeX GitHub App that covers {viaApp.FullName} is suspended: nothing is delivered " +
                        "through it until an owner unsuspends it. Track the repo with a webhook (source \"webhook\") meanwhile.");
        }
        if (request.Source == RepoSources.App && viaApp is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not accessible through the GitHub App",
                detail: $"GitHub has not told CoTeX that you can access {fullName} through the CoTeX GitHub App. Connect GitHub " +
                        "(POST /api/github-app/connect), ask an owner to install the app on the repository, or track it with a webhook.");
        }
        return null;
    }

    internal static async Task<Ok<RepoList>> ListAsync(ClaimsPrincipal user, HttpContext context, [AsParameters] ReposServices services,
        CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        var rows = await TrackedRepoQueries.ListAsync(connection, userId, cancellationToken);
        var plan = await connection.GetPlanAsync(userId, cancellationToken: cancellationToken);

        var repos = rows.Select(r => r.ToContract(WebhookUrl(services.Api.Value, context.Request, r.Id))).ToArray();
        var usage = new PlanUsage(PlanName(plan), repos.Count(r => !r.Paused), services.Plans.Value.RepoLimit(plan));
        return TypedResults.Ok(new RepoList(repos, usage));
    }

    internal static async Task<Results<Ok<TrackedRepo>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateRepoRequest request, ClaimsPrincipal user, HttpContext context, [AsParameters] ReposServices services,
        CancellationToken cancellationToken)
    {
        if (request.Paused is not { } paused)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["paused"] = ["Give paused: true to pause the repo or paused: false to make it active."],
            });
        }
        var userId = user.GetUserId();
        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return AccountApi.Closed();
        }
        var current = await TrackedRepoQueries.PausedAsync(connection, transaction, id, userId, cancellationToken);
        if (current is null)
        {
            return RepoNotFound(id);
        }
        if (current == true && !paused
            && await NoRoomForAnotherActiveRepoAsync(connection, transaction, userId, services.Plans.Value, cancellationToken) is { } full)
        {
            return full;
        }
        var row = await TrackedRepoQueries.SetPausedAsync(connection, transaction, id, paused, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return TypedResults.Ok(row.ToContract(WebhookUrl(services.Api.Value, context.Request, row.Id)));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, ClaimsPrincipal user, [AsParameters] ReposServices services, CancellationToken cancellationToken)
    {
        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        var deleted = await TrackedRepoQueries.DeleteAsync(connection, id, user.GetUserId(), cancellationToken);
        services.Cache.Evict(id);
        return deleted ? TypedResults.NoContent() : RepoNotFound(id);
    }

    internal static async Task<Results<Ok<RotatedSecret>, ProblemHttpResult>> RotateSecretAsync(
        Guid id, ClaimsPrincipal user, [AsParameters] ReposServices services, CancellationToken cancellationToken)
    {
        var secret = WebhookSecrets.Generate();
        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        var source = await TrackedRepoQueries.RotateSecretAsync(connection, id, user.GetUserId(), services.Secrets.Protect(secret),
            cancellationToken);
        services.Cache.Evict(id);
        return source switch
        {
            null => RepoNotFound(id),
            RepoSources.App => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Delivered by the GitHub App",
                detail: "This repo's events come through CoTeX's GitHub App, which has no per-repo secret to rotate."),
            _ => TypedResults.Ok(new RotatedSecret(id, secret)),
        };
    }

    /// <summary>The 403 naming the plan's limit when every active slot is taken; null when there is room. User row locked.</summary>
    private static async Task<ProblemHttpResult?> NoRoomForAnotherActiveRepoAsync(NpgsqlConnection connection,
        NpgsqlTransaction transaction, Guid userId, PlanOptions plans, CancellationToken cancellationToken)
    {
        var plan = await connection.GetPlanAsync(userId, transaction, cancellationToken);
        var limit = plans.RepoLimit(plan);
        var used = await TrackedRepoQueries.CountActiveAsync(connection, userId, transaction, cancellationToken);
        return used < limit
            ? null
            : TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Repo limit reached",
                detail: $"The {PlanName(plan)} plan allows {limit} active repos and {used} are in use. " +
                        "Remove or pause a repo, or upgrade.",
                extensions: new Dictionary<string, object?> { ["limit"] = limit, ["used"] = used, ["plan"] = PlanName(plan) });
    }

    internal static ProblemHttpResult RepoNotFound(Guid id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Repo not found",
            detail: $"You track no repo with the id {id}.");

    private static string PlanName(Plan plan) => plan == Plan.Pro ? "pro" : "free";

    private static string WebhookUrl(ApiOptions options, HttpRequest request, Guid id) =>
        options.PublicUrl(request, $"/api/webhooks/github/{id}");

}

/// <summary>What the repos API's handlers need besides the request, bound with <c>[AsParameters]</c> (as eShop's CatalogServices).</summary>
public sealed class ReposServices(
    NpgsqlDataSource dataSource,
    WebhookSecrets secrets,
    WebhookRepoCache cache,
    IOptions<PlanOptions> plans,
    IOptions<ApiOptions> api,
    IOptions<GitHubAppOptions> app)
{
    public NpgsqlDataSource DataSource { get; } = dataSource;
    public WebhookSecrets Secrets { get; } = secrets;
    public WebhookRepoCache Cache { get; } = cache;
    public IOptions<PlanOptions> Plans { get; } = plans;
    public IOptions<ApiOptions> Api { get; } = api;
    public IOptions<GitHubAppOptions> App { get; } = app;
}
