using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CoTeX.Shared.Billing;

public enum StripeEventOutcome
{
    Processed,
    AlreadyProcessed,
    Ignored,
}

/// <summary>
/// Handles a verified Stripe event exactly once by its <c>evt_</c> id: stored first, then handled, then marked
/// processed. Handling never trusts the event's own copy of the subscription: it re-reads the customer's
/// subscriptions from Stripe (<see cref="BillingSync"/>). A failure is recorded on the stored event and rethrown, so
/// the webhook answers 5xx and Stripe retries; the Worker also retries stored events that never succeeded.
/// </summary>
public sealed partial class StripeEventProcessor(NpgsqlDataSource dataSource, BillingSync sync, ILogger<StripeEventProcessor> logger)
{
    public static readonly IReadOnlySet<string> HandledTypes = new HashSet<string>
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    };

    /// <summary>Stores the event if new; returns whether it still needs handling.</summary>
    public async Task<bool> RecordAsync(string eventId, string type, string json, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var processedAt = await connection.QuerySingleAsync<DateTime?>(new CommandDefinition(
            """
            with inserted as (
                insert into stripe_events (id, type, payload) values (@eventId, @type, @json::jsonb)
                on conflict (id) do nothing
                returning processed_at
            )
            select processed_at from inserted
            union all
            select processed_at from stripe_events where id = @eventId and not exists (select 1 from inserted)
            """,
            new { eventId, type, json }, cancellationToken: cancellationToken));
        return processedAt is null;
    }

    public async Task<StripeEventOutcome> ProcessAsync(string eventId, string type, string json, CancellationToken cancellationToken)
    {
        if (!await RecordAsync(eventId, type, json, cancellationToken))
        {
            return StripeEventOutcome.AlreadyProcessed;
        }
        return await HandleStoredAsync(eventId, type, json, cancellationToken);
    }

    /// <summary>Handles an event already in <c>stripe_events</c> (a webhook, or the Worker's retry).</summary>
    public async Task<StripeEventOutcome> HandleStoredAsync(string eventId, string type, string json, CancellationToken cancellationToken)
    {
        var outcome = StripeEventOutcome.Ignored;
        try
        {
            if (HandledTypes.Contains(type) && ReadCustomer(json) is { } target)
            {
                await sync.SyncCustomerAsync(target.CustomerId, target.UserIdHint, cancellationToken);
                outcome = StripeEventOutcome.Processed;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await RecordFailureAsync(eventId, ex, CancellationToken.None);
            throw;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "update stripe_events set processed_at = now(), attempts = attempts + 1, last_error = null where id = @eventId",
            new { eventId }, cancellationToken: cancellationToken));
        LogHandled(logger, eventId, type, outcome);
        return outcome;
    }

    /// <summary>
    /// The customer an event is about. Checkout sessions, subscriptions and invoices all carry <c>customer</c> in every
    /// API version, so this reads the raw JSON rather than a typed object that changes shape between versions.
    /// </summary>
    public static (string CustomerId, Guid? UserIdHint)? ReadCustomer(string json)
    {
        using var document = JsonDocument.Parse(json);
        if (!document.RootElement.TryGetProperty("data", out var data) || !data.TryGetProperty("object", out var obj))
        {
            return null;
        }
        var customer = obj.TryGetProperty("customer", out var c) ? c.ValueKind switch
        {
            JsonValueKind.String => c.GetString(),
            JsonValueKind.Object when c.TryGetProperty("id", out var id) => id.GetString(),
            _ => null,
        } : null;
        if (string.IsNullOrEmpty(customer))
        {
            return null;
        }
        string? hint = null;
        if (obj.TryGetProperty("client_reference_id", out var reference) && reference.ValueKind == JsonValueKind.String)
        {
            hint = reference.GetString();
        }
        else if (obj.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
                 && metadata.TryGetProperty("user_id", out var userId) && userId.ValueKind == JsonValueKind.String)
        {
            hint = userId.GetString();
        }
        return (customer, Guid.TryParse(hint, out var parsed) ? parsed : null);
    }

    private async Task RecordFailureAsync(string eventId, Exception exception, CancellationToken cancellationToken)
    {
        LogFailed(logger, exception, eventId);
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                "update stripe_events set attempts = attempts + 1, last_error = @error where id = @eventId",
                new { eventId, error = $"{exception.GetType().Name}: {exception.Message}" }, cancellationToken: cancellationToken));
        }
        catch (NpgsqlException)
        {
            // The database is what failed; the event stays unprocessed and is retried either way.
        }
    }

    [LoggerMessage(LogLevel.Information, "Stripe event {EventId} ({EventType}): {Outcome}")]
    private static partial void LogHandled(ILogger logger, string eventId, string eventType, StripeEventOutcome outcome);

    [LoggerMessage(LogLevel.Warning, "Stripe event {EventId} could not be handled; Stripe and the Worker will retry")]
    private static partial void LogFailed(ILogger logger, Exception exception, string eventId);
}
