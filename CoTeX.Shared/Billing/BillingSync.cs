using System.Diagnostics.Metrics;
using CoTeX.ServiceDefaults;
using CoTeX.Shared.Data;
using CoTeX.Shared.Plans;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Plan = CoTeX.Shared.Plans.Plan;
using Stripe;

namespace CoTeX.Shared.Billing;

/// <summary>A customer's billing state as Stripe has it, reduced to what CoTeX stores.</summary>
public sealed record BillingState(Plan Plan, string? SubscriptionId, string? Status, DateTimeOffset? CurrentPeriodEnd, bool PaymentProblem);

/// <summary>
/// Makes the database agree with Stripe for one customer: reads all of the customer's subscriptions from Stripe (so the
/// outcome never depends on which webhook arrived first or at all), derives the plan, stores it, and applies the plan
/// to the user's repos (a downgrade pauses repos beyond the limit, an upgrade resumes them) — in one transaction.
/// </summary>
public sealed partial class BillingSync(
    StripeClient stripe,
    NpgsqlDataSource dataSource,
    IOptions<PlanOptions> plans,
    IMeterFactory meters,
    ILogger<BillingSync> logger)
{
    private readonly Counter<long> _planChanges = meters.Create(CoTeXTelemetry.Name).CreateCounter<long>(
        "cotex.billing.plan_changes", description: "Plan changes applied from Stripe");

    /// <summary>
    /// Syncs the customer. <paramref name="userIdHint"/> links a customer CoTeX has not seen yet (checkout's
    /// client_reference_id, subscription metadata). Returns whether anything changed, or null for an unknown customer.
    /// A closed account is never Pro: whatever of its billing is still live in Stripe (a Checkout session paid after
    /// the closure, say) is ended, and the account keeps the Free plan.
    /// </summary>
    public async Task<bool?> SyncCustomerAsync(string customerId, Guid? userIdHint, CancellationToken cancellationToken)
    {
        var subscriptions = await ListSubscriptionsAsync(customerId, cancellationToken);
        var state = Derive(subscriptions);
        userIdHint ??= UserIdOf(subscriptions);

        Guid closedUserId;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            var userId = await connection.ExecuteScalarAsync<Guid?>(new CommandDefinition(
                "select user_id from subscriptions where stripe_customer_id = @customerId", new { customerId }, transaction,
                cancellationToken: cancellationToken)) ?? userIdHint;
            if (userId is null)
            {
                LogUnknownCustomer(logger, customerId);
                return null;
            }
            if (await connection.LockUserAsync(userId.Value, transaction, cancellationToken))
            {
                return await ApplyAsync(connection, transaction, userId.Value, customerId, state, cancellationToken);
            }
            if (!await connection.IsClosedAsync(userId.Value, transaction, cancellationToken))
            {
                LogUnknownCustomer(logger, customerId);
                return null;
            }
            closedUserId = userId.Value; // Stripe is called below, with no transaction open
        }
        return await SettleClosedAccountAsync(closedUserId, customerId, subscriptions, cancellationToken);
    }

    /// <summary>Stores the state and applies the plan to the user's repos; the user row is locked.</summary>
    private async Task<bool> ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId,
        string customerId, BillingState state, CancellationToken cancellationToken)
    {
        var before = await connection.GetPlanAsync(userId, transaction, cancellationToken);
        var changed = await StoreAsync(connection, transaction, userId, customerId, state, cancellationToken);
        var after = await connection.GetPlanAsync(userId, transaction, cancellationToken);
        // An upgrade resumes repos paused by an earlier downgrade; otherwise only the limit is enforced (a repo the user
        // paused by choice stays paused).
        await PlanEnforcement.ApplyAsync(connection, transaction, userId, plans.Value.RepoLimit(after),
            resume: after == Plan.Pro && before != Plan.Pro, cancellationToken);
        await transaction.CommitAsync(cancellationToken);

        if (before != after)
        {
            _planChanges.Add(1);
            LogPlanChanged(logger, userId, before, after, state.Status);
        }
        return changed;
    }

    /// <summary>
    /// A closed account's customer: ends whatever could still bill (a Checkout session left open, a subscription from a
    /// session paid after the closure), then records what Stripe has now with the Free plan, so the Worker's
    /// reconciliation sees no drift. Nothing else is written for the tombstone: it has no repos to apply a plan to.
    /// </summary>
    private async Task<bool> SettleClosedAccountAsync(Guid userId, string customerId, List<Subscription> subscriptions,
        CancellationToken cancellationToken)
    {
        if (subscriptions.Any(IsLive))
        {
            LogClosedAccountBilled(logger, userId, customerId);
            await EndBillingAsync(customerId, cancellationToken);
            subscriptions = await ListSubscriptionsAsync(customerId, cancellationToken);
        }
        var state = Derive(subscriptions) with { Plan = Plan.Free, PaymentProblem = false };
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var changed = await StoreAsync(connection, transaction, userId, customerId, state, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return changed;
    }

    private static async Task<bool> StoreAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId,
        string customerId, BillingState state, CancellationToken cancellationToken) =>
        await connection.ExecuteAsync(new CommandDefinition(
            """
            insert into subscriptions (user_id, plan, stripe_customer_id, stripe_subscription_id, status, current_period_end, payment_problem, updated_at)
            values (@userId, @plan, @customerId, @subscriptionId, @status, @periodEnd, @paymentProblem, now())
            on conflict (user_id) do update
               set plan = excluded.plan, stripe_customer_id = excluded.stripe_customer_id,
                   stripe_subscription_id = excluded.stripe_subscription_id, status = excluded.status,
                   current_period_end = excluded.current_period_end, payment_problem = excluded.payment_problem,
                   updated_at = now()
             where (subscriptions.plan, subscriptions.stripe_customer_id, subscriptions.stripe_subscription_id,
                    subscriptions.status, subscriptions.current_period_end, subscriptions.payment_problem)
                   is distinct from
                   (excluded.plan, excluded.stripe_customer_id, excluded.stripe_subscription_id,
                    excluded.status, excluded.current_period_end, excluded.payment_problem)
            """,
            new
            {
                userId, plan = state.Plan == Plan.Pro ? "pro" : "free", customerId, subscriptionId = state.SubscriptionId,
                status = state.Status, periodEnd = state.CurrentPeriodEnd, paymentProblem = state.PaymentProblem,
            },
            transaction, cancellationToken: cancellationToken)) > 0;

    /// <summary>
    /// Ends everything of the customer that could still bill, at once; throws <see cref="StripeException"/> when Stripe
    /// cannot. First every open Checkout session is expired (Stripe keeps one payable for 24 hours), then every
    /// subscription that could still bill is canceled (no renewal, no proration, no final invoice) — in this order, so
    /// a session paid meanwhile has made its subscription by the time they are listed. Safe to repeat.
    /// </summary>
    public async Task EndBillingAsync(string customerId, CancellationToken cancellationToken)
    {
        var sessions = new Stripe.Checkout.SessionService(stripe);
        var open = new List<string>();
        await foreach (var session in sessions.ListAutoPagingAsync(
                           new Stripe.Checkout.SessionListOptions { Customer = customerId, Status = "open", Limit = 100 },
                           cancellationToken: cancellationToken))
        {
            open.Add(session.Id);
        }
        foreach (var id in open)
        {
            try
            {
                await sessions.ExpireAsync(id, cancellationToken: cancellationToken);
            }
            catch (StripeException ex) when ((int)ex.HttpStatusCode is >= 400 and < 500 and not 429)
            {
                // No longer open: it expired, or was paid since the list (its subscription is canceled below).
                LogSessionNotExpired(logger, id, ex.Message);
            }
        }

        var service = new SubscriptionService(stripe);
        foreach (var subscription in (await ListSubscriptionsAsync(customerId, cancellationToken)).Where(IsLive))
        {
            await service.CancelAsync(subscription.Id, new SubscriptionCancelOptions { InvoiceNow = false, Prorate = false },
                cancellationToken: cancellationToken);
        }
    }

    private async Task<List<Subscription>> ListSubscriptionsAsync(string customerId, CancellationToken cancellationToken)
    {
        var subscriptions = new List<Subscription>();
        await foreach (var subscription in new SubscriptionService(stripe).ListAutoPagingAsync(
                           new SubscriptionListOptions { Customer = customerId, Status = "all", Limit = 100 },
                           cancellationToken: cancellationToken))
        {
            subscriptions.Add(subscription);
        }
        return subscriptions;
    }

    /// <summary>A subscription that could still bill (Stripe's ended states are canceled and incomplete_expired).</summary>
    private static bool IsLive(Subscription subscription) => subscription.Status is not ("canceled" or "incomplete_expired");

    /// <summary>The CoTeX user a customer's subscriptions name (checkout puts it in their metadata), if any.</summary>
    public static Guid? UserIdOf(IEnumerable<Subscription> subscriptions) =>
        subscriptions.Select(s => s.Metadata?.GetValueOrDefault("user_id"))
            .Select(id => Guid.TryParse(id, out var parsed) ? parsed : (Guid?)null).FirstOrDefault(id => id is not null);

    /// <summary>The best of the customer's subscriptions decides: active/trialing, then past_due, then the newest.</summary>
    public static BillingState Derive(IReadOnlyCollection<Subscription> subscriptions)
    {
        var best = subscriptions
            .OrderByDescending(s => s.Status switch { "active" or "trialing" => 3, "past_due" => 2, _ => 1 })
            .ThenByDescending(s => s.Created)
            .FirstOrDefault();
        if (best is null)
        {
            return new BillingState(Plan.Free, null, null, null, false);
        }
        var pro = best.Status is "active" or "trialing" or "past_due";
        var periodEnd = best.Items?.Data?.Select(i => (DateTime?)i.CurrentPeriodEnd).Max();
        return new BillingState(pro ? Plan.Pro : Plan.Free, best.Id, best.Status,
            periodEnd is { } end && end > DateTime.UnixEpoch ? end.AsUtcOffset() : null,
            best.Status == "past_due");
    }

    [LoggerMessage(LogLevel.Warning, "Stripe customer {CustomerId} belongs to no CoTeX user; nothing to update")]
    private static partial void LogUnknownCustomer(ILogger logger, string customerId);

    [LoggerMessage(LogLevel.Warning, "Closed account {UserId} has live billing at Stripe customer {CustomerId}; ending it")]
    private static partial void LogClosedAccountBilled(ILogger logger, Guid userId, string customerId);

    [LoggerMessage(LogLevel.Information, "Checkout session {SessionId} was not expired: {Reason}")]
    private static partial void LogSessionNotExpired(ILogger logger, string sessionId, string reason);

    [LoggerMessage(LogLevel.Information, "User {UserId} moved from {Before} to {After} (Stripe status {Status})")]
    private static partial void LogPlanChanged(ILogger logger, Guid userId, Plan before, Plan after, string? status);
}

