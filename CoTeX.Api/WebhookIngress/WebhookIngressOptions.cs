using System.Net;
using Microsoft.Extensions.Options;

namespace CoTeX.Api.WebhookIngress;

/// <summary>
/// What the three webhook receivers (a repo's, the GitHub App's, Stripe's) let strangers cost before a signature has
/// been checked. Bound from <c>Webhooks</c>: the settings span GitHub's and Stripe's receivers, so they are in neither
/// of their sections.
/// </summary>
public sealed class WebhookIngressOptions
{
    public const string Section = "Webhooks";

    /// <summary>
    /// GitHub's published <c>hooks</c> ranges (<c>GET https://api.github.com/meta</c>, with the three /28s GitHub's
    /// changelog of 2026-10-29 added) and Stripe's published webhook addresses (<c>https://stripe.com/files/ips/ips_webhooks.txt</c>,
    /// as listed in May 2026). Both change from time to time: a deployment that wants them current sets
    /// <see cref="SenderRanges"/>. A sender outside them still gets through, only under the stricter rules.
    /// </summary>
    public static readonly string[] PublishedSenderRanges =
    [
        // GitHub (hooks)
        "192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20",
        "9.234.98.160/28", "9.234.98.176/28", "9.234.106.48/28",
        "2a0a:a440::/29", "2606:50c0::/32",
        // Stripe (webhook notifications)
        "3.18.12.63/32", "3.69.109.8/32", "3.120.168.93/32", "3.130.192.231/32", "13.235.14.237/32", "13.235.122.149/32",
        "18.211.135.69/32", "35.154.171.200/32", "35.157.207.129/32", "52.15.183.38/32", "54.88.130.119/32",
        "54.88.130.237/32", "54.187.174.169/32", "54.187.205.235/32", "54.187.216.72/32",
    ];

    /// <summary>
    /// The addresses GitHub and Stripe deliver from, as CIDR ranges; unset means <see cref="PublishedSenderRanges"/>.
    /// Senders inside are exempt from <c>RateLimiting:PerWebhookSender</c> and may use the whole unverified budget;
    /// everyone else is limited and shares <see cref="MaxUnverifiedBytesOutsideRanges"/>. Setting a list replaces the
    /// defaults (a configured list is not merged with them).
    /// </summary>
    public string[]? SenderRanges { get; set; }

    /// <summary>
    /// Request body bytes the Api holds at once before their signature is checked, over all receivers. Past it a
    /// delivery is answered 503 with Retry-After before its body is read. 96 MB: room for the largest delivery GitHub
    /// sends (25 MB) from its own addresses while strangers hold their whole share, under the Api's stated ceiling
    /// (README, "Webhook receivers").
    /// </summary>
    public long MaxUnverifiedBytes { get; set; } = 96L * 1024 * 1024;

    /// <summary>
    /// The part of <see cref="MaxUnverifiedBytes"/> that senders outside <see cref="SenderRanges"/> may hold together,
    /// so a flood from elsewhere cannot take the room GitHub's and Stripe's deliveries need.
    /// </summary>
    public long MaxUnverifiedBytesOutsideRanges { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// A body must have arrived in full this long after the Api started reading it, or the request is answered 408 and its
    /// reservation freed: GitHub gives up after 10 s anyway, and a trickling sender must not hold the budget for long.
    /// </summary>
    public int BodySeconds { get; set; } = 10;

    internal IReadOnlyList<string> EffectiveSenderRanges => SenderRanges is { Length: > 0 } ranges ? ranges : PublishedSenderRanges;
}

/// <summary>Start fails naming the setting: a range that does not parse, a budget that cannot hold GitHub's largest delivery.</summary>
internal sealed class WebhookIngressOptionsValidator : IValidateOptions<WebhookIngressOptions>
{
    public ValidateOptionsResult Validate(string? name, WebhookIngressOptions options)
    {
        var failures = new List<string>();
        foreach (var range in options.EffectiveSenderRanges)
        {
            if (!IPNetwork.TryParse(range, out _))
            {
                failures.Add($"Webhooks:SenderRanges: '{range}' is not a CIDR range such as 192.30.252.0/22.");
            }
        }
        if (options.MaxUnverifiedBytesOutsideRanges < 1)
        {
            failures.Add("Webhooks:MaxUnverifiedBytesOutsideRanges must be positive.");
        }
        if (options.MaxUnverifiedBytes - options.MaxUnverifiedBytesOutsideRanges < GitHubWebhooks.GitHubWebhookOptions.MaxBodyBytes)
        {
            failures.Add("Webhooks:MaxUnverifiedBytes must exceed Webhooks:MaxUnverifiedBytesOutsideRanges by at least 25 MB "
                         + "(GitHub's largest delivery), so a flood from outside the sender ranges cannot lock GitHub out.");
        }
        if (options.BodySeconds is < 1 or > 60)
        {
            failures.Add("Webhooks:BodySeconds must be between 1 and 60.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
