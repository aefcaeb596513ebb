using System.Text;
using CoTeX.Api.WebhookIngress;
using CoTeX.Shared.Billing;
using CoTeX.Shared.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Stripe;

namespace CoTeX.Api.Billing;

/// <summary>
/// <c>POST /webhooks/stripe</c>: limited per address outside Stripe's published webhook addresses (429), read within
/// the process's budget for unverified bodies (413/503/408, <see cref="UnverifiedBody"/>), verified with
/// <c>Stripe-Signature</c> (300 s tolerance) before anything parses it, stored once by event id,
/// handled by re-reading the customer's subscriptions from Stripe. 2xx only once the result is committed; a failure
/// is a 5xx so Stripe retries, and nothing is half-applied (the plan update is one transaction).
/// </summary>
public static class StripeWebhooksApi
{
    private const int MaxBodyBytes = 1024 * 1024;

    public sealed record StripeWebhookAccepted(string Status);

    public static IEndpointRouteBuilder MapStripeWebhooksApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhooks/stripe", ReceiveAsync).WithTags("Webhooks").AllowAnonymous().DisableAntiforgery()
            .WithMetadata(new Microsoft.AspNetCore.Cors.DisableCorsAttribute()).RequireRateLimit(RateLimitPolicy.PerWebhookSender)
            .WithSummary("Receives Stripe webhook events.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status429TooManyRequests).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    internal static async Task<Results<Ok<StripeWebhookAccepted>, ProblemHttpResult>> ReceiveAsync(
        HttpRequest request, StripeEventProcessor processor, IOptions<StripeOptions> options, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.IsEnabled)
        {
            return Problem(StatusCodes.Status503ServiceUnavailable, "Billing is not enabled", "This deployment has no Stripe configuration.");
        }
        string? signature = request.Headers["Stripe-Signature"];
        if (string.IsNullOrEmpty(signature))
        {
            // Refused before the body is read: without a signature it could never be accepted.
            return Problem(StatusCodes.Status400BadRequest, "Missing signature", "The Stripe-Signature header is required.");
        }
        var (unverified, unread) = await UnverifiedBody.ReadAsync(request.HttpContext, MaxBodyBytes,
            "Stripe events are far smaller than 1 MB.", cancellationToken);
        if (unread is not null)
        {
            return unread;
        }
        using var body = unverified!;
        // Stripe's library verifies a string (and encodes it again to hash it): those copies are unverified bytes too.
        if (!body.TryReserveMore(3 * body.Length))
        {
            body.Dispose();
            return UnverifiedBody.Busy(request.HttpContext);
        }
        var json = Encoding.UTF8.GetString(body.Sequence);
        Event stripeEvent;
        try
        {
            // An event rendered for another API version than the library's must still be processed.
            stripeEvent = EventUtility.ConstructEvent(json, signature, settings.WebhookSecret,
                StripeOptions.SignatureToleranceSeconds, throwOnApiVersionMismatch: false);
        }
        catch (StripeException ex)
        {
            return Problem(StatusCodes.Status400BadRequest, "Invalid Stripe event", ex.Message);
        }
        catch (Exception ex) when (ex is Newtonsoft.Json.JsonException or System.Text.Json.JsonException
                                       or InvalidCastException or InvalidOperationException or NullReferenceException or ArgumentException)
        {
            // Correctly signed but not an event (the library's parser throws whatever the JSON shape provokes).
            return Problem(StatusCodes.Status400BadRequest, "Invalid Stripe event", "The body is not a Stripe event object.");
        }
        body.Dispose(); // verified: the reservation goes back before the event is processed
        if (stripeEvent is null || string.IsNullOrEmpty(stripeEvent.Id) || string.IsNullOrEmpty(stripeEvent.Type))
        {
            return Problem(StatusCodes.Status400BadRequest, "Invalid Stripe event", "The event has no id or type.");
        }

        try
        {
            var outcome = await processor.ProcessAsync(stripeEvent.Id, stripeEvent.Type, json, cancellationToken);
            return TypedResults.Ok(new StripeWebhookAccepted(outcome switch
            {
                StripeEventOutcome.AlreadyProcessed => "duplicate",
                StripeEventOutcome.Ignored => "ignored",
                _ => "processed",
            }));
        }
        catch (StripeException ex)
        {
            return Problem(StatusCodes.Status503ServiceUnavailable, "Stripe unavailable",
                $"Could not read the subscription from Stripe ({ex.StripeError?.Type ?? ex.Message}); the event is kept and retried.");
        }
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail);
}
