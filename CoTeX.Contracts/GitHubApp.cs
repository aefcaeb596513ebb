namespace CoTeX.Contracts;

/// <summary>
/// <c>POST /api/github-app/connect</c>: open <see cref="Url"/> in a browser (GitHub's authorization of CoTeX's app)
/// before <see cref="ExpiresAt"/>; then poll <c>GET /api/github-app</c> until the connection shows up.
/// </summary>
public sealed record GitHubConnectStart(string Url, DateTimeOffset ExpiresAt);

/// <summary><c>GET /api/github-app</c>: whether the app mode is on, and the caller's GitHub connection if any.</summary>
public sealed record GitHubAppStatus(bool Enabled, GitHubConnection? Connection);

/// <summary>
/// The caller's connected GitHub account and the repositories they can track through the app (as GitHub said at
/// <see cref="CheckedAt"/>). A revoked connection (the user revoked the app on GitHub) delivers nothing until they
/// connect again.
/// </summary>
public sealed record GitHubConnection(
    string Login,
    DateTimeOffset ConnectedAt,
    DateTimeOffset CheckedAt,
    DateTimeOffset? RevokedAt,
    IReadOnlyList<AppRepository> Repositories);

/// <summary>
/// A repository the caller can access through an installation of the app (<see cref="Account"/>'s). A suspended
/// installation's repositories deliver nothing and cannot be tracked until it is unsuspended. <see cref="Role"/> is the
/// caller's role on it as GitHub said (read, triage, write, maintain or admin): it decides which event types reach
/// them (a Dependabot alert needs write, a secret scanning alert admin; the README has the table).
/// </summary>
public sealed record AppRepository(string FullName, string Account, bool Suspended, bool Tracked, string Role = "read");
