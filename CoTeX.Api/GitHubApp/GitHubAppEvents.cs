using System.Globalization;
using System.Text.Json;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Shared.GitHubApp;
using Dapper;
using Npgsql;
using static CoTeX.Api.GitHubWebhooks.JsonFields;

namespace CoTeX.Api.GitHubApp;

/// <summary>
/// What the app's deliveries change, and who receives them, by the access rule in <see cref="GitHubAccessQueries"/>.
/// Every change that narrows access stamps what it narrows first (the installation, or the GitHub user's connections),
/// so a re-check that asked GitHub before it takes only narrowings from its older answer there. Locks are taken in the
/// order every writer uses: the installation, the connections, the access rows.
/// </summary>
public sealed class GitHubAppEvents(NpgsqlDataSource dataSource, TimeProvider time, ILogger<GitHubAppEvents> logger)
{
    /// <summary>The events that change who can access what (the others are only delivered to followers).</summary>
    public static bool ChangesAccess(string eventType, string? action) => (eventType, action) switch
    {
        ("installation" or "installation_repositories" or "github_app_authorization", _) => true,
        ("organization", "member_removed") or ("membership", "removed") => true,
        ("member", "removed" or "edited") => true,
        ("team", "removed_from_repository" or "edited" or "deleted") => true,
        _ => false,
    };

    /// <summary>Every user a delivery of <paramref name="eventType"/> goes to (with their tracked repo for it), by the rule.</summary>
    public async Task<Recipient[]> FollowersAsync(long installationId, long repositoryId, string eventType, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        await DatabaseRetry.RunAsync(async attempt =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(attempt);
            var followers = await GitHubAccessQueries.FollowersAsync(connection, installationId, repositoryId, eventType, attempt);
            return followers.Select(f => new Recipient(f.RepoId, f.UserId, f.FullName)).ToArray();
        }, dataSource, deadline, time, logger, cancellationToken);

