using System.ComponentModel.DataAnnotations;

namespace CoTeX.Shared.Billing;

/// <summary>
/// Stripe settings, bound from <c>Stripe</c>. Billing is enabled when <see cref="SecretKey"/> is set (or
/// <see cref="Enabled"/> says so); then every other required setting must be there too, or the service does not start.
/// </summary>
public sealed class StripeOptions : IValidatableObject
{
    public const string Section = "Stripe";

    public bool? Enabled { get; set; }
    public string? SecretKey { get; set; }
    public string? WebhookSecret { get; set; }

    /// <summary>The Price of the Pro plan (price_...).</summary>
    public string? ProPriceId { get; set; }

    public string? SuccessUrl { get; set; }
    public string? CancelUrl { get; set; }

    /// <summary>Where the customer portal returns to; <see cref="SuccessUrl"/> when unset.</summary>
    public string? PortalReturnUrl { get; set; }

    /// <summary>Stripe's API address; tests and stripe-mock point it elsewhere.</summary>
    public string? ApiBase { get; set; }

    /// <summary>Whether the Worker runs reconciliation on its interval (on by default when billing is enabled).</summary>
    public bool ReconcileEnabled { get; set; } = true;

    /// <summary>How often the Worker compares every subscription in Stripe with the database.</summary>
    [Range(1, 1440)]
    public int ReconcileMinutes { get; set; } = 15;

    /// <summary>Webhook signatures older than this are refused (replay protection).</summary>
    public const long SignatureToleranceSeconds = 300;

    public bool IsEnabled => Enabled ?? !string.IsNullOrEmpty(SecretKey);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!IsEnabled)
        {
            yield break;
        }
        foreach (var (name, value) in new[]
                 {
                     (nameof(SecretKey), SecretKey), (nameof(WebhookSecret), WebhookSecret), (nameof(ProPriceId), ProPriceId),
                     (nameof(SuccessUrl), SuccessUrl), (nameof(CancelUrl), CancelUrl),
                 })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                yield return new ValidationResult(
                    $"Billing is enabled but Stripe:{name} is not set (environment variable Stripe__{name}).", [name]);
            }
        }
    }
}
