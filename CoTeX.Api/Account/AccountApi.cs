using System.Security.Claims;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Plans;
using CoTeX.Shared.Web;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;

namespace CoTeX.Api.Account;

/// <summary><c>DELETE /api/me</c>: deletes the caller's CoTeX data and refuses the account's tokens from then on.</summary>
public static class AccountApi
{
    public static RouteGroupBuilder MapAccountApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/me").WithTags("Account").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapDelete("/", DeleteAsync).WithSummary("Deletes the caller's repos and events and closes the account.")
            .ProducesProblem(StatusCodes.Status409Conflict);
        return api;
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        ClaimsPrincipal user, NpgsqlDataSource dataSource, UserProvisioner provisioner, CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.LockUserAsync(userId, transaction, cancellationToken);
        if (await connection.GetPlanAsync(userId, transaction, cancellationToken) == Plan.Pro)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Subscription still active",
                detail: "Cancel the Pro subscription first (POST /api/billing/portal), then delete the account.");
        }
        // Repos cascade to their events and dedupe keys; the user row stays as a tombstone so old tokens are refused.
        await connection.ExecuteAsync(new CommandDefinition(
            """
            delete from tracked_repos where user_id = @userId;
            update users set deleted_at = now(), email = null where id = @userId;
            """, new { userId }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        provisioner.Forget(userId);
        return TypedResults.NoContent();
    }
}