    /// <summary>
    /// Applies an access-changing event once per delivery id; false when this delivery was applied before (a replay or
    /// a redelivery), and then nothing changes. The change and the record of it commit together.
    /// </summary>
    public Task<bool> ApplyAsync(string eventType, string deliveryId, JsonElement root, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        DatabaseRetry.RunAsync(attempt => ApplyOnceAsync(eventType, deliveryId, root, attempt), dataSource, deadline, time,
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
            case ("installation", "suspend") when installationId is { } id:
                await change.NarrowInstallationAsync(id);
                await change.UpsertInstallationAsync(id, installation);
                break;
            case ("installation", _) when installationId is { } id:
                // created, new_permissions_accepted, unsuspend: the installation as the payload shows it.
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
                if (removed.Length > 0)
                {
                    await change.NarrowInstallationAsync(id);
                }
                // Who gains access to added repositories depends on each user's rights: GitHub answers that per user.
                await change.RecheckInstallationUsersAsync(id);
                await change.RemoveRepositoriesAsync(id, removed);
                break;
            case ("github_app_authorization", "revoked") when senderId is { } githubUserId:
                await GitHubConnections.RevokeGitHubUserAsync(connection, transaction, githubUserId, cancellationToken);
                break;
            case ("organization", "member_removed")
                when Long(Property(Property(root, "membership"), "user"), "id") is { } githubUserId && installationId is { } id:
                // By GitHub's ids (the member's and the organisation's installation), never by logins, which change.
                await change.RemoveMemberAsync(githubUserId, id);
                break;
            case ("membership", "removed") when Long(Property(root, "member"), "id") is { } githubUserId && installationId is { } id:
                // A team's repositories may be gone for the member, or reachable another way: none until GitHub says which.
                await change.RemoveMemberAsync(githubUserId, id);
                break;
            case ("member", "removed" or "edited")
                when Long(Property(root, "member"), "id") is { } githubUserId && Long(Property(root, "repository"), "id") is { } repositoryId:
                // Removed, or their role changed (perhaps lowered): no access to it until GitHub says what they have now.
                await change.RemoveCollaboratorAsync(githubUserId, repositoryId);
                break;
            case ("team", _) when Long(Property(root, "repository"), "id") is { } repositoryId && installationId is { } id:
                // The team lost the repository, or its role on it changed (removed_from_repository, edited), and GitHub
                // does not say who its members are: nobody keeps the repository through this installation until their
                // re-check, due at once, says they still have it.
                await change.RemoveRepositoryForEveryoneAsync(id, repositoryId);
                break;
            case ("team", _) when installationId is { } id:
                // A team was deleted or changed without naming a repository: everyone of the installation is re-checked
                // at once (their access stays until then; the event does not say which repositories the team had).
                await change.RecheckInstallationUsersAsync(id);
                break;
        }
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private sealed class Change(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        /// <summary>created, new_permissions_accepted, suspend, unsuspend: the installation as the payload shows it.</summary>
        public Task UpsertInstallationAsync(long id, JsonElement installation) =>
            GitHubAccessQueries.UpsertInstallationAsync(connection, transaction, id,
                String(Property(installation, "account"), "login") ?? "", String(Property(installation, "account"), "type") ?? "User",
                Time(installation, "suspended_at"), Time(installation, "updated_at"), cancellationToken);

        public Task DeleteInstallationAsync(long id, JsonElement installation) =>
            GitHubAccessQueries.DeleteInstallationAsync(connection, transaction, id,
                String(Property(installation, "account"), "login") ?? "", String(Property(installation, "account"), "type") ?? "User",
                cancellationToken);

        public Task RemoveRepositoriesAsync(long installationId, long[] repositories) =>
            GitHubAccessQueries.RemoveRepositoriesAsync(connection, transaction, installationId, repositories, cancellationToken);

        public Task NarrowInstallationAsync(long installationId) =>
            GitHubAccessQueries.NarrowInstallationAsync(connection, transaction, installationId, cancellationToken);

        public async Task RemoveRepositoryForEveryoneAsync(long installationId, long repositoryId)
        {
            await NarrowInstallationAsync(installationId);
            await RecheckInstallationUsersAsync(installationId, [repositoryId]);
            await RemoveRepositoriesAsync(installationId, [repositoryId]);
        }

        /// <summary>Everyone with access through the installation (to one of <paramref name="repositories"/>, when given) is due a re-check now.</summary>
        public Task RecheckInstallationUsersAsync(long installationId, long[]? repositories = null) =>
            ExecuteAsync(
                """
                update github_connections set recheck_after = now()
                 where revoked_at is null
                   and user_id in (select user_id from github_user_repo_access
                                    where installation_id = @installationId
                                      and (@repositories::bigint[] is null or repo_id = any(@repositories)))
                """, new { installationId, repositories });

        /// <summary>
        /// A member left an organisation or one of its teams: nothing through the installation reaches their connections
        /// any more until GitHub says otherwise at the re-check, which is due at once (they may keep some repos).
        /// </summary>
        public async Task RemoveMemberAsync(long githubUserId, long installationId)
        {
            await GitHubAccessQueries.NarrowGitHubUserAsync(connection, transaction, githubUserId, cancellationToken);
            await ExecuteAsync(
                """
                delete from github_user_repo_access a
                 using github_connections c
                 where c.user_id = a.user_id and c.github_user_id = @githubUserId and a.installation_id = @installationId
                """, new { githubUserId, installationId });
        }

        public async Task RemoveCollaboratorAsync(long githubUserId, long repositoryId)
        {
            await GitHubAccessQueries.NarrowGitHubUserAsync(connection, transaction, githubUserId, cancellationToken);
            await ExecuteAsync(
                """
                delete from github_user_repo_access a
                 using github_connections c
                 where c.user_id = a.user_id and c.github_user_id = @githubUserId and a.repo_id = @repositoryId
                """, new { githubUserId, repositoryId });
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
