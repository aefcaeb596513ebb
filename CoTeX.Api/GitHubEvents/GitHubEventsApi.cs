using System.Globalization;
using System.Security.Claims;
using CoTeX.Api.Repos;
using CoTeX.Contracts;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using CoTeX.Shared.Web;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
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

    internal static async Task<Results<Ok<GitHubEventPage>, ProblemHttpResult>> ListAsync(
        ClaimsPrincipal user,
        NpgsqlDataSource dataSource,
        Guid? repoId,
        string? type,
        int? limit,
        string? cursor,
        CancellationToken cancellationToken)
    {
        var pageSize = limit ?? DefaultPageSize;
        if (pageSize is < 1 or > MaxPageSize)
        {
            return BadRequest($"limit must be between 1 and {MaxPageSize}.");
        }
        long? before = null;
        if (cursor is not null)
        {
            if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed <= 0)
            {
                return BadRequest("cursor is not valid: pass back a nextCursor from an earlier page.");
            }
            before = parsed;
        }
        if (type is { Length: 0 or > 100 })
        {
            return BadRequest("type must be a GitHub event name such as push or pull_request.");
        }

        var userId = user.GetUserId();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (repoId is { } repo && !await OwnsRepoAsync(connection, userId, repo, cancellationToken))
        {
            return ReposApi.RepoNotFound(repo);
        }

        var rows = (await connection.QueryAsync<GitHubEventRows.SummaryRow>(new CommandDefinition(
            $"""
            select {GitHubEventRows.SummaryColumns}
              from github_events e join tracked_repos r on r.id = e.repo_id
             where e.user_id = @userId
               and (@repoId::uuid is null or e.repo_id = @repoId)
               and (@type::text is null or e.event_type = @type)
               and (@before::bigint is null or e.id < @before)
             order by e.id desc
             limit @take
            """,
            new { userId, repoId, type, before, take = pageSize + 1 }, cancellationToken: cancellationToken))).ToList();

        var hasMore = rows.Count > pageSize;
        var items = rows.Take(pageSize).Select(r => r.ToContract()).ToArray();
        var nextCursor = hasMore ? items[^1].Id.ToString(CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new GitHubEventPage(items, nextCursor));
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
        var rows = (await connection.QueryAsync<RecentRow>(new CommandDefinition(
            """
            select id, seq as Position, repo_id as RepoId, event_type as Type, received_at as ReceivedAt
              from github_events
             where user_id = @userId and seq > @after
             order by seq
             limit @take
            """,
            new { userId = user.GetUserId(), after, take = take + 1 }, cancellationToken: cancellationToken))).ToList();

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

        // Postgres writes the JSON, payload included, so a 25 MB payload is never parsed and re-serialised here. The
        // payload is the JSON as delivered (body, migration 0007), or jsonb for events stored before that.
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var json = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            """
            select json_build_object(
                       'id', e.id, 'position', e.seq, 'repoId', e.repo_id, 'repoFullName', r.full_name,
                       'type', e.event_type, 'deliveryId', e.delivery_id, 'action', e.action, 'sender', e.sender,
                       'title', e.title, 'htmlUrl', e.html_url, 'receivedAt', e.received_at,
                       'payload', coalesce(convert_from(e.body, 'UTF8')::json, e.payload::json))::text
              from github_events e join tracked_repos r on r.id = e.repo_id
             where e.id = @id and e.user_id = @userId
            """,
            new { id, userId = user.GetUserId() }, cancellationToken: cancellationToken));

        return json is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Event not found",
                detail: $"You have no event with the id {id}.")
            : TypedResults.Text(json, "application/json");
    }

    private static Task<bool> OwnsRepoAsync(NpgsqlConnection connection, Guid userId, Guid repoId, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from tracked_repos where id = @repoId and user_id = @userId)",
            new { repoId, userId }, cancellationToken: cancellationToken));

    private static ProblemHttpResult BadRequest(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid query", detail: detail);

    private sealed record RecentRow(long Id, long Position, Guid RepoId, string Type, DateTime ReceivedAt);
}
