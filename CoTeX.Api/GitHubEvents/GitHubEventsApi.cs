using System.Globalization;
using System.Security.Claims;
using CoTeX.Api.Repos;
using CoTeX.Contracts;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Data;
using CoTeX.Shared.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Npgsql;

namespace CoTeX.Api.GitHubEvents;

/// <summary>
/// Reading stored events. Only the caller's own events exist here: someone else's event id or repo id is a 404,
/// exactly like an id that was never used.
/// </summary>
public static class GitHubEventsApi
{
    public const int MaxPageSize = 100;
    public const int DefaultPageSize = 50;
    public const int MaxRecent = 1000;

    public static RouteGroupBuilder MapGitHubEventsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/github-events").WithTags("GitHub events").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapGet("/", ListAsync).WithSummary("Pages through the caller's events, newest first.");
        api.MapGet("/recent", RecentAsync).WithSummary("Events stored after a position, oldest first (for polling).");
        api.MapGet("/event", GetAsync).WithSummary("One event with its full payload.")
            .Produces<GitHubEventDetail>(StatusCodes.Status200OK, "application/json");
        return api;
    }

    /// <summary>Check the query, check the repo is the caller's, read one more event than the page holds (is there a next page?).</summary>
    internal static async Task<Results<Ok<GitHubEventPage>, ProblemHttpResult>> ListAsync(
        ClaimsPrincipal user,
        NpgsqlDataSource dataSource,
        [AsParameters] GitHubEventPageRequest request,
        CancellationToken cancellationToken)
    {
        if (Invalid(request, out var pageSize, out var before) is { } invalid)
        {
            return invalid;
        }

        var userId = user.GetUserId();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (request.RepoId is { } repo && !await TrackedRepoQueries.ExistsAsync(connection, repo, userId, cancellationToken))
        {
            return ReposApi.RepoNotFound(repo);
        }
        var rows = await GitHubEventQueries.PageAsync(connection, userId, request.RepoId, request.Type, before, pageSize + 1,
            cancellationToken);

        var hasMore = rows.Count > pageSize;
        var items = rows.Take(pageSize).Select(r => r.ToContract()).ToArray();
        var nextCursor = hasMore ? items[^1].Id.ToString(CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new GitHubEventPage(items, nextCursor));
    }

    /// <summary>The 400 for a page size out of range, a cursor we did not hand out, or an empty or overlong type.</summary>
    private static ProblemHttpResult? Invalid(GitHubEventPageRequest request, out int pageSize, out long? before)
    {
        pageSize = request.Limit ?? DefaultPageSize;
        before = null;
        if (pageSize is < 1 or > MaxPageSize)
        {
            return BadRequest($"limit must be between 1 and {MaxPageSize}.");
        }
        if (request.Cursor is not null)
        {
            if (!long.TryParse(request.Cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed <= 0)
            {
                return BadRequest("cursor is not valid: pass back a nextCursor from an earlier page.");
            }
            before = parsed;
        }
        if (request.Type is { Length: 0 or > 100 })
        {
            return BadRequest("type must be a GitHub event name such as push or pull_request.");
        }
        return null;
    }

    internal static async Task<Results<Ok<RecentGitHubEvents>, ProblemHttpResult>> RecentAsync(
        ClaimsPrincipal user,
        NpgsqlDataSource dataSource,
        long? since,
        int? limit,
        CancellationToken cancellationToken)
    {
        var after = since ?? 0;
        var take = limit ?? MaxRecent;
        if (after < 0)
        {
            return BadRequest("since must be a position (0 or more) from an earlier answer or event.");
        }
        if (take is < 1 or > MaxRecent)
        {
            return BadRequest($"limit must be between 1 and {MaxRecent}.");
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await GitHubEventQueries.RecentAsync(connection, user.GetUserId(), after, take + 1, cancellationToken);

        var items = rows.Take(take)
            .Select(r => new RecentGitHubEvent(r.Id, r.Position, r.RepoId, r.Type, r.ReceivedAt.AsUtcOffset()))
            .ToArray();
        return TypedResults.Ok(new RecentGitHubEvents(items, items.Length > 0 ? items[^1].Position : after, rows.Count > take));
    }

    internal static async Task<Results<ContentHttpResult, ProblemHttpResult>> GetAsync(
        ClaimsPrincipal user, NpgsqlDataSource dataSource, long? id, CancellationToken cancellationToken)
    {
        if (id is not > 0)
        {
            return BadRequest("id is required: the id of one of your events.");
        }

        // Postgres writes the JSON, payload included, so a 25 MB payload is never parsed and re-serialised here.
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var json = await GitHubEventQueries.DetailJsonAsync(connection, id.Value, user.GetUserId(), cancellationToken);

        return json is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Event not found",
                detail: $"You have no event with the id {id}.")
            : TypedResults.Text(json, "application/json");
    }

    private static ProblemHttpResult BadRequest(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid query", detail: detail);
}

/// <summary>
/// The query of <c>GET /api/github-events</c>, bound with <c>[AsParameters]</c> (as eShop's PaginationRequest). Each
/// property names its query parameter, so the names stay the camelCase ones clients and the OpenAPI document use.
/// </summary>
public sealed class GitHubEventPageRequest
{
    /// <summary>Only this repo's events (a repo the caller does not track is a 404).</summary>
    [FromQuery(Name = "repoId")]
    public Guid? RepoId { get; init; }

    /// <summary>Only events of this GitHub event name.</summary>
    [FromQuery(Name = "type")]
    public string? Type { get; init; }

    /// <summary>The page size, <see cref="GitHubEventsApi.DefaultPageSize"/> when not given.</summary>
    [FromQuery(Name = "limit")]
    public int? Limit { get; init; }

    /// <summary>A <c>nextCursor</c> from an earlier page.</summary>
    [FromQuery(Name = "cursor")]
    public string? Cursor { get; init; }
}
