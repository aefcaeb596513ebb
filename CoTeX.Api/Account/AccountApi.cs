using System.Globalization;
using System.Security.Claims;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Billing;
using CoTeX.Shared.Plans;
using CoTeX.Shared.Web;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Npgsql;
using Stripe;

namespace CoTeX.Api.Account;

/// <summary>
/// <c>DELETE /api/me</c>: closes the caller's account. A paying user's subscription is canceled first, at once and
/// without renewal; when Stripe cannot do that now, nothing is deleted and the answer says to retry. Then the repos
/// and their events go, the user row stays as a tombstone (its tokens are refused from then on), and every Api and
/// Realtime process is told at once (<see cref="AccountClosures"/>).
/// </summary>
public static class AccountApi
{
    private const int RetryAfterSeconds = 30;

    public static RouteGroupBuilder MapAccountApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/me").WithTags("Account").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapDelete("/", DeleteAsync).WithSummary("Cancels the caller's subscription, deletes their repos and events, and closes the account.")
            .ProducesProblem(StatusCodes.Status502BadGateway).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return api;
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        ClaimsPrincipal user, HttpContext context, NpgsqlDataSource dataSource, BillingSync billing,
        IOptions<StripeOptions> stripe, AccountClosures closures, CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        if (await CancelSubscriptionAsync(userId, dataSource, billing, stripe.Value, cancellationToken) is { } problem)
        {
            context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return problem;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.LockUserAsync(userId, transaction, cancellationToken);
        // Repos cascade to their events and dedupe keys, a GitHub connection to its access rows (its tokens go with it);
        // the user row stays as a tombstone so old tokens are refused.
        // The subscription has just ended in Stripe (its webhook will say so too).
        await connection.ExecuteAsync(new CommandDefinition(
            """
            delete from tracked_repos where user_id = @userId;
            delete from github_connections where user_id = @userId;
            delete from github_app_connect_states where user_id = @userId;
            update subscriptions set plan = 'free', payment_problem = false where user_id = @userId;
            update users set deleted_at = now(), email = null where id = @userId;
            """, new { userId }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        await closures.AnnounceAsync(userId);
        return TypedResults.NoContent();
    }

    /// <summary>Ends the user's subscriptions in Stripe; a problem to answer with when that cannot be done now.</summary>
    private static async Task<ProblemHttpResult?> CancelSubscriptionAsync(Guid userId, NpgsqlDataSource dataSource,
        BillingSync billing, StripeOptions stripe, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var stored = await connection.QuerySingleOrDefaultAsync<(string? CustomerId, string Plan)?>(new CommandDefinition(
            "select stripe_customer_id, plan from subscriptions where user_id = @userId", new { userId },
            cancellationToken: cancellationToken));
        if (stored is not { CustomerId: { } customerId } billed)
        {
            return null; // never a paying customer
        }
        if (!stripe.IsEnabled)
        {
            return billed.Plan == "pro"
                ? Problem(StatusCodes.Status503ServiceUnavailable, "Billing is unavailable",
                    "The Pro subscription cannot be canceled while billing is unavailable. Nothing was deleted; try again later.")
                : null;
        }
        try
        {
            await billing.CancelSubscriptionsAsync(customerId, cancellationToken);
            return null;
        }
        catch (StripeException ex) when ((int)ex.HttpStatusCode is > 0 and < 500)
        {
            return Problem(StatusCodes.Status502BadGateway, "Stripe refused to cancel the subscription",
                $"Stripe answered {(int)ex.HttpStatusCode}: {ex.Message} Nothing was deleted; try again later.");
        }
        catch (Exception ex) when (ex is StripeException or HttpRequestException)
        {
            return Problem(StatusCodes.Status503ServiceUnavailable, "Stripe is unavailable",
                "The subscription could not be canceled because Stripe cannot be reached. Nothing was deleted; try again later.");
        }
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail);
}
