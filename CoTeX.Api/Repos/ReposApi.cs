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
        CreateRepoRequest request,
        ClaimsPrincipal user,
        HttpContext context,
        NpgsqlDataSource dataSource,
        WebhookSecrets secrets,
        IOptions<PlanOptions> plans,
        IOptions<ApiOptions> apiOptions,
        IOptions<GitHubAppOptions> app,
        CancellationToken cancellationToken)
    {
        var fullName = request.FullName?.Trim();
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
        if (request.Source == RepoSources.App && !app.Value.IsEnabled)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["source"] = ["GitHub App mode is off on this server: track the repo with a webhook."],
            });
        }

        var userId = user.GetUserId();
        var id = Guid.CreateVersion7();

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Lock the user row so two concurrent requests cannot both take the last free slot.
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return AccountApi.Closed();
        }
        var viaApp = app.Value.IsEnabled && request.Source != RepoSources.Webhook
            ? await GitHubAccessQueries.TrackableAsync(connection, transaction, userId, fullName, cancellationToken)
            : null;
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
        if (await NoRoomForAnotherActiveRepoAsync(connection, transaction, userId, plans.Value, cancellationToken) is { } full)
        {
            return full;
        }

        var secret = viaApp is null ? WebhookSecrets.Generate() : null;
        try
        {
            // An app repo keeps GitHub's spelling of its name and is found by GitHub's repository id.
            await connection.ExecuteAsync(new CommandDefinition(
                """
                insert into tracked_repos (id, user_id, full_name, source, webhook_secret_protected, github_repo_id)
                values (@id, @userId, @fullName, @source, @protectedSecret, @githubRepoId)
                """,
                new
                {
                    id, userId, fullName = viaApp?.FullName ?? fullName, source = viaApp is null ? RepoSources.Webhook : RepoSources.App,
                    protectedSecret = secret is null ? null : secrets.Protect(secret), githubRepoId = viaApp?.RepoId,
                }, transaction, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Already tracked",
                detail: $"You already track {fullName}.");
        }

        var created = viaApp is null
            ? new CreatedRepo(id, fullName, WebhookUrl(apiOptions.Value, context.Request, id), secret, "application/json")
            : new CreatedRepo(id, viaApp.FullName, null, null, null, RepoSources.App);
        return TypedResults.Created($"/api/repos/{id}", created);
    }

    /// <summary>The repository as the user can access it through an installation of the app, or null.</summary>
    internal static async Task<Ok<RepoList>> ListAsync(
        ClaimsPrincipal user,
        HttpContext context,
        NpgsqlDataSource dataSource,
        IOptions<PlanOptions> plans,
        IOptions<ApiOptions> apiOptions,
        CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<RepoRow>(new CommandDefinition(
            """
            select id, full_name as FullName, paused, created_at as CreatedAt,
                   last_delivery_at as LastDeliveryAt, last_ping_at as LastPingAt, source
              from tracked_repos where user_id = @userId order by created_at, id
            """,
            new { userId }, cancellationToken: cancellationToken));
        var plan = await connection.GetPlanAsync(userId, cancellationToken: cancellationToken);

        var repos = rows.Select(r => r.ToContract(WebhookUrl(apiOptions.Value, context.Request, r.Id))).ToArray();
        var usage = new PlanUsage(PlanName(plan), repos.Count(r => !r.Paused), plans.Value.RepoLimit(plan));
        return TypedResults.Ok(new RepoList(repos, usage));
    }

    internal static async Task<Results<Ok<TrackedRepo>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        Guid id,
        UpdateRepoRequest request,
        ClaimsPrincipal user,
        HttpContext context,
        NpgsqlDataSource dataSource,
        IOptions<PlanOptions> plans,
        IOptions<ApiOptions> apiOptions,
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
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return AccountApi.Closed();
        }
        var current = await connection.QuerySingleOrDefaultAsync<bool?>(new CommandDefinition(
            "select paused from tracked_repos where id = @id and user_id = @userId", new { id, userId }, transaction,
            cancellationToken: cancellationToken));
        if (current is null)
        {
            return RepoNotFound(id);
        }
        if (current == true && !paused)
        {
            if (await NoRoomForAnotherActiveRepoAsync(connection, transaction, userId, plans.Value, cancellationToken) is { } full)
            {
                return full;
            }
        }
        var row = await connection.QuerySingleAsync<RepoRow>(new CommandDefinition(
            """
            update tracked_repos set paused = @paused where id = @id
            returning id, full_name as FullName, paused, created_at as CreatedAt,
                      last_delivery_at as LastDeliveryAt, last_ping_at as LastPingAt, source
            """,
            new { id, paused }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return TypedResults.Ok(row.ToContract(WebhookUrl(apiOptions.Value, context.Request, row.Id)));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, ClaimsPrincipal user, NpgsqlDataSource dataSource, WebhookRepoCache cache, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var deleted = await connection.ExecuteAsync(new CommandDefinition(
            "delete from tracked_repos where id = @id and user_id = @userId",
            new { id, userId = user.GetUserId() }, cancellationToken: cancellationToken));
        cache.Evict(id);
        return deleted == 0 ? RepoNotFound(id) : TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<RotatedSecret>, ProblemHttpResult>> RotateSecretAsync(
        Guid id, ClaimsPrincipal user, NpgsqlDataSource dataSource, WebhookSecrets secrets, WebhookRepoCache cache,
        CancellationToken cancellationToken)
    {
        var secret = WebhookSecrets.Generate();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var source = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            """
            update tracked_repos set webhook_secret_protected = case when source = 'webhook' then @protectedSecret end
             where id = @id and user_id = @userId
            returning source
            """,
            new { id, userId = user.GetUserId(), protectedSecret = secrets.Protect(secret) }, cancellationToken: cancellationToken));
        cache.Evict(id);
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
        var used = await CountActiveAsync(connection, userId, transaction, cancellationToken);
        return used < limit
            ? null
            : TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Repo limit reached",
                detail: $"The {PlanName(plan)} plan allows {limit} active repos and {used} are in use. " +
                        "Remove or pause a repo, or upgrade.",
                extensions: new Dictionary<string, object?> { ["limit"] = limit, ["used"] = used, ["plan"] = PlanName(plan) });
    }

    internal static Task<int> CountActiveAsync(NpgsqlConnection connection, Guid userId, NpgsqlTransaction? transaction,
        CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "select count(*)::int from tracked_repos where user_id = @userId and not paused",
            new { userId }, transaction, cancellationToken: cancellationToken));

    internal static ProblemHttpResult RepoNotFound(Guid id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Repo not found",
            detail: $"You track no repo with the id {id}.");

    private static string PlanName(Plan plan) => plan == Plan.Pro ? "pro" : "free";

    private static string WebhookUrl(ApiOptions options, HttpRequest request, Guid id) =>
        options.PublicUrl(request, $"/api/webhooks/github/{id}");


    // Npgsql reads timestamptz as UTC DateTime.
    private sealed record RepoRow(Guid Id, string FullName, bool Paused, DateTime CreatedAt,
        DateTime? LastDeliveryAt, DateTime? LastPingAt, string Source)
    {
        public TrackedRepo ToContract(string webhookUrl) => new(Id, FullName, Source == RepoSources.App ? null : webhookUrl, Paused,
            CreatedAt.AsUtcOffset(), LastDeliveryAt.AsUtcOffset(), LastPingAt.AsUtcOffset(), Source);
    }
}
