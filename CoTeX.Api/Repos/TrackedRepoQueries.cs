using CoTeX.Contracts;
using CoTeX.Shared.Data;
using Dapper;
using Npgsql;

namespace CoTeX.Api.Repos;

/// <summary>
/// The SQL over <c>tracked_repos</c>: what a user tracks, its state and its webhook secret. Every statement a user's
/// request makes is scoped to the caller (<c>user_id</c>), so another user's id answers as one that does not exist; the
/// webhook receiver's (<see cref="WebhookAsync"/>) finds the repo by the id in its webhook URL alone.
/// </summary>
internal static class TrackedRepoQueries
{
    private const string Columns =
        "id, full_name as FullName, paused, created_at as CreatedAt, last_delivery_at as LastDeliveryAt, last_ping_at as LastPingAt, source";

    /// <summary>A tracked repo as stored (Npgsql reads timestamptz as UTC DateTime).</summary>
    internal sealed record Row(Guid Id, string FullName, bool Paused, DateTime CreatedAt, DateTime? LastDeliveryAt,
        DateTime? LastPingAt, string Source)
    {
        public TrackedRepo ToContract(string webhookUrl) => new(Id, FullName, Source == RepoSources.App ? null : webhookUrl, Paused,
            CreatedAt.AsUtcOffset(), LastDeliveryAt.AsUtcOffset(), LastPingAt.AsUtcOffset(), Source);
    }

    /// <summary>
    /// Tracks a repo: with a webhook secret (protected) or, through the app, by GitHub's repository id. Throws a
    /// unique violation when the user tracks it already (by name, or by GitHub id through the app).
    /// </summary>
    public static Task InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, Guid userId, string fullName,
        string source, string? protectedSecret, long? githubRepoId, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            insert into tracked_repos (id, user_id, full_name, source, webhook_secret_protected, github_repo_id)
            values (@id, @userId, @fullName, @source, @protectedSecret, @githubRepoId)
            """, new { id, userId, fullName, source, protectedSecret, githubRepoId }, transaction, cancellationToken: cancellationToken));

    public static async Task<Row[]> ListAsync(NpgsqlConnection connection, Guid userId, CancellationToken cancellationToken) =>
        (await connection.QueryAsync<Row>(new CommandDefinition(
            $"select {Columns} from tracked_repos where user_id = @userId order by created_at, id",
            new { userId }, cancellationToken: cancellationToken))).ToArray();

    /// <summary>Whether the user tracks a repo with that id.</summary>
    public static Task<bool> ExistsAsync(NpgsqlConnection connection, Guid id, Guid userId, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from tracked_repos where id = @id and user_id = @userId)",
            new { id, userId }, cancellationToken: cancellationToken));

    /// <summary>Whether the user's repo is paused; null when they track no repo with that id.</summary>
    public static Task<bool?> PausedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, Guid userId,
        CancellationToken cancellationToken) =>
        connection.QuerySingleOrDefaultAsync<bool?>(new CommandDefinition(
            "select paused from tracked_repos where id = @id and user_id = @userId", new { id, userId }, transaction,
            cancellationToken: cancellationToken));

    public static Task<Row> SetPausedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid id, bool paused,
        CancellationToken cancellationToken) =>
        connection.QuerySingleAsync<Row>(new CommandDefinition(
            $"update tracked_repos set paused = @paused where id = @id returning {Columns}",
            new { id, paused }, transaction, cancellationToken: cancellationToken));

    /// <summary>Stops tracking the repo (its events go with it); false when the user tracks no repo with that id.</summary>
    public static async Task<bool> DeleteAsync(NpgsqlConnection connection, Guid id, Guid userId, CancellationToken cancellationToken) =>
        await connection.ExecuteAsync(new CommandDefinition(
            "delete from tracked_repos where id = @id and user_id = @userId", new { id, userId }, cancellationToken: cancellationToken)) > 0;

    /// <summary>
    /// Replaces a webhook repo's secret; the repo's source (an app repo keeps having none), or null when the user
    /// tracks no repo with that id.
    /// </summary>
    public static Task<string?> RotateSecretAsync(NpgsqlConnection connection, Guid id, Guid userId, string protectedSecret,
        CancellationToken cancellationToken) =>
        connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            """
            update tracked_repos set webhook_secret_protected = case when source = 'webhook' then @protectedSecret end
             where id = @id and user_id = @userId
            returning source
            """, new { id, userId, protectedSecret }, cancellationToken: cancellationToken));

    /// <summary>
    /// A webhook repo's owner, name and protected webhook secret, for the receiver; null when no webhook repo has that
    /// id. Only webhook repos have a webhook URL; an app repo's id is unknown here.
    /// </summary>
    public static Task<(Guid UserId, string FullName, string ProtectedSecret)?> WebhookAsync(NpgsqlConnection connection, Guid id,
        CancellationToken cancellationToken) =>
        connection.QuerySingleOrDefaultAsync<(Guid UserId, string FullName, string ProtectedSecret)?>(new CommandDefinition(
            "select user_id, full_name, webhook_secret_protected from tracked_repos where id = @id and source = 'webhook'",
            new { id }, cancellationToken: cancellationToken));

    /// <summary>The user's active (not paused) repos: what the plan's limit counts.</summary>
    public static Task<int> CountActiveAsync(NpgsqlConnection connection, Guid userId, NpgsqlTransaction? transaction,
        CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "select count(*)::int from tracked_repos where user_id = @userId and not paused",
            new { userId }, transaction, cancellationToken: cancellationToken));
}
