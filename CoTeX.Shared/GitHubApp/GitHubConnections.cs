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
    /// <summary>The user asked again within the cooldown: nothing was done.</summary>
    TooSoon,
    /// <summary>
    /// Access narrowed while GitHub answered, three times in a row: what GitHub's answers took away was saved, what
    /// they added was not, and the connection is due again at once.
    /// </summary>
    Superseded,
}

/// <summary>A re-check's outcome; <see cref="RetryAfter"/> when it was <see cref="RecheckOutcome.Busy"/> or too soon.</summary>
public readonly record struct RecheckResult(RecheckOutcome Outcome, TimeSpan RetryAfter = default);

/// <summary>The account was closed while its GitHub connection was being made: nothing was saved.</summary>
public sealed class AccountClosedException() : Exception("The CoTeX account is closed.");

/// <summary>
/// CoTeX users' GitHub connections and what they give access to: saved at connect time, checked again by the Worker,
/// revoked when GitHub says the authorization is gone. The user's tokens are kept protected with Data Protection, as
/// webhook secrets are (the key ring itself is encrypted at rest), under a purpose that names the user, and are never
/// logged.
/// <para>
/// <b>No database connection is held while GitHub answers</b>, and <b>GitHub's answer never undoes a removal</b>: a
/// re-check (and a connect) notes how many narrowings were stamped before it asks GitHub; when it saves, for an
/// installation (or the GitHub user) stamped since, it takes from GitHub's answer only what narrows (rows gone, lower
/// roles) and asks again (three times at most). It also saves nothing for a closed account, a revoked, disconnected or
/// replaced connection. One re-check per connection runs at a time, across processes, under a lease in its row.
/// Writers lock in one order: the user, the installations (by id), the connection, the access rows.
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
    private const short TokenPurposeOfUser = 2;
    private static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromMinutes(1);
    // Longer than a re-check takes (three readings of a few GitHub calls each, every call bounded by the resilience
    // handler's 30 s): two never overlap. A process that dies holding it delays the connection's re-checks this long.
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    private readonly IDataProtector _pending = protection.CreateProtector("CoTeX.GitHubApp.PendingConnection.v2");
    // Tokens saved before the purpose named the user (token_purpose 1); read only from rows that say so.
    private readonly IDataProtector _firstPurpose = protection.CreateProtector("CoTeX.GitHubApp.UserToken.v1");

    /// <summary>A user's tokens are protected for that user: a row copied to another user cannot be read.</summary>
    private IDataProtector Tokens(Guid userId) => protection.CreateProtector("CoTeX.GitHubApp.UserToken.v2", userId.ToString("N"));

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
            var seen = await ReadStartAsync(userId, cancellationToken) ?? await NoConnectionAsync(cancellationToken);
            var access = await ReadAccessAsync(pending.Tokens.AccessToken, cancellationToken);
            var saved = await SaveAsync(userId, seen, pending.User, pending.Tokens, access, connecting: true,
                recheckNow: attempt == Attempts, cancellationToken);
            switch (saved)
            {
                case SaveResult.Saved:
                    return access;
                case SaveResult.Closed:
                    throw new AccountClosedException();
                case SaveResult.Narrowed when attempt == Attempts:
                    // Connected, with what did not narrow meanwhile; the Worker's re-check (due at once) adds the rest.
                    return access;
                case SaveResult.Gone when attempt == Attempts:
                    throw new GitHubApiException(null, "The connection kept changing while GitHub answered; nothing was connected.");
            }
        }
    }

    /// <summary>
    /// Checks the user's access against GitHub again (the Worker on an interval, or the user, at most once per
    /// <paramref name="cooldown"/>): refreshes the token when it is about to expire, and revokes the connection when
    /// GitHub no longer accepts it.
    /// </summary>
    public async Task<RecheckResult> RecheckAsync(Guid userId, CancellationToken cancellationToken, TimeSpan? cooldown = null)
    {
        if (await TakeLeaseAsync(userId, cooldown, cancellationToken) is not { } stored)
        {
            return await WhyNotAsync(userId, cooldown, cancellationToken);
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
            return new RecheckResult(outcome);
        }
        catch (GitHubApiException ex) when (ex.IsUnauthorized)
        {
            LogRevokedOnRecheck(logger, userId, stored.GitHubLogin, ex.Message);
            return new RecheckResult(await RevokeConnectionAsync(userId, stored, CancellationToken.None)
                ? RecheckOutcome.Revoked
                : RecheckOutcome.NotConnected);
        }
        catch (ConnectionGoneException)
        {
            return new RecheckResult(RecheckOutcome.NotConnected);
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
        var tokens = new GitHubUserTokens(UnprotectToken(userId, stored, stored.TokenProtected), stored.TokenExpiresAt.AsUtcOffset(),
            stored.RefreshTokenProtected is null ? null : UnprotectToken(userId, stored, stored.RefreshTokenProtected), null);
        var refreshed = false;
        if (tokens.ExpiresAt is { } expiresAt && expiresAt - RefreshMargin <= time.GetUtcNow())
        {
            tokens = await RefreshAsync(userId, stored, tokens);
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
                tokens = await RefreshAsync(userId, stored, tokens);
                refreshed = true;
                user = await github.GetUserAsync(tokens.AccessToken, cancellationToken);
            }
            var access = await ReadAccessAsync(tokens.AccessToken, cancellationToken);
            switch (await SaveAsync(userId, seen, user, tokens, access, connecting: false, recheckNow: false, cancellationToken))
            {
                case SaveResult.Saved:
                    return RecheckOutcome.Checked;
                case SaveResult.Gone or SaveResult.Closed:
                    return RecheckOutcome.NotConnected;
                case SaveResult.Narrowed when attempt == Attempts:
                    return RecheckOutcome.Superseded;
            }
            // Access narrowed while GitHub answered (what narrowed is saved): ask again, counting narrowings from now.
            seen = seen with { Narrowings = await NarrowingsSoFarAsync(cancellationToken) };
        }
    }

    private string UnprotectToken(Guid userId, StartState stored, string protectedToken) =>
        (stored.TokenPurpose == TokenPurposeOfUser ? Tokens(userId) : _firstPurpose).Unprotect(protectedToken);

    private async Task<GitHubUserTokens> RefreshAsync(Guid userId, StartState stored, GitHubUserTokens tokens)
    {
        if (tokens.RefreshToken is null)
        {
            throw new GitHubApiException(System.Net.HttpStatusCode.Unauthorized, "The token expired and there is no refresh token.");
        }
        // GitHub's refresh tokens work once: once asked, the answer is read and saved whatever happens to the request
        // that asked (no cancellation), unless the connection was revoked, disconnected, replaced, or its account
        // closed meanwhile (then the new pair is dropped with the connection).
        var refreshed = await github.RefreshAsync(tokens.RefreshToken, CancellationToken.None);
        var protector = Tokens(userId);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(CancellationToken.None);
                var saved = await connection.ExecuteAsync(new CommandDefinition(
                    """
                    update github_connections c
                       set token_protected = @token, refresh_token_protected = @refreshToken, token_expires_at = @expiresAt,
                           token_purpose = @purpose
                      from users u
                     where c.user_id = @userId and c.revoked_at is null and c.connected_at = @connectedAt
                       and c.recheck_lease_until = @lease and u.id = c.user_id and u.deleted_at is null
                    """,
                    new
                    {
                        userId, connectedAt = stored.ConnectedAt, lease = stored.LeaseUntil, purpose = TokenPurposeOfUser,
                        token = protector.Protect(refreshed.AccessToken),
                        refreshToken = refreshed.RefreshToken is null ? null : protector.Protect(refreshed.RefreshToken),
                        expiresAt = refreshed.ExpiresAt,
                    }));
                return saved == 1 ? refreshed : throw new ConnectionGoneException();
            }
            catch (NpgsqlException ex) when (ex.IsTransient && attempt < Attempts)
            {
                // The database blinked: the new pair is the only one that works now, so it is worth a few seconds.
                await Task.Delay(TimeSpan.FromSeconds(attempt), time, CancellationToken.None);
            }
        }
    }

    /// <summary>The connection went (revoked, disconnected, replaced, account closed) while its re-check ran.</summary>
    private sealed class ConnectionGoneException() : Exception("The GitHub connection is gone.");

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

    /// <summary>
    /// GitHub refused the tokens this re-check holds: revoked, unless the connection changed meanwhile (connected again,
    /// or its lease lapsed and another re-check took over: that one has tokens of its own).
    /// </summary>
    private async Task<bool> RevokeConnectionAsync(Guid userId, StartState stored, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var revoked = await RevokeAsync(connection, transaction,
            "user_id = @userId and connected_at = @connectedAt and recheck_lease_until = @lease",
            new { userId, connectedAt = stored.ConnectedAt, lease = stored.LeaseUntil }, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return revoked > 0;
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

    /// <summary>What a re-check or a connect saw before asking GitHub: the connection (if any) and the narrowings so far.</summary>
    private sealed record StartState(long Narrowings, DateTime ConnectedAt, long GitHubUserId, string GitHubLogin,
        string TokenProtected, string? RefreshTokenProtected, DateTime? TokenExpiresAt, DateTime? LeaseUntil, short TokenPurpose)
    {
        /// <summary>No connection stood when the connect started.</summary>
        public bool NoConnection => GitHubUserId == 0;
    }

    private const string StartColumns =
        $"""
        {GitHubAccessQueries.NarrowingsSoFar} as Narrowings,
        connected_at as ConnectedAt, github_user_id as GitHubUserId, github_login as GitHubLogin,
        token_protected as TokenProtected, refresh_token_protected as RefreshTokenProtected,
        token_expires_at as TokenExpiresAt, recheck_lease_until as LeaseUntil, token_purpose as TokenPurpose
        """;

    /// <summary>
    /// Takes the connection's re-check lease (and, for the user's own request, the cooldown), and reads what the
    /// re-check starts from; null when the lease is taken, the cooldown runs, or there is no connection.
    /// </summary>
    private async Task<StartState?> TakeLeaseAsync(Guid userId, TimeSpan? cooldown, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<StartState>(new CommandDefinition(
            $"""
            update github_connections
               set recheck_lease_until = now() + make_interval(secs => @lease),
                   requested_recheck_at = case when @cooldown::float8 is null then requested_recheck_at else now() end
             where user_id = @userId and revoked_at is null and token_protected is not null
               and (recheck_lease_until is null or recheck_lease_until < now())
               and (@cooldown::float8 is null or requested_recheck_at is null
                    or requested_recheck_at <= now() - make_interval(secs => @cooldown::float8))
            returning {StartColumns}
            """, new { userId, lease = Lease.TotalSeconds, cooldown = cooldown?.TotalSeconds }, cancellationToken: cancellationToken));
    }

    /// <summary>Why a lease was not taken: no connection, a re-check under way, or the cooldown (with how long to wait).</summary>
    private async Task<RecheckResult> WhyNotAsync(Guid userId, TimeSpan? cooldown, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(double? Lease, double? Cooldown)?>(new CommandDefinition(
            """
            select extract(epoch from recheck_lease_until - now())::float8,
                   extract(epoch from requested_recheck_at + make_interval(secs => coalesce(@cooldown::float8, 0)) - now())::float8
              from github_connections where user_id = @userId and revoked_at is null and token_protected is not null
            """, new { userId, cooldown = cooldown?.TotalSeconds }, cancellationToken: cancellationToken));
        static TimeSpan Wait(double seconds) => TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(seconds)));
        return row switch
        {
            null => new RecheckResult(RecheckOutcome.NotConnected),
            { Lease: > 0 } busy => new RecheckResult(RecheckOutcome.Busy, Wait(Math.Min(busy.Lease.Value, 5))),
            { Cooldown: > 0 } soon when cooldown is not null => new RecheckResult(RecheckOutcome.TooSoon, Wait(soon.Cooldown.Value)),
            _ => new RecheckResult(RecheckOutcome.Busy, TimeSpan.FromSeconds(1)), // the lease was returned just now
        };
    }

    private async Task<StartState?> ReadStartAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<StartState>(new CommandDefinition(
            $"select {StartColumns} from github_connections where user_id = @userId and revoked_at is null and token_protected is not null",
            new { userId }, cancellationToken: cancellationToken));
    }

    private async Task<StartState> NoConnectionAsync(CancellationToken cancellationToken) =>
        new(await NarrowingsSoFarAsync(cancellationToken), default, 0, "", "", null, null, null, TokenPurposeOfUser);

    private async Task<long> NarrowingsSoFarAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await GitHubAccessQueries.NarrowingsSoFarAsync(connection, cancellationToken);
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

    private enum SaveResult { Saved, Narrowed, Gone, Closed }

    /// <summary>
    /// Saves GitHub's answer: all of it (Saved), or, where access narrowed since <paramref name="seen"/> was read, only
    /// what narrows (Narrowed: ask again for the rest). Nothing when the connection went or was replaced (Gone) or the
    /// account was closed (Closed).
    /// </summary>
    private async Task<SaveResult> SaveAsync(Guid userId, StartState seen, GitHubUser user, GitHubUserTokens tokens,
        GitHubAccess access, bool connecting, bool recheckNow, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var open = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from users where id = @userId and deleted_at is null for key share)",
            new { userId }, transaction, cancellationToken: cancellationToken));
        if (!open)
        {
            return SaveResult.Closed;
        }

        // The installations GitHub listed, locked in id order: one stamped since the answer was read narrowed after it.
        var installations = access.Installations.DistinctBy(i => i.Id).OrderBy(i => i.Id).ToList();
        var stored = (await connection.QueryAsync<(long Id, long NarrowedAt)>(new CommandDefinition(
                "select id, narrowed_at from github_app_installations where id = any(@ids) order by id for update",
                new { ids = installations.Select(i => i.Id).ToArray() }, transaction, cancellationToken: cancellationToken)))
            .ToDictionary(i => i.Id, i => i.NarrowedAt);
        var narrowed = stored.Where(i => i.Value > seen.Narrowings).Select(i => i.Key).ToHashSet();

        var current = await connection.QuerySingleOrDefaultAsync<(DateTime ConnectedAt, long GitHubUserId, DateTime? LeaseUntil, long NarrowedAt)?>(
            new CommandDefinition(
                """
                select connected_at, github_user_id, recheck_lease_until, narrowed_at from github_connections
                 where user_id = @userId and revoked_at is null for update
                """, new { userId }, transaction, cancellationToken: cancellationToken));
        // A re-check still holds its lease (a connect meanwhile takes it away); a connect finds the connection it read,
        // or none (it may then save over a revoked row: the person authorized anew).
        var unchanged = seen.NoConnection
            ? current is null
            : current is { } row && row.ConnectedAt == seen.ConnectedAt && row.GitHubUserId == seen.GitHubUserId
              && (connecting || row.LeaseUntil == seen.LeaseUntil);
        if (!unchanged)
        {
            return SaveResult.Gone;
        }
        var userNarrowed = current is { } c && c.NarrowedAt > seen.Narrowings && c.GitHubUserId == user.Id;

        foreach (var installation in installations.Where(i => !narrowed.Contains(i.Id)))
        {
            await GitHubAccessQueries.UpsertInstallationAsync(connection, transaction, installation.Id, installation.Account.Login,
                installation.Account.Type, installation.SuspendedAt, installation.UpdatedAt, cancellationToken);
        }

        var protector = Tokens(userId);
        var saved = await connection.ExecuteAsync(new CommandDefinition(
            connecting
                ? """
                  insert into github_connections (user_id, github_user_id, github_login, token_protected, refresh_token_protected,
                                                  token_expires_at, token_purpose, connected_at, checked_at, recheck_after)
                  values (@userId, @githubUserId, @login, @token, @refreshToken, @expiresAt, @purpose, @now, @now, @recheckAfter)
                  on conflict (user_id) do update
                     set github_user_id = excluded.github_user_id, github_login = excluded.github_login,
                         token_protected = excluded.token_protected, refresh_token_protected = excluded.refresh_token_protected,
                         token_expires_at = excluded.token_expires_at, token_purpose = excluded.token_purpose,
                         checked_at = excluded.checked_at, recheck_after = excluded.recheck_after, revoked_at = null,
                         recheck_lease_until = null,
                         connected_at = case when github_connections.github_user_id = excluded.github_user_id
                                              and github_connections.revoked_at is null
                                             then github_connections.connected_at else excluded.connected_at end
                  """
                : """
                  update github_connections
                     set github_login = @login, token_protected = @token, refresh_token_protected = @refreshToken,
                         token_expires_at = @expiresAt, token_purpose = @purpose, checked_at = @now, recheck_after = @recheckAfter
                   where user_id = @userId and github_user_id = @githubUserId and revoked_at is null
                  """,
            new
            {
                userId, githubUserId = user.Id, login = user.Login, token = protector.Protect(tokens.AccessToken),
                refreshToken = tokens.RefreshToken is null ? null : protector.Protect(tokens.RefreshToken),
                expiresAt = tokens.ExpiresAt, purpose = TokenPurposeOfUser, now,
                recheckAfter = recheckNow || narrowed.Count > 0 || userNarrowed ? now : now.AddSeconds(options.Value.RecheckSeconds),
            }, transaction, cancellationToken: cancellationToken));
        if (saved == 0)
        {
            return SaveResult.Gone; // the tokens now belong to another GitHub account than the connection's
        }

        // GitHub's answer, one row per repository (a repository listed twice, as paging can while it changes, counts
        // with its lower role). Where access narrowed since (the user, or an installation), only narrowing is taken.
        var rows = access.Repositories.Where(r => r.Repository.Role is not null)
            .GroupBy(r => (r.InstallationId, r.Repository.Id))
            .Select(g => (g.Key.InstallationId, RepoId: g.Key.Id, g.First().Repository.FullName, Role: g.Min(r => (short)r.Repository.Role!.Value)))
            .ToList();
        var narrowOnly = narrowed.ToArray();
        await connection.ExecuteAsync(new CommandDefinition(
            """
            delete from github_user_repo_access a
             where a.user_id = @userId
               and not exists (select 1 from unnest(@installations, @repos) as x (i, r) where x.i = a.installation_id and x.r = a.repo_id);
            update github_user_repo_access a set role = x.role, full_name = x.n
              from unnest(@installations, @repos, @names, @roles) as x (i, r, n, role)
             where a.user_id = @userId and a.installation_id = x.i and a.repo_id = x.r
               and (x.role <= a.role or not (x.i = any(@narrowOnly)) and not @allNarrowOnly);
            insert into github_user_repo_access (user_id, installation_id, repo_id, full_name, role)
            select @userId, x.i, x.r, x.n, x.role from unnest(@installations, @repos, @names, @roles) as x (i, r, n, role)
              join github_app_installations i on i.id = x.i and i.deleted_at is null
             where not (x.i = any(@narrowOnly)) and not @allNarrowOnly
            on conflict (user_id, installation_id, repo_id) do nothing;
            """,
            new
            {
                userId,
                installations = rows.Select(r => r.InstallationId).ToArray(),
                repos = rows.Select(r => r.RepoId).ToArray(),
                names = rows.Select(r => r.FullName).ToArray(),
                roles = rows.Select(r => r.Role).ToArray(),
                narrowOnly, allNarrowOnly = userNarrowed,
            }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return narrowed.Count > 0 || userNarrowed ? SaveResult.Narrowed : SaveResult.Saved;
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "GitHub no longer accepts the connection of user {UserId} (GitHub {Login}): revoked ({Reason})")]
    private static partial void LogRevokedOnRecheck(ILogger logger, Guid userId, string login, string reason);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Access narrowed during each of three re-checks of user {UserId}; what narrowed is saved, the rest is due again at once")]
    private static partial void LogSuperseded(ILogger logger, Guid userId);
}
