using System.Security.Cryptography;
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
    /// <summary>Nothing to check: no connection, revoked, disconnected or closed (before or while GitHub answered).</summary>
    NotConnected,
    /// <summary>Another re-check of this connection is under way (in this process or another): nothing was done.</summary>
    Busy,
    /// <summary>
    /// Access changed while GitHub answered, three times in a row: GitHub's answers were dropped, and the connection is
    /// due again at once.
    /// </summary>
    Superseded,
}

/// <summary>The account was closed while its GitHub connection was being made: nothing was saved.</summary>
public sealed class AccountClosedException() : Exception("The CoTeX account is closed.");

/// <summary>
/// CoTeX users' GitHub connections and what they give access to: saved at connect time, checked again by the Worker,
/// revoked when GitHub says the authorization is gone. The user's tokens are kept protected with Data Protection, as
/// webhook secrets are (the key ring itself is encrypted at rest), under a purpose that names the user, and are never
/// logged.
/// <para>
/// <b>No database connection is held while GitHub answers</b>, and <b>GitHub's answer never undoes a removal</b>: a
/// re-check (and a connect) reads the access epoch before it asks GitHub, and saves only if nothing narrowed access
/// since (<see cref="GitHubAccessQueries.AdvanceEpochAsync"/>), the account is open and the connection is the one it
/// read; otherwise it asks GitHub again (three times at most). One re-check per connection runs at a time, across
/// processes, under a lease in the connection's row.
/// </para>
/// </summary>
public sealed partial class GitHubConnections(
    NpgsqlDataSource dataSource,
    GitHubAppClient github,
    IDataProtectionProvider protection,
    IOptions<GitHubAppOptions> options,
    TimeProvider time,
    ILogger<GitHubConnections> logger)
{
    private const int Attempts = 3;
    private static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromMinutes(1);
    // Longer than a re-check can take (a few GitHub calls, each bounded by the resilience handler's 30 s total) so two
    // never overlap; a process that dies holding it delays the connection's next re-check by this much at most.
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(3);

    private readonly IDataProtector _pending = protection.CreateProtector("CoTeX.GitHubApp.PendingConnection.v2");
    // Tokens stored before the purpose named the user; read (never written) until their next re-check saves them anew.
    private readonly IDataProtector _legacyTokens = protection.CreateProtector("CoTeX.GitHubApp.UserToken.v1");

    /// <summary>A user's tokens are protected for that user: a row copied to another user cannot be read.</summary>
    private IDataProtector Tokens(Guid userId) => protection.CreateProtector("CoTeX.GitHubApp.UserToken.v2", userId.ToString("N"));

    private string UnprotectToken(Guid userId, string protectedToken)
    {
        try
        {
            return Tokens(userId).Unprotect(protectedToken);
        }
        catch (CryptographicException)
        {
            return _legacyTokens.Unprotect(protectedToken);
        }
    }

    public string ProtectPending(Guid userId, PendingGitHubConnection pending) =>
        _pending.CreateProtector(userId.ToString("N")).Protect(JsonSerializer.Serialize(pending));

    /// <summary>The pending connection; throws <see cref="CryptographicException"/> when it cannot be read.</summary>
    public PendingGitHubConnection UnprotectPending(Guid userId, string protectedPending) =>
        JsonSerializer.Deserialize<PendingGitHubConnection>(_pending.CreateProtector(userId.ToString("N")).Unprotect(protectedPending))
        ?? throw new CryptographicException("The pending connection is empty.");

    /// <summary>Every installation the user can reach through the app, and every repository in each with their role.</summary>
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

    /// <summary>
    /// Connects (or reconnects) the user's GitHub account and replaces what they can access. Throws
    /// <see cref="AccountClosedException"/> when the account is closed before it saves.
    /// </summary>
    public async Task<GitHubAccess> ConnectAsync(Guid userId, PendingGitHubConnection pending, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var seen = await ReadConnectStartAsync(userId, cancellationToken);
            var access = await ReadAccessAsync(pending.Tokens.AccessToken, cancellationToken);
            var saved = await SaveAsync(userId, seen, pending.User, pending.Tokens, access, connecting: true, cancellationToken);
            if (saved == SaveResult.Saved)
            {
                return access;
            }
            if (saved == SaveResult.Closed)
            {
                throw new AccountClosedException();
            }
            if (attempt == Attempts)
            {
                throw new GitHubApiException(null, "Access kept changing while GitHub answered; nothing was connected.");
            }
        }
    }

    /// <summary>
    /// Checks the user's access against GitHub again (the Worker on an interval, or the user): refreshes the token when
    /// it is about to expire, and revokes the connection when GitHub no longer accepts it.
    /// </summary>
    public async Task<RecheckOutcome> RecheckAsync(Guid userId, CancellationToken cancellationToken)
    {
        if (await TakeLeaseAsync(userId, cancellationToken) is not { } stored)
        {
            return await IsConnectedAsync(userId, cancellationToken) ? RecheckOutcome.Busy : RecheckOutcome.NotConnected;
        }
        // The lease goes back however this ends; the next re-check is then as saved, due at once when GitHub's answers
        // were superseded, or in a minute when GitHub failed.
        DateTimeOffset? nextCheck = null;
        try
        {
            var outcome = await CheckAsync(userId, stored, cancellationToken);
            if (outcome == RecheckOutcome.Superseded)
            {
                LogSuperseded(logger, userId);
                nextCheck = time.GetUtcNow();
            }
            return outcome;
        }
        catch (GitHubApiException ex) when (ex.IsUnauthorized)
        {
            LogRevokedOnRecheck(logger, userId, stored.GitHubLogin, ex.Message);
            await RevokeConnectionAsync(userId, stored.ConnectedAt, cancellationToken);
            return RecheckOutcome.Revoked;
        }
        catch (ConnectionGoneException)
        {
            return RecheckOutcome.NotConnected;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // GitHub is unreachable or failing: try again soon; the access rows stay as they were meanwhile.
            nextCheck = time.GetUtcNow() + RetryAfterFailure;
            throw;
        }
        finally
        {
            await ReturnLeaseAsync(userId, stored.LeaseUntil, nextCheck, CancellationToken.None);
        }
    }

    private async Task<RecheckOutcome> CheckAsync(Guid userId, StartState stored, CancellationToken cancellationToken)
    {
        var tokens = new GitHubUserTokens(UnprotectToken(userId, stored.TokenProtected), stored.TokenExpiresAt.AsUtcOffset(),
            stored.RefreshTokenProtected is null ? null : UnprotectToken(userId, stored.RefreshTokenProtected), null);
        var refreshed = false;
        if (tokens.ExpiresAt is { } expiresAt && expiresAt - RefreshMargin <= time.GetUtcNow())
        {
            tokens = await RefreshAsync(userId, stored, tokens, cancellationToken);
            refreshed = true;
        }
        var seen = stored;
        for (var attempt = 1; ; attempt++)
        {
            GitHubUser user;
            try
            {
                user = await github.GetUserAsync(tokens.AccessToken, cancellationToken);
            }
            catch (GitHubApiException ex) when (ex.IsUnauthorized && !refreshed)
            {
                // Expired earlier than it said (or our clock is behind): the refresh token decides.
                tokens = await RefreshAsync(userId, stored, tokens, cancellationToken);
                refreshed = true;
                user = await github.GetUserAsync(tokens.AccessToken, cancellationToken);
            }
            var access = await ReadAccessAsync(tokens.AccessToken, cancellationToken);
            switch (await SaveAsync(userId, seen, user, tokens, access, connecting: false, cancellationToken))
            {
                case SaveResult.Saved:
                    return RecheckOutcome.Checked;
                case SaveResult.Gone or SaveResult.Closed:
                    return RecheckOutcome.NotConnected;
                case SaveResult.Changed when attempt == Attempts:
                    return RecheckOutcome.Superseded;
            }
            // Access changed while GitHub answered: ask again, from the epoch as it is now.
            seen = await ReadStartAsync(userId, cancellationToken) is { } now && now.ConnectedAt == stored.ConnectedAt
                ? now with { LeaseUntil = stored.LeaseUntil }
                : throw new ConnectionGoneException();
        }
    }

    /// <summary>
    /// The user asks for a re-check: at most one per <see cref="GitHubAppOptions.RecheckCooldownSeconds"/>. Null when
    /// allowed (the request is recorded); else how long to wait. False in <c>Connected</c> when there is no connection.
    /// </summary>
    public async Task<(bool Connected, TimeSpan? RetryAfter)> RequestRecheckAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(bool Allowed, double Wait)?>(new CommandDefinition(
            """
            with current as (
                select user_id, requested_recheck_at from github_connections
                 where user_id = @userId and revoked_at is null for update),
            allowed as (
                update github_connections c set requested_recheck_at = now()
                  from current
                 where c.user_id = current.user_id
                   and (current.requested_recheck_at is null or current.requested_recheck_at <= now() - make_interval(secs => @cooldown))
                returning c.user_id)
            select exists (select 1 from allowed),
                   coalesce(extract(epoch from requested_recheck_at + make_interval(secs => @cooldown) - now()), 0)::float8
              from current
            """, new { userId, cooldown = (double)options.Value.RecheckCooldownSeconds }, cancellationToken: cancellationToken));
        return row switch
        {
            null => (false, null),
            { Allowed: true } => (true, null),
            { } waiting => (true, TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(waiting.Wait)))),
        };
    }

    private async Task<GitHubUserTokens> RefreshAsync(Guid userId, StartState stored, GitHubUserTokens tokens,
        CancellationToken cancellationToken)
    {
        if (tokens.RefreshToken is null)
        {
            throw new GitHubApiException(System.Net.HttpStatusCode.Unauthorized, "The token expired and there is no refresh token.");
        }
        var refreshed = await github.RefreshAsync(tokens.RefreshToken, cancellationToken);
        // GitHub's refresh tokens work once: the new pair is saved at once, whatever happens to the rest of the re-check,
        // unless the connection was revoked, disconnected, replaced or its account closed meanwhile (then it is dropped).
        await using var connection = await dataSource.OpenConnectionAsync(CancellationToken.None);
        var saved = await connection.ExecuteAsync(new CommandDefinition(
            """
            update github_connections c
               set token_protected = @token, refresh_token_protected = @refreshToken, token_expires_at = @expiresAt
              from users u
             where c.user_id = @userId and c.revoked_at is null and c.connected_at = @connectedAt
               and c.recheck_lease_until = @lease and u.id = c.user_id and u.deleted_at is null
            """,
            new
            {
                userId, connectedAt = stored.ConnectedAt, lease = stored.LeaseUntil, token = Tokens(userId).Protect(refreshed.AccessToken),
                refreshToken = refreshed.RefreshToken is null ? null : Tokens(userId).Protect(refreshed.RefreshToken),
                expiresAt = refreshed.ExpiresAt,
            }, cancellationToken: CancellationToken.None));
        return saved == 1 ? refreshed : throw new ConnectionGoneException();
    }

    /// <summary>The connection went (revoked, disconnected, replaced, account closed) while its re-check ran.</summary>
    private sealed class ConnectionGoneException() : Exception("The GitHub connection is gone.");

    /// <summary>
    /// A GitHub user revoked the app's authorization: every connection of theirs stops receiving at once (within the
    /// caller's transaction, which records the event and has advanced the access epoch).
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

    private async Task RevokeConnectionAsync(Guid userId, DateTime connectedAt, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Only the connection whose tokens GitHub refused: one made again meanwhile has tokens of its own.
        await RevokeAsync(connection, transaction, "user_id = @userId and connected_at = @connectedAt", new { userId, connectedAt },
            cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task<int> RevokeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string where,
        object parameters, CancellationToken cancellationToken)
    {
        var users = (await connection.QueryAsync<Guid>(new CommandDefinition(
            $"""
            update github_connections
               set revoked_at = now(), token_protected = null, refresh_token_protected = null, token_expires_at = null,
                   recheck_lease_until = null
             where {where} and revoked_at is null
            returning user_id
            """, parameters, transaction, cancellationToken: cancellationToken))).ToArray();
        await connection.ExecuteAsync(new CommandDefinition(
            "delete from github_user_repo_access where user_id = any(@users)", new { users }, transaction,
            cancellationToken: cancellationToken));
        return users.Length;
    }

    /// <summary>What a re-check or a connect saw before asking GitHub: the connection (if any) and the access epoch.</summary>
    private sealed record StartState(long Epoch, DateTime ConnectedAt, long GitHubUserId, string GitHubLogin, string TokenProtected,
        string? RefreshTokenProtected, DateTime? TokenExpiresAt, DateTime? LeaseUntil)
    {
        /// <summary>No connection stood when the connect started.</summary>
        public bool NoConnection => GitHubUserId == 0;
    }

    private const string StartColumns =
        """
        (select epoch from github_access_epoch) as Epoch, connected_at as ConnectedAt, github_user_id as GitHubUserId,
        github_login as GitHubLogin, token_protected as TokenProtected, refresh_token_protected as RefreshTokenProtected,
        token_expires_at as TokenExpiresAt, recheck_lease_until as LeaseUntil
        """;

    /// <summary>Takes the connection's re-check lease, and reads what the re-check starts from; null when not free.</summary>
    private async Task<StartState?> TakeLeaseAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<StartState>(new CommandDefinition(
            $"""
            update github_connections set recheck_lease_until = now() + make_interval(secs => @lease)
             where user_id = @userId and revoked_at is null and token_protected is not null
               and (recheck_lease_until is null or recheck_lease_until < now())
            returning {StartColumns}
            """, new { userId, lease = Lease.TotalSeconds }, cancellationToken: cancellationToken));
    }

    private async Task<StartState?> ReadStartAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<StartState>(new CommandDefinition(
            $"select {StartColumns} from github_connections where user_id = @userId and revoked_at is null and token_protected is not null",
            new { userId }, cancellationToken: cancellationToken));
    }

    /// <summary>A connect starts from the connection as it stands, or from none.</summary>
    private async Task<StartState> ReadConnectStartAsync(Guid userId, CancellationToken cancellationToken) =>
        await ReadStartAsync(userId, cancellationToken) ?? await NoConnectionAsync(cancellationToken);

    private async Task<StartState> NoConnectionAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return new StartState(await GitHubAccessQueries.EpochAsync(connection, null, lockForShare: false, cancellationToken),
            default, 0, "", "", null, null, null);
    }

    private async Task<bool> IsConnectedAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from github_connections where user_id = @userId and revoked_at is null)",
            new { userId }, cancellationToken: cancellationToken));
    }

    /// <summary>Returns this re-check's lease (not one taken after it lapsed), with the next re-check's time if given.</summary>
    private async Task ReturnLeaseAsync(Guid userId, DateTime? lease, DateTimeOffset? recheckAfter, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            update github_connections set recheck_lease_until = null, recheck_after = coalesce(@recheckAfter, recheck_after)
             where user_id = @userId and recheck_lease_until = @lease
            """, new { userId, lease, recheckAfter }, cancellationToken: cancellationToken));
    }

    private enum SaveResult { Saved, Changed, Gone, Closed }

    /// <summary>
    /// Saves GitHub's answer, unless something narrowed access since <paramref name="seen"/> was read (Changed), the
    /// connection went or was replaced (Gone), or the account was closed (Closed). Locks in the order every writer
    /// uses (the user, the access epoch, the connection), so a removal committing meanwhile waits and then wins.
    /// </summary>
    private async Task<SaveResult> SaveAsync(Guid userId, StartState seen, GitHubUser user, GitHubUserTokens tokens,
        GitHubAccess access, bool connecting, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var open = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from users where id = @userId and deleted_at is null for share)",
            new { userId }, transaction, cancellationToken: cancellationToken));
        if (!open)
        {
            return SaveResult.Closed;
        }
        if (await GitHubAccessQueries.EpochAsync(connection, transaction, lockForShare: true, cancellationToken) != seen.Epoch)
        {
            return SaveResult.Changed;
        }
        var current = await connection.QuerySingleOrDefaultAsync<(DateTime ConnectedAt, long GitHubUserId, DateTime? LeaseUntil)?>(
            new CommandDefinition(
                """
                select connected_at, github_user_id, recheck_lease_until from github_connections
                 where user_id = @userId and revoked_at is null for update
                """, new { userId }, transaction, cancellationToken: cancellationToken));
        // A re-check still holds its lease (a connect meanwhile takes it away); a connect finds the connection it read.
        var unchanged = seen.NoConnection
            ? current is null
            : current is { } row && row.ConnectedAt == seen.ConnectedAt && row.GitHubUserId == seen.GitHubUserId
              && (connecting || row.LeaseUntil == seen.LeaseUntil);
        if (!unchanged)
        {
            // Disconnected, revoked, or connected again while GitHub answered: that later change stands. A connect
            // started from "no connection" may still save over a revoked row (the person authorized anew).
            if (!connecting || !seen.NoConnection || current is not null)
            {
                return SaveResult.Gone;
            }
        }

        var protector = Tokens(userId);
        var saved = await connection.ExecuteAsync(new CommandDefinition(
            connecting
                ? """
                  insert into github_connections (user_id, github_user_id, github_login, token_protected, refresh_token_protected,
                                                  token_expires_at, connected_at, checked_at, recheck_after)
                  values (@userId, @githubUserId, @login, @token, @refreshToken, @expiresAt, @now, @now, @recheckAfter)
                  on conflict (user_id) do update
                     set github_user_id = excluded.github_user_id, github_login = excluded.github_login,
                         token_protected = excluded.token_protected, refresh_token_protected = excluded.refresh_token_protected,
                         token_expires_at = excluded.token_expires_at, checked_at = excluded.checked_at,
                         recheck_after = excluded.recheck_after, revoked_at = null, recheck_lease_until = null,
                         connected_at = case when github_connections.github_user_id = excluded.github_user_id
                                              and github_connections.revoked_at is null
                                             then github_connections.connected_at else excluded.connected_at end
                  """
                : """
                  update github_connections
                     set github_login = @login, token_protected = @token, refresh_token_protected = @refreshToken,
                         token_expires_at = @expiresAt, checked_at = @now, recheck_after = @recheckAfter
                   where user_id = @userId and github_user_id = @githubUserId and revoked_at is null
                  """,
            new
            {
                userId, githubUserId = user.Id, login = user.Login, token = protector.Protect(tokens.AccessToken),
                refreshToken = tokens.RefreshToken is null ? null : protector.Protect(tokens.RefreshToken),
                expiresAt = tokens.ExpiresAt, now, recheckAfter = now.AddSeconds(options.Value.RecheckSeconds),
            }, transaction, cancellationToken: cancellationToken));
        if (saved == 0)
        {
            return SaveResult.Gone; // the tokens now belong to another GitHub account than the connection's
        }

        // GitHub listed these installations just now, so they exist; their suspension is as GitHub says, unless CoTeX
        // has applied a newer state of them (an uninstalled one stays a tombstone).
        foreach (var installation in access.Installations)
        {
            await GitHubAccessQueries.UpsertInstallationAsync(connection, transaction, installation.Id, installation.Account.Login,
                installation.Account.Type, installation.SuspendedAt, installation.UpdatedAt, cancellationToken);
        }
        await connection.ExecuteAsync(new CommandDefinition(
            """
            delete from github_user_repo_access where user_id = @userId;
            insert into github_user_repo_access (user_id, installation_id, repo_id, full_name, role)
            select @userId, a.i, a.r, a.n, a.role from unnest(@installations, @repos, @names, @roles) as a (i, r, n, role)
              join github_app_installations i on i.id = a.i and i.deleted_at is null
            on conflict (user_id, installation_id, repo_id) do update set role = greatest(github_user_repo_access.role, excluded.role);
            """,
            new
            {
                userId,
                installations = access.Repositories.Select(r => r.InstallationId).ToArray(),
                repos = access.Repositories.Select(r => r.Repository.Id).ToArray(),
                names = access.Repositories.Select(r => r.Repository.FullName).ToArray(),
                roles = access.Repositories.Select(r => (short)r.Repository.Role).ToArray(),
            }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return SaveResult.Saved;
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "GitHub no longer accepts the connection of user {UserId} (GitHub {Login}): revoked ({Reason})")]
    private static partial void LogRevokedOnRecheck(ILogger logger, Guid userId, string login, string reason);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Access changed during each of three re-checks of user {UserId}; GitHub's answers dropped, due again at once")]
    private static partial void LogSuperseded(ILogger logger, Guid userId);
}
