using System.Net;

namespace CoTeX.Shared.GitHubApp;

// The parts of GitHub's REST answers CoTeX reads (snake_case on the wire).

/// <summary>A user access token (ghu_…) with its refresh token, as the app's user authorization hands them out.</summary>
public sealed record GitHubUserTokens(string AccessToken, DateTimeOffset? ExpiresAt, string? RefreshToken,
    DateTimeOffset? RefreshTokenExpiresAt);

public sealed record GitHubUser(long Id, string Login);

public sealed record GitHubAccount(string Login, string Type);

public sealed record GitHubInstallation(long Id, GitHubAccount Account, DateTimeOffset? SuspendedAt, DateTimeOffset? UpdatedAt);

/// <summary>
/// A repository as GitHub lists it. <see cref="Permissions"/> is the listing user's access to it (present in
/// <c>GET /user/installations/{id}/repositories</c>, absent in the app's own listing).
/// </summary>
public sealed record GitHubRepository(long Id, string FullName, GitHubRepositoryPermissions? Permissions = null)
{
    /// <summary>
    /// The user's role on the repository: read when GitHub listed it without permissions (the least it lists a
    /// repository for), none (null) when it listed every flag false.
    /// </summary>
    public RepoRole? Role => Permissions is null ? RepoRole.Read : Permissions.Role;
}

/// <summary>GitHub's <c>permissions</c> object on a repository: which of the five roles' rights the user has.</summary>
public sealed record GitHubRepositoryPermissions(bool Admin, bool Maintain, bool Push, bool Triage, bool Pull)
{
    /// <summary>The highest role whose flag is set; null when none is (no access: the repository is not the user's).</summary>
    public RepoRole? Role => Admin ? RepoRole.Admin : Maintain ? RepoRole.Maintain : Push ? RepoRole.Write
        : Triage ? RepoRole.Triage : Pull ? RepoRole.Read : null;
}

/// <summary>One delivery of the app's webhook, from <c>GET /app/hook/deliveries</c>.</summary>
public sealed record GitHubHookDelivery(long Id, string Guid, DateTimeOffset DeliveredAt, bool Redelivery, string Status,
    int StatusCode, string Event, string? Action)
{
    public bool Succeeded => StatusCode is >= 200 and < 300;
}

/// <summary>GitHub answered with an error status (or an OAuth error in a 200).</summary>
public sealed class GitHubApiException(HttpStatusCode? status, string message) : Exception(message)
{
    public HttpStatusCode? Status { get; } = status;

    /// <summary>The token (or the code) is not good any more: revoked, expired, or the app was uninstalled.</summary>
    public bool IsUnauthorized => Status is HttpStatusCode.Unauthorized;

    public bool IsNotFound => Status is HttpStatusCode.NotFound;
}
