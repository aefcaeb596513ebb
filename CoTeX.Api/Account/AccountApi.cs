using System.Globalization;
using System.Security.Claims;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Billing;
using CoTeX.Shared.Plans;
using CoTeX.Shared.Web;
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

    /// <summary>
    /// End the billing, close the account in one transaction under the user lock, tell every process, and end any
    /// billing that started while it closed.
    /// </summary>
    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        ClaimsPrincipal user, HttpContext context, [AsParameters] AccountServices services, CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        if (await EndBillingAsync(userId, services, cancellationToken) is { } problem)
        {
            context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            return problem;
        }

        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return Closed(); // closed by a concurrent DELETE /api/me, which this one waited for
        }
        await AccountQueries.CloseAsync(connection, transaction, userId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        await services.Closures.AnnounceAsync(userId);

        // A second pass, now that the tombstone is committed: a Checkout session paid (or opened by a request already
        // under way) between the first pass and the commit was synced while the account was still open and is ended
        // here. Whatever this pass misses, the billing sync ends when its webhook or the Worker's reconciliation
        // finds the account closed; the account is closed either way.
        try
        {
            if (await EndBillingAsync(userId, services, CancellationToken.None) is not null)
            {
                LogSecondPassFailed(services.Loggers.CreateLogger(typeof(AccountApi).FullName!), userId);
            }
        }
        catch (NpgsqlException)
        {
            LogSecondPassFailed(services.Loggers.CreateLogger(typeof(AccountApi).FullName!), userId);
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
    private static async Task<ProblemHttpResult?> EndBillingAsync(Guid userId, AccountServices services,
        CancellationToken cancellationToken)
    {
        await using var connection = await services.DataSource.OpenConnectionAsync(cancellationToken);
        if (await AccountQueries.BillingAsync(connection, userId, cancellationToken) is not { CustomerId: { } customerId } billed)
        {
            return null; // never a paying customer
        }
        if (!services.Stripe.Value.IsEnabled)
        {
            return billed.Plan == "pro"
                ? Problem(StatusCodes.Status503ServiceUnavailable, "Billing is unavailable",
                    "The Pro subscription cannot be canceled while billing is unavailable. Nothing was deleted; try again later.")
                : null;
        }
        try
        {
            await services.Billing.EndBillingAsync(customerId, cancellationToken);
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

/// <summary>What closing an account needs besides the request, bound with <c>[AsParameters]</c> (as eShop's CatalogServices).</summary>
public sealed class AccountServices(
    NpgsqlDataSource dataSource,
    BillingSync billing,
    IOptions<StripeOptions> stripe,
    AccountClosures closures,
    ILoggerFactory loggers)
{
    public NpgsqlDataSource DataSource { get; } = dataSource;
    public BillingSync Billing { get; } = billing;
    public IOptions<StripeOptions> Stripe { get; } = stripe;
    public AccountClosures Closures { get; } = closures;
    public ILoggerFactory Loggers { get; } = loggers;
}
