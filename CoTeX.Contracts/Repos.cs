namespace CoTeX.Contracts;

public sealed record CreateRepoRequest(string? FullName);

/// <summary>
/// A newly tracked repo. <see cref="WebhookSecret"/> is shown only here (and after a rotation): paste it, with
/// <see cref="WebhookUrl"/>, into the repository's Settings → Webhooks.
/// </summary>
public sealed record CreatedRepo(Guid Id, string FullName, string WebhookUrl, string WebhookSecret, string ContentType);

public sealed record RotatedSecret(Guid Id, string WebhookSecret);

public sealed record TrackedRepo(
    Guid Id,
    string FullName,
    string WebhookUrl,
    bool Paused,
    DateTimeOffset CreatedAt,
    DateTimeOffset? LastDeliveryAt,
    DateTimeOffset? LastPingAt);

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
