using System.Text.Json;
using CoTeX.Shared.Data;
using Dapper;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CoTeX.Shared.GitHubApp;

/// <summary>What a GitHub user can access through the app's installations, as GitHub answered for their token.</summary>
public sealed record GitHubAccess(IReadOnlyList<GitHubInstallation> Installations,
    IReadOnlyList<(long InstallationId, GitHubRepository Repository)> Repositories);

/// <summary>A GitHub account and its tokens, between the callback and the user's confirmation.</summary>
public sealed record PendingGitHubConnection(GitHubUser User, GitHubUserTokens Tokens);

public enum RecheckOutcome
{
    Checked,
    /// <summary>GitHub no longer accepts the user's tokens: the connection is revoked and its access gone.</summary>
    Revoked,
    /// <summary>Nothing to check: no connection, or revoked already.</summary>
    NotConnected,
}

/// <summary>
/// CoTeX users' GitHub connections and what they give access to: saved at connect time, checked again by the Worker,
/// revoked when GitHub says the authorization is gone. The user's tokens are kept protected with Data Protection, as
/// webhook secrets are (the key ring itself is encrypted at rest), and are never logged.
/// </summary>
public sealed partial class GitHubConnections(
    NpgsqlDataSource dataSource,
    GitHubAppClient github,
    IDataProtectionProvider protection,
    IOptions<GitHubAppOptions> options,
    TimeProvider time,
    ILogger<GitHubConnections> logger)
{
    private static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromMinutes(1);

    private readonly IDataProtector _tokens = protection.CreateProtector("CoTeX.GitHubApp.UserToken.v1");
    private readonly IDataProtector _pending = protection.CreateProtector("CoTeX.GitHubApp.PendingConnection.v1");

    public string ProtectPending(PendingGitHubConnection pending) => _pending.Protect(JsonSerializer.Serialize(pending));

    public PendingGitHubConnection UnprotectPending(string protectedPending) =>
        JsonSerializer.Deserialize<PendingGitHubConnection>(_pending.Unprotect(protectedPending))!;

    /// <summary>Every installation the user can reach through the app, and every repository in each.</summary>
    public async Task<GitHubAccess> ReadAccessAsync(string userToken, CancellationToken cancellationToken)
    {
        var installations = await github.GetUserInstallationsAsync(userToken, cancellationToken);
        var repositories = new List<(long, GitHubRepository)>();
        foreach (var installation in installations)
        {
            foreach (var repository in await github.GetUserInstallationRepositoriesAsync(userToken, installation.Id, cancellationToken))
            {
                repositories.Add((installation.Id, repository));
            }
        }
        return new GitHubAccess(installations, repositories);
    }

    /// <summary>Connects (or reconnects) the user's GitHub account and replaces what they can access.</summary>
    public async Task<GitHubAccess> ConnectAsync(Guid userId, PendingGitHubConnection pending, CancellationToken cancellationToken)
    {
        var access = await ReadAccessAsync(pending.Tokens.AccessToken, cancellationToken);
        await SaveAsync(userId, pending.User, pending.Tokens, access, cancellationToken);
        return access;
    }

    /// <summary>
    /// Checks the user's access against GitHub again (the Worker, on an interval): refreshes the token when it is
    /// about to expire, and revokes the connection when GitHub no longer accepts it.
    /// </summary>
    public async Task<RecheckOutcome> RecheckAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var stored = await connection.QuerySingleOrDefaultAsync<StoredConnection>(new CommandDefinition(
            """
            select github_user_id as GitHubUserId, github_login as GitHubLogin, token_protected as TokenProtected,
                   refresh_token_protected as RefreshTokenProtected, token_expires_at as TokenExpiresAt
              from github_connections where user_id = @userId and revoked_at is null
            """, new { userId }, cancellationToken: cancellationToken));
        if (stored?.TokenProtected is null)
        {
            return RecheckOutcome.NotConnected;
        }
        try
        {
            var tokens = new GitHubUserTokens(_tokens.Unprotect(stored.TokenProtected), stored.TokenExpiresAt.AsUtcOffset(),
                stored.RefreshTokenProtected is null ? null : _tokens.Unprotect(stored.RefreshTokenProtected), null);
            var refreshed = false;
            if (tokens.ExpiresAt is { } expiresAt && expiresAt - RefreshMargin <= time.GetUtcNow())
            {
                tokens = await RefreshAsync(tokens, cancellationToken);
                refreshed = true;
            }
            GitHubUser user;
            try
            {
                user = await github.GetUserAsync(tokens.AccessToken, cancellationToken);
            }
            catch (GitHubApiException ex) when (ex.IsUnauthorized && !refreshed)
            {
                // Expired earlier than it said (or our clock is behind): the refresh token decides.
                tokens = await RefreshAsync(tokens, cancellationToken);
                user = await github.GetUserAsync(tokens.AccessToken, cancellationToken);
            }
            var access = await ReadAccessAsync(tokens.AccessToken, cancellationToken);
            await SaveAsync(userId, user, tokens, access, cancellationToken);
            return RecheckOutcome.Checked;
        }
        catch (GitHubApiException ex) when (ex.IsUnauthorized)
        {
            LogRevokedOnRecheck(logger, userId, stored.GitHubLogin, ex.Message);
            await RevokeAsync(userId, cancellationToken);
            return RecheckOutcome.Revoked;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // GitHub is unreachable or failing: try again soon; the access rows stay as they were meanwhile.
            await connection.ExecuteAsync(new CommandDefinition(
                "update github_connections set recheck_after = @at where user_id = @userId",
                new { userId, at = time.GetUtcNow() + RetryAfterFailure }, cancellationToken: cancellationToken));
            throw;
        }
    }

    private async Task<GitHubUserTokens> RefreshAsync(GitHubUserTokens tokens, CancellationToken cancellationToken) =>
        tokens.RefreshToken is null
            ? throw new GitHubApiException(System.Net.HttpStatusCode.Unauthorized, "The token expired and there is no refresh token.")
            : await github.RefreshAsync(tokens.RefreshToken, cancellationToken);

    /// <summary>
    /// A GitHub user revoked the app's authorization: every connection of theirs stops receiving at once (within the
    /// caller's transaction, which records the event).
    /// </summary>
    public static async Task<int> RevokeGitHubUserAsync(NpgsqlConnection connection, NpgsqlTransaction transaction,
        long githubUserId, CancellationToken cancellationToken) =>
        await RevokeAsync(connection, transaction, "github_user_id = @githubUserId", new { githubUserId }, cancellationToken);

    /// <summary>The user disconnects their GitHub account: the connection and its access rows go.</summary>
    public async Task<bool> DisconnectAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "delete from github_connections where user_id = @userId", new { userId }, cancellationToken: cancellationToken)) > 0;
    }

    private async Task RevokeAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await RevokeAsync(connection, transaction, "user_id = @userId", new { userId }, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task<int> RevokeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string where,
        object parameters, CancellationToken cancellationToken)
    {
        var users = (await connection.QueryAsync<Guid>(new CommandDefinition(
            $"""
            update github_connections
               set revoked_at = now(), token_protected = null, refresh_token_protected = null, token_expires_at = null
             where {where} and revoked_at is null
            returning user_id
            """, parameters, transaction, cancellationToken: cancellationToken))).ToArray();
        await connection.ExecuteAsync(new CommandDefinition(
            "delete from github_user_repo_access where user_id = any(@users)", new { users }, transaction,
            cancellationToken: cancellationToken));
        return users.Length;
    }

    private async Task SaveAsync(Guid userId, GitHubUser user, GitHubUserTokens tokens, GitHubAccess access,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            insert into github_connections (user_id, github_user_id, github_login, token_protected, refresh_token_protected,
                                            token_expires_at, connected_at, checked_at, recheck_after)
            values (@userId, @githubUserId, @login, @token, @refreshToken, @expiresAt, @now, @now, @recheckAfter)
            on conflict (user_id) do update
               set github_user_id = excluded.github_user_id, github_login = excluded.github_login,
                   token_protected = excluded.token_protected, refresh_token_protected = excluded.refresh_token_protected,
                   token_expires_at = excluded.token_expires_at, checked_at = excluded.checked_at,
                   recheck_after = excluded.recheck_after, revoked_at = null,
                   connected_at = case when github_connections.github_user_id = excluded.github_user_id
                                        and github_connections.revoked_at is null
                                       then github_connections.connected_at else excluded.connected_at end
            """,
            new
            {
                userId, githubUserId = user.Id, login = user.Login, token = _tokens.Protect(tokens.AccessToken),
                refreshToken = tokens.RefreshToken is null ? null : _tokens.Protect(tokens.RefreshToken),
                expiresAt = tokens.ExpiresAt, now, recheckAfter = now.AddSeconds(options.Value.RecheckSeconds),
            }, transaction, cancellationToken: cancellationToken));

        // GitHub listed these installations just now, so they exist; their suspension is as GitHub says.
        foreach (var installation in access.Installations)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                """
                insert into github_app_installations (id, account_login, account_type, suspended_at, github_updated_at)
                values (@Id, @Login, @Type, @SuspendedAt, @UpdatedAt)
                on conflict (id) do update
                   set account_login = excluded.account_login, account_type = excluded.account_type,
                       suspended_at = excluded.suspended_at, deleted_at = null, updated_at = now(),
                       github_updated_at = greatest(github_app_installations.github_updated_at, excluded.github_updated_at)
                """,
                new
                {
                    installation.Id, installation.Account.Login, installation.Account.Type,
                    SuspendedAt = installation.SuspendedAt?.ToUniversalTime(), UpdatedAt = installation.UpdatedAt?.ToUniversalTime(),
                }, transaction, cancellationToken: cancellationToken));
        }
        await connection.ExecuteAsync(new CommandDefinition(
            """
            delete from github_user_repo_access where user_id = @userId;
            insert into github_user_repo_access (user_id, installation_id, repo_id, full_name)
            select @userId, i, r, n from unnest(@installations, @repos, @names) as a (i, r, n)
            on conflict do nothing;
            """,
            new
            {
                userId,
                installations = access.Repositories.Select(r => r.InstallationId).ToArray(),
                repos = access.Repositories.Select(r => r.Repository.Id).ToArray(),
                names = access.Repositories.Select(r => r.Repository.FullName).ToArray(),
            }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }

    private sealed record StoredConnection(long GitHubUserId, string GitHubLogin, string? TokenProtected,
        string? RefreshTokenProtected, DateTime? TokenExpiresAt);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "GitHub no longer accepts the connection of user {UserId} (GitHub {Login}): revoked ({Reason})")]
    private static partial void LogRevokedOnRecheck(ILogger logger, Guid userId, string login, string reason);
}
