using CoTeX.Contracts;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using CoTeX.Shared.Plans;
using CoTeX.Shared.Web;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using StackExchange.Redis;

namespace CoTeX.Api.Admin;

/// <summary>Operator views, for users whose token says <c>app_metadata.role = "admin"</c>; everyone else gets 403.</summary>
public static class AdminApi
{
    public static RouteGroupBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/admin").WithTags("Admin")
            .RequireAuthorization(AdminPolicy.Name)
            .RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        admin.MapGet("/stats", StatsAsync).WithSummary("Ingest volume, connected clients per replica, users per plan, Stripe drift corrections.");
        admin.MapGet("/users", UsersAsync).WithSummary("All users, oldest first, paged.");
        return admin;
    }

    internal static async Task<Ok<AdminStats>> StatsAsync(NpgsqlDataSource dataSource, IConnectionMultiplexer redis, TimeProvider time,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var (lastHour, lastDay) = await connection.QuerySingleAsync<(long, long)>(new CommandDefinition(
            """
            select count(*) filter (where received_at > now() - interval '1 hour'), count(*)
              from github_events where received_at > now() - interval '1 day'
            """, cancellationToken: cancellationToken));
        var plans = (await connection.QueryAsync<(string Plan, long Users)>(new CommandDefinition(
            $"select {PlanQueries.PlanExpression} as plan, count(*) from users u left join subscriptions s on s.user_id = u.id group by 1",
            cancellationToken: cancellationToken))).ToDictionary(r => r.Plan, r => r.Users);
        foreach (var plan in new[] { "free", "pro" })
        {
            plans.TryAdd(plan, 0);
        }

        var replicas = new Dictionary<string, int>();
        long corrections = 0;
        var scope = OpsCounters.DeploymentScope(dataSource.ConnectionString);
        try
        {
            var db = redis.GetDatabase();
            foreach (var entry in await db.HashGetAllAsync(OpsCounters.RealtimeConnections))
            {
                // This deployment's replicas (and, during a rolling deploy, those too old to name their deployment).
                if (OpsCounters.ParseHeartbeat(entry.Value) is { } beat && (beat.Scope is null || beat.Scope == scope)
                    && time.GetUtcNow() - beat.At < OpsCounters.HeartbeatLifetime)
                {
                    replicas[entry.Name!] = beat.Connections;
                }
            }
            corrections = (long?)await db.StringGetAsync(OpsCounters.DriftCorrections) ?? 0;
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
            // Shown as empty; /health says why.
        }
        return TypedResults.Ok(new AdminStats(lastHour, lastDay, replicas, plans, corrections));
    }

    internal static async Task<Results<Ok<AdminUserPage>, ProblemHttpResult>> UsersAsync(
        NpgsqlDataSource dataSource, int? limit, Guid? cursor, CancellationToken cancellationToken)
    {
        var take = limit ?? 50;
        if (take is < 1 or > 200)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid query",
                detail: "limit must be between 1 and 200.");
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = (await connection.QueryAsync<UserRow>(new CommandDefinition(
            $"""
            select u.id, u.email, u.is_anonymous as IsAnonymous, {PlanQueries.PlanExpression} as Plan,
                   (select count(*)::int from tracked_repos r where r.user_id = u.id) as Repos,
                   u.created_at as CreatedAt, u.last_seen_at as LastSeenAt
              from users u left join subscriptions s on s.user_id = u.id
             where @cursor::uuid is null or u.id > @cursor
             order by u.id
             limit @take
            """,
            new { cursor, take = take + 1 }, cancellationToken: cancellationToken))).ToList();
        var items = rows.Take(take).Select(r => new AdminUser(r.Id, r.Email, r.IsAnonymous, r.Plan, r.Repos,
            r.CreatedAt.AsUtcOffset(), r.LastSeenAt.AsUtcOffset())).ToArray();
        return TypedResults.Ok(new AdminUserPage(items, rows.Count > take ? items[^1].Id.ToString() : null));
    }

    private sealed record UserRow(Guid Id, string? Email, bool IsAnonymous, string Plan, int Repos, DateTime CreatedAt, DateTime LastSeenAt);
}
