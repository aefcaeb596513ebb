using System.Security.Cryptography;
using CoTeX.Shared.Data;
using Dapper;
using Npgsql;

namespace CoTeX.Api.GitHubApp;

/// <summary>
/// The SQL of Connect GitHub over <c>github_app_connect_states</c> (a state is good for one callback, whose result
/// waits for the person's confirmation) and the caller's <c>github_connections</c> row for the status. Each step opens
/// its own connection: none is held while GitHub answers.
/// </summary>
internal static class ConnectStateQueries
{
    internal sealed record Account(Guid UserId, string? Email);

    internal sealed record ConnectionRow(string Login, DateTime ConnectedAt, DateTime CheckedAt, DateTime? RevokedAt);

    public static async Task<ConnectionRow?> ConnectionAsync(NpgsqlConnection connection, Guid userId, CancellationToken cancellationToken) =>
        await connection.QuerySingleOrDefaultAsync<ConnectionRow>(new CommandDefinition(
            """
            select github_login as Login, connected_at as ConnectedAt, checked_at as CheckedAt, revoked_at as RevokedAt
              from github_connections where user_id = @userId
            """, new { userId }, cancellationToken: cancellationToken));

    public static async Task CreateAsync(NpgsqlDataSource dataSource, string nonce, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "insert into github_app_connect_states (nonce, user_id) values (@nonce, @userId)", new { nonce, userId },
            cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Marks the state's one callback, for an open, signed-in (not anonymous) account: the account, or null when the
    /// state was called back before (a replay, a leaked link) or the account cannot connect.
    /// </summary>
    public static async Task<Account?> TakeCallbackAsync(NpgsqlDataSource dataSource, ConnectStates.Claim claim,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<Account>(new CommandDefinition(
            """
            update github_app_connect_states s set called_back_at = now()
              from users u
             where s.nonce = @Nonce and s.user_id = @UserId and s.called_back_at is null and u.id = s.user_id and u.deleted_at is null
               and not u.is_anonymous
            returning u.id as UserId, u.email as Email
            """, claim, cancellationToken: cancellationToken));
    }

    /// <summary>Keeps the GitHub account and tokens (protected) until the person confirms with the token only their page holds.</summary>
    public static async Task SavePendingAsync(NpgsqlDataSource dataSource, string nonce, string protectedPending, string confirmToken,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "update github_app_connect_states set pending_protected = @protectedPending, confirm_hash = @hash where nonce = @nonce",
            new { nonce, protectedPending, hash = SHA256.HashData(Convert.FromHexString(confirmToken)) },
            cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Once: the pending connection leaves the row as it is confirmed with the page's token, for an open, signed-in
    /// account. Null when it was confirmed before, never called back, the token is wrong, or the account cannot connect.
    /// </summary>
    public static async Task<string?> TakePendingAsync(NpgsqlDataSource dataSource, ConnectStates.Claim claim, string confirmToken,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            """
            with pending as (
                select nonce, pending_protected from github_app_connect_states
                 where nonce = @nonce and user_id = @userId and confirmed_at is null and pending_protected is not null
                   and confirm_hash = @hash
                   and exists (select 1 from users u where u.id = user_id and u.deleted_at is null and not u.is_anonymous)
                   for update)
            update github_app_connect_states s set confirmed_at = now(), pending_protected = null
              from pending p where s.nonce = p.nonce
            returning p.pending_protected
            """, new { nonce = claim.Nonce, userId = claim.UserId, hash = SHA256.HashData(Convert.FromHexString(confirmToken)) },
            cancellationToken: cancellationToken));
    }
}
