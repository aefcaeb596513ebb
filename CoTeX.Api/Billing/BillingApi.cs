using System.Security.Claims;
using CoTeX.Api.Account;
using CoTeX.Api.Repos;
using CoTeX.Contracts;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Billing;
using CoTeX.Shared.Data;
using CoTeX.Shared.Plans;
using CoTeX.Shared.Web;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Npgsql;
using Stripe;
using Plan = CoTeX.Shared.Plans.Plan;

namespace CoTeX.Api.Billing;

/// <summary>Upgrading through Stripe Checkout, managing the subscription in Stripe's portal, and the plan as stored.</summary>
public static class BillingApi
{
    public static IEndpointRouteBuilder MapBillingApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("Billing").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapPost("/checkout", CheckoutAsync).WithSummary("Creates a Stripe Checkout session for the Pro plan.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status410Gone)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        api.MapPost("/billing/portal", PortalAsync).WithSummary("Creates a Stripe customer portal session.")
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        api.MapGet("/billing", GetAsync).WithSummary("The caller's plan, subscription status and repo usage.");
        return app;
    }

    private sealed record BillingRow(string? Plan, string? StripeCustomerId, string? Status, DateTime? CurrentPeriodEnd,
        bool? PaymentProblem, bool IsAnonymous);

    private static Task<BillingRow> ReadAsync(NpgsqlConnection connection, Guid userId, CancellationToken cancellationToken,
        NpgsqlTransaction? transaction = null) =>
        connection.QuerySingleAsync<BillingRow>(new CommandDefinition(
            """
            select s.plan, s.stripe_customer_id as StripeCustomerId, s.status, s.current_period_end as CurrentPeriodEnd,
                   s.payment_problem as PaymentProblem, u.is_anonymous as IsAnonymous
              from users u left join subscriptions s on s.user_id = u.id
             where u.id = @userId
            """,
            new { userId }, transaction, cancellationToken: cancellationToken));

    internal static async Task<Results<Ok<CheckoutSession>, ProblemHttpResult>> CheckoutAsync(
        ClaimsPrincipal user, NpgsqlDataSource dataSource, StripeClient stripe, IOptions<StripeOptions> options,
        CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.IsEnabled)
        {
            return BillingDisabled();
        }
        var userId = user.GetUserId();
        if (user.IsAnonymous())
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Sign in to upgrade",
                detail: "Anonymous accounts stay on the Free plan: link an email or provider to your account first.");
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        // The user lock is held until the session exists, so a closing account either waits for it (and its closure
        // then expires the session) or has closed first (and no session is made for it).
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (!await connection.LockUserAsync(userId, transaction, cancellationToken))
        {
            return AccountApi.Closed();
        }
        var row = await ReadAsync(connection, userId, cancellationToken, transaction);
        if (row.Plan == "pro")
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Already Pro",
                detail: "You already have the Pro plan; manage it with POST /api/billing/portal.");
        }

        var customerId = row.StripeCustomerId;
        if (customerId is null)
        {
            // The idempotency key makes concurrent first checkouts share one customer.
            var customer = await new CustomerService(stripe).CreateAsync(new CustomerCreateOptions
            {
                Email = user.FindFirst(CurrentUser.EmailClaim)?.Value,
                Metadata = new Dictionary<string, string> { ["user_id"] = userId.ToString() },
            }, new RequestOptions { IdempotencyKey = $"cotex-customer-{userId}" }, cancellationToken);
            customerId = await connection.ExecuteScalarAsync<string>(new CommandDefinition(
                """
                insert into subscriptions (user_id, stripe_customer_id) values (@userId, @customerId)
                on conflict (user_id) do update
                   set stripe_customer_id = coalesce(subscriptions.stripe_customer_id, excluded.stripe_customer_id)
                returning stripe_customer_id
                """,
                new { userId, customerId = customer.Id }, transaction, cancellationToken: cancellationToken));
        }

        var session = await new Stripe.Checkout.SessionService(stripe).CreateAsync(new Stripe.Checkout.SessionCreateOptions
        {
            Mode = "subscription",
            Customer = customerId,
            ClientReferenceId = userId.ToString(),
            LineItems = [new Stripe.Checkout.SessionLineItemOptions { Price = settings.ProPriceId, Quantity = 1 }],
            SubscriptionData = new Stripe.Checkout.SessionSubscriptionDataOptions
            {
                Metadata = new Dictionary<string, string> { ["user_id"] = userId.ToString() },
            },
            SuccessUrl = settings.SuccessUrl,
            CancelUrl = settings.CancelUrl,
        }, cancellationToken: cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return TypedResults.Ok(new CheckoutSession(session.Url));
    }

    internal static async Task<Results<Ok<PortalSession>, ProblemHttpResult>> PortalAsync(
        ClaimsPrincipal user, NpgsqlDataSource dataSource, StripeClient stripe, IOptions<StripeOptions> options,
        CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.IsEnabled)
        {
            return BillingDisabled();
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await ReadAsync(connection, user.GetUserId(), cancellationToken);
        if (row.StripeCustomerId is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "No billing account",
                detail: "You have no Stripe customer yet: start with POST /api/checkout.");
        }
        var session = await new Stripe.BillingPortal.SessionService(stripe).CreateAsync(new Stripe.BillingPortal.SessionCreateOptions
        {
            Customer = row.StripeCustomerId,
            ReturnUrl = string.IsNullOrEmpty(settings.PortalReturnUrl) ? settings.SuccessUrl : settings.PortalReturnUrl,
        }, cancellationToken: cancellationToken);
        return TypedResults.Ok(new PortalSession(session.Url));
    }

    internal static async Task<Ok<BillingSummary>> GetAsync(
        ClaimsPrincipal user, NpgsqlDataSource dataSource, IOptions<PlanOptions> plans, IOptions<StripeOptions> options,
        CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await ReadAsync(connection, userId, cancellationToken);
        var plan = await connection.GetPlanAsync(userId, cancellationToken: cancellationToken);
        var used = await TrackedRepoQueries.CountActiveAsync(connection, userId, null, cancellationToken);
        return TypedResults.Ok(new BillingSummary(plan == Plan.Pro ? "pro" : "free", row.Status,
            row.CurrentPeriodEnd.AsUtcOffset(),
            row.PaymentProblem ?? false, used, plans.Value.RepoLimit(plan), options.Value.IsEnabled));
    }

    private static ProblemHttpResult BillingDisabled() =>
        TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Billing is not enabled",
            detail: "This deployment has no Stripe configuration (Stripe:SecretKey and friends).");
}
