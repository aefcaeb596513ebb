using System.Globalization;
using System.Text.Json;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Shared.GitHubApp;
using Dapper;
using Npgsql;
using static CoTeX.Api.GitHubWebhooks.JsonFields;

namespace CoTeX.Api.GitHubApp;

/// <summary>
/// What the app's deliveries change, and who receives them.
/// <para>
/// <b>The rule</b>: a user receives an app delivery for repository R of installation I only if GitHub told CoTeX,
/// with that user's own token, that they can access R through I (an access row), their connection is not revoked, I
/// is neither suspended nor deleted, and they track R through the app. Nothing a user sends CoTeX creates an access
/// row: only GitHub's answers to their token do, and GitHub's events and the Worker's re-checks take rows away.
/// </para>
/// </summary>
public sealed class GitHubAppEvents(NpgsqlDataSource dataSource, TimeProvider time, ILogger<GitHubAppEvents> logger)
{
    /// <summary>The events that change who can access what (the others are only delivered to followers).</summary>
    public static bool ChangesAccess(string eventType, string? action) => (eventType, action) switch
    {
        ("installation" or "installation_repositories" or "github_app_authorization", _) => true,
        ("organization", "member_removed") or ("membership", "removed") or ("member", "removed") => true,
        _ => false,
    };

    /// <summary>Every user the delivery goes to (with their tracked repo for it), by the rule above.</summary>
    public async Task<Recipient[]> FollowersAsync(long installationId, long repositoryId, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        await DatabaseRetry.RunAsync(async () =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            return (await connection.QueryAsync<Recipient>(new CommandDefinition(
                """
                select r.id as RepoId, r.user_id as UserId, r.full_name as FullName
                  from tracked_repos r
                  join github_user_repo_access a
                    on a.user_id = r.user_id and a.installation_id = @installationId and a.repo_id = r.github_repo_id
                  join github_connections c on c.user_id = r.user_id and c.revoked_at is null
                  join github_app_installations i on i.id = a.installation_id and i.suspended_at is null and i.deleted_at is null
                 where r.source = 'app' and r.github_repo_id = @repositoryId
                """, new { installationId, repositoryId }, cancellationToken: cancellationToken))).ToArray();
        }, dataSource, deadline, time, logger, cancellationToken);

