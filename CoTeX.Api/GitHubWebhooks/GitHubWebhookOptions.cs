using System.ComponentModel.DataAnnotations;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>Receiver settings, bound from <c>GitHub</c>.</summary>
public sealed class GitHubWebhookOptions
{
    public const string Section = "GitHub";

    /// <summary>GitHub's own limit on payloads; larger bodies are refused with 413 before they are read to the end.</summary>
    public const long MaxBodyBytes = 25L * 1024 * 1024;

    /// <summary>
    /// Accept the legacy <c>X-Hub-Signature</c> (HMAC-SHA1) when a delivery has no <c>X-Hub-Signature-256</c>.
    /// Off by default: GitHub has sent SHA-256 signatures since 2020.
    /// </summary>
    public bool AllowSha1 { get; set; }

    /// <summary>
    /// Deliveries waiting for their commit (group commit, <see cref="GitHubEventStore"/>) beyond which a new one is
    /// answered 503 with Retry-After instead of waiting too: a stalled database must not grow the Api's memory
    /// without bound. <see cref="MaxPendingBytes"/> bounds their payloads the same way.
    /// </summary>
    public int MaxPendingDeliveries { get; set; } = 5_000;

    public long MaxPendingBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// How long a delivery keeps retrying while the database is unavailable (a restart, a failover) before it is
    /// answered 503. GitHub waits 10 s for an answer and does not redeliver a failed delivery by itself, so this stays
    /// under 10 with room for the rest of the request.
    /// </summary>
    [Range(0, 9)]
    public int DatabaseRetrySeconds { get; set; } = 7;
}
