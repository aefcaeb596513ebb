using System.Diagnostics.Metrics;
using CoTeX.ServiceDefaults;
using CoTeX.Shared.Billing;
using CoTeX.Shared.Data;
using CoTeX.Shared.Events;
using Dapper;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;
using Stripe;

namespace CoTeX.Worker.Billing;

/// <summary>
/// The safety net under the Stripe webhooks. On an interval it (1) retries stored Stripe events whose handling
/// failed, and (2) pages through every subscription in Stripe (one call per 100), compares each customer's state with
/// the database, and fixes any drift (a lost webhook, a manual change in the Stripe dashboard), counting each
/// correction in the <c>cotex.billing.drift_corrections</c> metric. Only a customer that disagrees costs another call:
/// it is read again from Stripe just before the correction, since the page may be older than a webhook handled
/// meanwhile (a checkout completed during the pass must not be undone). A closed account's live subscription is drift
/// too: the sync cancels it at Stripe (<see cref="BillingSync.SyncCustomerAsync"/>), so a closed account is never billed
/// even when no webhook about it arrives.
/// </summary>
public sealed partial class BillingReconciler(
    StripeClient stripe,
    NpgsqlDataSource dataSource,
    BillingSync sync,
    StripeEventProcessor events,
    IOptions<StripeOptions> options,
    IMeterFactory meters,
    IConnectionMultiplexer redis,
    ILogger<BillingReconciler> logger) : BackgroundService
{
    private const int MaxAttempts = 20;

    private readonly Counter<long> _corrections = meters.Create(CoTeXTelemetry.Name).CreateCounter<long>(
        "cotex.billing.drift_corrections", description: "Customers whose stored plan disagreed with Stripe and was corrected");

    public sealed record Report(int EventsRetried, int CustomersChecked, int Corrections);

    /// <summary>A customer's billing row as stored.</summary>
    private sealed record StoredBilling(string CustomerId, string Plan, string? SubscriptionId, string? Status,
        DateTime? CurrentPeriodEnd, bool PaymentProblem)
    {
        public bool Matches(BillingState state) =>
            Plan == (state.Plan == Shared.Plans.Plan.Pro ? "pro" : "free") && SubscriptionId == state.SubscriptionId
            && Status == state.Status && CurrentPeriodEnd.AsUtcOffset() == state.CurrentPeriodEnd
            && PaymentProblem == state.PaymentProblem;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.IsEnabled || !options.Value.ReconcileEnabled)
        {
            LogDisabled(logger);
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(options.Value.ReconcileMinutes));
        do
        {
            try
            {
                await ReconcileOnceAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One failed round must not stop the Worker; the next round retries.
                LogFailed(logger, ex);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task<Report> ReconcileOnceAsync(CancellationToken cancellationToken)
    {
        var retried = await RetryFailedEventsAsync(cancellationToken);

        // What Stripe says, per customer: every subscription, whatever its status, a page of 100 per call.
        var fromStripe = new Dictionary<string, List<Subscription>>();
        await foreach (var subscription in new SubscriptionService(stripe).ListAutoPagingAsync(
                           new SubscriptionListOptions { Status = "all", Limit = 100 }, cancellationToken: cancellationToken))
        {
            if (subscription.CustomerId is { } customerId)
            {
                (fromStripe.TryGetValue(customerId, out var list) ? list : fromStripe[customerId] = []).Add(subscription);
            }
        }

        // What we say, per customer, in one query.
        Dictionary<string, StoredBilling> stored;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            stored = (await connection.QueryAsync<StoredBilling>(new CommandDefinition(
                """
                select stripe_customer_id as CustomerId, plan, stripe_subscription_id as SubscriptionId, status,
                       current_period_end as CurrentPeriodEnd, payment_problem as PaymentProblem
                  from subscriptions where stripe_customer_id is not null
                """, cancellationToken: cancellationToken))).ToDictionary(b => b.CustomerId);
        }

        // Customers Stripe lists, and ours on a paid plan or with a subscription even if Stripe no longer lists them.
        var customers = fromStripe.Keys.Union(stored.Values
            .Where(b => b.Plan == "pro" || b.SubscriptionId is not null).Select(b => b.CustomerId)).ToList();
        var corrections = 0;
        foreach (var customerId in customers)
        {
            var subscriptions = fromStripe.GetValueOrDefault(customerId) ?? [];
            var known = stored.TryGetValue(customerId, out var row);
            var userId = BillingSync.UserIdOf(subscriptions);
            if ((known && row!.Matches(BillingSync.Derive(subscriptions))) || (!known && userId is null))
            {
                continue; // in sync, or a customer no CoTeX user can be linked to (another product's, say)
            }
            if (await sync.SyncCustomerAsync(customerId, userId, cancellationToken) == true)
            {
                corrections++;
                _corrections.Add(1);
                await CountForAdminsAsync();
                LogCorrected(logger, customerId);
            }
        }
        var report = new Report(retried, customers.Count, corrections);
        LogReport(logger, report.EventsRetried, report.CustomersChecked, report.Corrections);
        return report;
    }

    private async Task CountForAdminsAsync()
    {
        try
        {
            await redis.GetDatabase().StringIncrementAsync(OpsCounters.DriftCorrections);
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
            // The metric still has it; only the admin page total misses one.
        }
    }

    private async Task<int> RetryFailedEventsAsync(CancellationToken cancellationToken)
    {
        List<(string Id, string Type, string Payload)> pending;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            pending = (await connection.QueryAsync<(string, string, string)>(new CommandDefinition(
                """
                select id, type, payload::text from stripe_events
                 where processed_at is null and attempts < @MaxAttempts and received_at < now() - interval '1 minute'
                 order by received_at limit 100
                """,
                new { MaxAttempts }, cancellationToken: cancellationToken))).ToList();
        }
        var retried = 0;
        foreach (var (id, type, payload) in pending)
        {
            try
            {
                await events.HandleStoredAsync(id, type, payload, cancellationToken);
                retried++;
            }
            catch (Exception ex) when (ex is StripeException or NpgsqlException)
            {
                // Recorded on the event by the processor; next round.
            }
        }
        return retried;
    }

    [LoggerMessage(LogLevel.Information, "Stripe billing or its reconciliation (Stripe:ReconcileEnabled) is off")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(LogLevel.Warning, "Billing reconciliation failed; next round in the usual interval")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(LogLevel.Warning, "Corrected drift for Stripe customer {CustomerId}")]
    private static partial void LogCorrected(ILogger logger, string customerId);

    [LoggerMessage(LogLevel.Information, "Billing reconciliation: {EventsRetried} events retried, {CustomersChecked} customers checked, {Corrections} corrections")]
    private static partial void LogReport(ILogger logger, int eventsRetried, int customersChecked, int corrections);
}