    /// <summary>
    /// Applies an access-changing event once per delivery id; false when this delivery was applied before (a replay or
    /// a redelivery), and then nothing changes. The change and the record of it commit together.
    /// </summary>
    public Task<bool> ApplyAsync(string eventType, string deliveryId, JsonElement root, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        DatabaseRetry.RunAsync(() => ApplyOnceAsync(eventType, deliveryId, root, cancellationToken), dataSource, deadline, time,
            logger, cancellationToken);

    private async Task<bool> ApplyOnceAsync(string eventType, string deliveryId, JsonElement root, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var fresh = await connection.ExecuteAsync(new CommandDefinition(
            "insert into github_app_deliveries (delivery_id) values (@deliveryId) on conflict do nothing",
            new { deliveryId }, transaction, cancellationToken: cancellationToken)) == 1;
        if (!fresh)
        {
            return false;
        }
        var change = new Change(connection, transaction, cancellationToken);
        var action = String(root, "action");
        var installation = Property(root, "installation");
        var installationId = Long(installation, "id");
        var senderId = Long(Property(root, "sender"), "id");
        switch (eventType, action)
        {
            case ("installation", "deleted") when installationId is { } id:
                await change.DeleteInstallationAsync(id, installation);
                break;
            case ("installation", _) when installationId is { } id:
                // created, new_permissions_accepted, suspend, unsuspend: the installation as the payload shows it.
                await change.UpsertInstallationAsync(id, installation);
                if (action == "created" && senderId is { } installer)
                {
                    // Whoever installed it sees it at once; other users at their next re-check.
                    await change.RecheckGitHubUserAsync(installer);
                }
                break;
            case ("installation_repositories", _) when installationId is { } id:
                var removed = Property(root, "repositories_removed") is { ValueKind: JsonValueKind.Array } list
                    ? list.EnumerateArray().Select(r => Long(r, "id")).OfType<long>().ToArray()
                    : [];
                await change.RemoveRepositoriesAsync(id, removed);
                // Who gains access to added repositories depends on each user's rights: GitHub answers that per user.
                await change.RecheckInstallationUsersAsync(id);
                break;
            case ("github_app_authorization", "revoked") when senderId is { } githubUserId:
                await GitHubConnections.RevokeGitHubUserAsync(connection, transaction, githubUserId, cancellationToken);
                break;
            case ("organization", "member_removed")
                when Long(Property(Property(root, "membership"), "user"), "id") is { } githubUserId
                     && String(Property(root, "organization"), "login") is { } organization:
                await change.RemoveOrganizationMemberAsync(githubUserId, organization);
                break;
            case ("membership", "removed") when Long(Property(root, "member"), "id") is { } githubUserId:
                // A team's repositories may be gone for the member, or reachable another way: GitHub says which.
                await change.RecheckGitHubUserAsync(githubUserId);
                break;
            case ("member", "removed")
                when Long(Property(root, "member"), "id") is { } githubUserId && Long(Property(root, "repository"), "id") is { } repositoryId:
                await change.RemoveCollaboratorAsync(githubUserId, repositoryId);
                break;
        }
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private sealed class Change(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        /// <summary>
        /// Creates or updates the installation unless a newer event was applied already (GitHub's redeliveries can
        /// arrive out of order: an old "suspend" must not undo a newer "unsuspend").
        /// </summary>
        public Task UpsertInstallationAsync(long id, JsonElement installation) =>
            ExecuteAsync(
                """
                insert into github_app_installations (id, account_login, account_type, suspended_at, github_updated_at)
                values (@id, @login, @type, @suspendedAt, @updatedAt)
                on conflict (id) do update
                   set account_login = excluded.account_login, account_type = excluded.account_type,
                       suspended_at = excluded.suspended_at, github_updated_at = excluded.github_updated_at, updated_at = now()
                 where github_app_installations.deleted_at is null
                   and (github_app_installations.github_updated_at is null or excluded.github_updated_at is null
                        or github_app_installations.github_updated_at <= excluded.github_updated_at)
                """,
                new
                {
                    id,
                    login = String(Property(installation, "account"), "login") ?? "",
                    type = String(Property(installation, "account"), "type") ?? "User",
                    suspendedAt = Time(installation, "suspended_at"),
                    updatedAt = Time(installation, "updated_at"),
                });

        /// <summary>The app was uninstalled: a tombstone, and nobody receives anything through it from now on.</summary>
        public Task DeleteInstallationAsync(long id, JsonElement installation) =>
            ExecuteAsync(
                """
                insert into github_app_installations (id, account_login, account_type, deleted_at)
                values (@id, @login, @type, now())
                on conflict (id) do update set deleted_at = now(), updated_at = now();
                delete from github_user_repo_access where installation_id = @id;
                """,
                new
                {
                    id,
                    login = String(Property(installation, "account"), "login") ?? "",
                    type = String(Property(installation, "account"), "type") ?? "User",
                });

        public Task RemoveRepositoriesAsync(long installationId, long[] repositories) =>
            ExecuteAsync("delete from github_user_repo_access where installation_id = @installationId and repo_id = any(@repositories)",
                new { installationId, repositories });

        public Task RecheckInstallationUsersAsync(long installationId) =>
            ExecuteAsync(
                """
                update github_connections set recheck_after = now()
                 where revoked_at is null
                   and user_id in (select user_id from github_user_repo_access where installation_id = @installationId)
                """, new { installationId });

        /// <summary>
        /// A member left an organisation: nothing through its installations reaches their connections any more until
        /// GitHub says otherwise at the re-check, which is due at once (they may keep some repos as a collaborator).
        /// </summary>
        public async Task RemoveOrganizationMemberAsync(long githubUserId, string organization)
        {
            await ExecuteAsync(
                """
                delete from github_user_repo_access a
                 using github_connections c, github_app_installations i
                 where c.user_id = a.user_id and c.github_user_id = @githubUserId
                   and i.id = a.installation_id and lower(i.account_login) = lower(@organization)
                """, new { githubUserId, organization });
            await RecheckGitHubUserAsync(githubUserId);
        }

        public async Task RemoveCollaboratorAsync(long githubUserId, long repositoryId)
        {
            await ExecuteAsync(
                """
                delete from github_user_repo_access a
                 using github_connections c
                 where c.user_id = a.user_id and c.github_user_id = @githubUserId and a.repo_id = @repositoryId
                """, new { githubUserId, repositoryId });
            await RecheckGitHubUserAsync(githubUserId);
        }

        public Task RecheckGitHubUserAsync(long githubUserId) =>
            ExecuteAsync("update github_connections set recheck_after = now() where github_user_id = @githubUserId and revoked_at is null",
                new { githubUserId });

        private Task ExecuteAsync(string sql, object parameters) =>
            connection.ExecuteAsync(new CommandDefinition(sql, parameters, transaction, cancellationToken: cancellationToken));
    }

    /// <summary>A timestamp as GitHub writes them in payloads: ISO 8601, or (in some) seconds since the epoch.</summary>
    private static DateTimeOffset? Time(JsonElement element, string name) => Property(element, name) switch
    {
        { ValueKind: JsonValueKind.Number } seconds when seconds.TryGetInt64(out var s) => DateTimeOffset.FromUnixTimeSeconds(s),
        { ValueKind: JsonValueKind.String } text when DateTimeOffset.TryParse(text.GetString(), CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal, out var parsed) => parsed.ToUniversalTime(),
        _ => null,
    };
}
