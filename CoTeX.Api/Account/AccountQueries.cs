using Dapper;
using Npgsql;

namespace CoTeX.Api.Account;

/// <summary>
/// The SQL of closing an account: what the user is billed through (<c>subscriptions</c>), and the one batch that
/// removes what the account owns and leaves the user row as a tombstone.
/// </summary>
internal static class AccountQueries
{
    /// <summary>The user's Stripe customer and stored plan; null when they have no subscriptions row.</summary>
    public static Task<(string? CustomerId, string Plan)?> BillingAsync(NpgsqlConnection connection, Guid userId,
        CancellationToken cancellationToken) =>
        connection.QuerySingleOrDefaultAsync<(string? CustomerId, string Plan)?>(new CommandDefinition(
            "select stripe_customer_id, plan from subscriptions where user_id = @userId", new { userId },
            cancellationToken: cancellationToken));

    /// <summary>
    /// Closes the account, in the caller's transaction (which holds the user lock). Repos cascade to their events and
    /// dedupe keys (the events release the payloads they shared with other followers, and a payload goes with its last
    /// reference: the trigger of migration 0009), a GitHub connection to its access rows (its tokens go with it); the
    /// user row stays as a tombstone so old tokens are refused. The plan goes back to free because the subscription
    /// has just ended in Stripe (its webhook will say so too).
    /// </summary>
    public static Task CloseAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId,
        CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            delete from tracked_repos where user_id = @userId;
            delete from github_connections where user_id = @userId;
            delete from github_app_connect_states where user_id = @userId;
            update subscriptions set plan = 'free', payment_problem = false where user_id = @userId;
            update users set deleted_at = now(), email = null where id = @userId;
            """, new { userId }, transaction, cancellationToken: cancellationToken));
}
