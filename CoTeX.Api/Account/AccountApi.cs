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
/// <c>DELETE /api/me</c>: closes the caller's account. A customer's billing is ended first: open Checkout sessions are
/// expired and the subscription is canceled, at once and without renewal; when Stripe cannot do that now, nothing is
/// deleted and the answer says to retry. Then the repos and their events go, the user row stays as a tombstone (its
/// tokens are refused from then on), and every Api and Realtime process is told at once (<see cref="AccountClosures"/>).
/// A closed account is never billed and never stores again: the user lock refuses it (<see cref="Closed"/>), and the
/// billing sync ends any billing that still reaches it (<see cref="BillingSync"/>).
/// </summary>
public static partial class AccountApi
{
    private const int RetryAfterSeconds = 30;

    public static RouteGroupBuilder MapAccountApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/me").WithTags("Account").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapDelete("/", DeleteAsync).WithSummary("Cancels the caller's subscription, deletes their repos and events, and closes the account.")
            .ProducesProblem(StatusCodes.Status410Gone).ProducesProblem(StatusCodes.Status502BadGateway).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return api;
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        ClaimsPrincipal user, HttpContext context, NpgsqlDataSource dataSource, BillingSync billing,
        IOptions<StripeOptions> stripe, AccountClosures closures, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        if (await EndBillingAsync(userId, dataSource, billing, stripe.Value, cancellationToken) is { } problem)
        {
            context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return problem;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return Closed(); // closed by a concurrent DELETE /api/me, which this one waited for
        }
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

        // A second pass, now that the tombstone is committed: a Checkout session paid (or opened by a request already
        // under way) between the first pass and the commit was synced while the account was still open and is ended
        // here. Whatever this pass misses, the billing sync ends when its webhook or the Worker's reconciliation
        // finds the account closed; the account is closed either way.
        try
        {
            if (await EndBillingAsync(userId, dataSource, billing, stripe.Value, CancellationToken.None) is not null)
            {
                LogSecondPassFailed(loggers.CreateLogger(typeof(AccountApi).FullName!), userId);
            }
        }
        catch (NpgsqlException)
        {
            LogSecondPassFailed(loggers.CreateLogger(typeof(AccountApi).FullName!), userId);
        }
        return TypedResults.NoContent();
    }

    /// <summary>
    /// What every writer that takes the user lock answers when the account is closed (<see cref="PlanQueries.LockUserAsync"/>
    /// refused): a request authenticated just before <c>DELETE /api/me</c> committed. Requests made after it never
    /// get this far: their token is refused with 401.
    /// </summary>
    internal static ProblemHttpResult Closed() =>
        Problem(StatusCodes.Status410Gone, "Account closed", "This account has been closed; nothing was changed.");

    /// <summary>Ends the user's billing in Stripe; a problem to answer with when that cannot be done now.</summary>
    private static async Task<ProblemHttpResult?> EndBillingAsync(Guid userId, NpgsqlDataSource dataSource,
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
            await billing.EndBillingAsync(customerId, cancellationToken);
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

    [LoggerMessage(LogLevel.Warning, "Account {UserId} is closed, but Stripe could not be checked again for billing started while it closed; the billing sync ends any it finds")]
    private static partial void LogSecondPassFailed(ILogger logger, Guid userId);
}
