namespace CoTeX.Contracts;

/// <summary>
/// <c>POST /api/repos</c>. <see cref="Source"/> says how the repo's events arrive: <c>app</c> (CoTeX's GitHub App,
/// for a repo the caller can access through one of its installations: no setup), <c>webhook</c> (a webhook the caller
/// adds to the repository), or nothing: the app where it can, else a webhook.
/// </summary>
public sealed record CreateRepoRequest(string? FullName, string? Source = null);

/// <summary>How a tracked repo's events arrive.</summary>
public static class RepoSources
{
    /// <summary>Through the repo's own webhook, which the user adds with the URL and secret CoTeX gives.</summary>
    public const string Webhook = "webhook";

    /// <summary>Through CoTeX's GitHub App, installed on the repository's account: nothing to set up.</summary>
    public const string App = "app";
}

/// <summary>
/// A newly tracked repo. For a webhook repo, <see cref="WebhookSecret"/> is shown only here (and after a rotation):
/// paste it, with <see cref="WebhookUrl"/>, into the repository's Settings → Webhooks. An app repo has neither.
/// </summary>
public sealed record CreatedRepo(Guid Id, string FullName, string? WebhookUrl, string? WebhookSecret, string? ContentType,
    string Source = RepoSources.Webhook);

public sealed record RotatedSecret(Guid Id, string WebhookSecret);

/// <summary>A tracked repo; <see cref="WebhookUrl"/> is null for a repo the GitHub App delivers.</summary>
public sealed record TrackedRepo(
    Guid Id,
    string FullName,
    string? WebhookUrl,
    bool Paused,
    DateTimeOffset CreatedAt,
    DateTimeOffset? LastDeliveryAt,
    DateTimeOffset? LastPingAt,
    string Source = RepoSources.Webhook);

/// <summary>The caller's repos and how many of the plan's active-repo slots they use.</summary>
public sealed record RepoList(IReadOnlyList<TrackedRepo> Repos, PlanUsage Plan);

public sealed record PlanUsage(string Name, int Used, int Limit);

/// <summary><c>PATCH /api/repos/{id}</c>: pause a repo, or make it active again (within the plan's limit).</summary>
public sealed record UpdateRepoRequest(bool? Paused);

public sealed record CheckoutSession(string Url);

public sealed record PortalSession(string Url);

/// <summary>The caller's plan as Stripe last told us, and repo usage.</summary>
public sealed record BillingSummary(
    string Plan,
    string? SubscriptionStatus,
    DateTimeOffset? CurrentPeriodEnd,
    bool PaymentProblem,
    int ReposUsed,
    int RepoLimit,
    bool BillingEnabled);

public sealed record AdminStats(
    long EventsLastHour,
    long EventsLastDay,
    IReadOnlyDictionary<string, int> ConnectedClientsByReplica,
    IReadOnlyDictionary<string, long> UsersByPlan,
    long StripeDriftCorrections);

public sealed record AdminUser(Guid Id, string? Email, bool IsAnonymous, string Plan, int Repos, DateTimeOffset CreatedAt, DateTimeOffset LastSeenAt);

public sealed record AdminUserPage(IReadOnlyList<AdminUser> Items, string? NextCursor);