/// <summary>What a plan means for a user's repos. Call with the user row locked.</summary>
public static class PlanEnforcement
{
    /// <summary>
    /// Keeps at most <paramref name="limit"/> repos active, oldest first: the newest beyond it are paused (nothing is
    /// deleted; their webhooks are still stored). With <paramref name="resume"/>, paused repos are resumed while there
    /// is room.
    /// </summary>
    public static async Task ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, int limit,
        bool resume, CancellationToken cancellationToken)
    {
        await connection.ExecuteAsync(new CommandDefinition(
            """
            with active as (
                select id, row_number() over (order by created_at, id) as n
                  from tracked_repos where user_id = @userId and not paused
            )
            update tracked_repos set paused = true where id in (select id from active where n > @limit)
            """,
            new { userId, limit }, transaction, cancellationToken: cancellationToken));
        if (!resume)
        {
            return;
        }
        await connection.ExecuteAsync(new CommandDefinition(
            """
            with room as (
                select @limit - count(*) as free from tracked_repos where user_id = @userId and not paused
            ), resumable as (
                select id, row_number() over (order by created_at, id) as n
                  from tracked_repos where user_id = @userId and paused
            )
            update tracked_repos set paused = false
             where id in (select id from resumable, room where n <= room.free)
            """,
            new { userId, limit }, transaction, cancellationToken: cancellationToken));
    }
}
