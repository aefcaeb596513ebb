using Dapper;
using Npgsql;

namespace CoTeX.Shared.GitHubApp;

/// <summary>
/// <b>The access rule of GitHub App mode</b>, written once, and the changes that narrow access. Tracking a repository
/// through the app (<c>POST /api/repos</c>), the fan-out of a delivery, the caller's status
/// (<c>GET /api/github-app</c>) and the Worker's checks all call this type.
/// <para>A CoTeX user U may see an event of type T about repository R of installation I only when all hold:</para>
/// <list type="number">
/// <item><b>GitHub said so with U's own token</b>: an access row (U, I, R), written only from GitHub's answer to
/// <c>GET /user/installations/{I}/repositories</c> with U's token. Nothing U sends creates one.</item>
/// <item><b>U's GitHub connection stands</b>: not revoked (GitHub revoked the authorization, or stopped accepting its
/// tokens) and not disconnected (the row is gone).</item>
/// <item><b>I is installed</b>: not deleted (uninstalled).</item>
/// <item><b>I is not suspended.</b></item>
/// <item><b>U's CoTeX account is open</b>: not closed.</item>
/// <item><b>U's role on R sees T</b>: the role GitHub listed for U on R is at least
/// <see cref="EventVisibility.RequiredRole"/> of T (admin for a type not in the table).</item>
/// </list>
/// Fan-out also needs U to track R through the app. Access rows go as soon as GitHub says access went (its events,
/// applied by <c>GitHubAppEvents</c>) and at every re-check; every narrowing change first stamps what it narrows
/// (<see cref="NarrowInstallationAsync"/>, <see cref="NarrowGitHubUserAsync"/>), so a re-check that asked GitHub
/// before it takes only narrowings from its older answer there.
/// </summary>
public static class GitHubAccessQueries
{
    // Clauses 1 to 3 and 5, joined from the access row; clause 4 (suspension) and 6 (the role) are added where they
    // apply, so the status can still show a suspended installation's repositories as suspended.
    private const string Visible =
        """
        github_user_repo_access a
          join github_connections c on c.user_id = a.user_id and c.revoked_at is null
          join github_app_installations i on i.id = a.installation_id and i.deleted_at is null
          join users u on u.id = a.user_id and u.deleted_at is null
        """;

    private const string NotSuspended = "i.suspended_at is null";

    /// <summary>A user who receives an app delivery, with their tracked repo for it.</summary>
    public sealed record Follower(Guid RepoId, Guid UserId, string FullName);

    /// <summary>A repository the user may track through the app.</summary>
    public sealed record TrackableRepository(long RepoId, string FullName, bool Suspended);

    /// <summary>A repository in the user's status.</summary>
    public sealed record StatusRepository(string FullName, string Account, bool Suspended, bool Tracked, RepoRole Role);

    /// <summary>Everyone a delivery of <paramref name="eventType"/> about the repository goes to: the whole rule, and tracking.</summary>
    public static async Task<Follower[]> FollowersAsync(NpgsqlConnection connection, long installationId, long repositoryId,
        string eventType, CancellationToken cancellationToken) =>
        (await connection.QueryAsync<Follower>(new CommandDefinition(
            $"""
            select r.id as RepoId, r.user_id as UserId, r.full_name as FullName
              from {Visible}
              join tracked_repos r on r.user_id = a.user_id and r.source = 'app' and r.github_repo_id = a.repo_id
             where a.installation_id = @installationId and a.repo_id = @repositoryId
               and {NotSuspended} and a.role >= @required
            """,
            new { installationId, repositoryId, required = (short)EventVisibility.RequiredRole(eventType) },
            cancellationToken: cancellationToken))).ToArray();

    /// <summary>
    /// The repository <paramref name="fullName"/> if the user may track it through the app (clauses 1 to 3 and 5; a
    /// suspended installation's repository is returned marked, for the caller to refuse by name), else null.
    /// </summary>
    public static Task<TrackableRepository?> TrackableAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction,
        Guid userId, string fullName, CancellationToken cancellationToken) =>
        connection.QueryFirstOrDefaultAsync<TrackableRepository?>(new CommandDefinition(
            $"""
            select a.repo_id as RepoId, a.full_name as FullName, not ({NotSuspended}) as Suspended
              from {Visible}
             where a.user_id = @userId and lower(a.full_name) = lower(@fullName)
             order by ({NotSuspended}) desc
             limit 1
            """, new { userId, fullName }, transaction, cancellationToken: cancellationToken));

    /// <summary>The repositories the user's status lists (clauses 1 to 3 and 5), with suspension and their role shown.</summary>
    public static async Task<StatusRepository[]> StatusAsync(NpgsqlConnection connection, Guid userId,
        CancellationToken cancellationToken) =>
        (await connection.QueryAsync<StatusRepository>(new CommandDefinition(
            $"""
            select a.full_name as FullName, i.account_login as Account, not ({NotSuspended}) as Suspended,
                   exists (select 1 from tracked_repos r
                            where r.user_id = a.user_id and r.source = 'app' and r.github_repo_id = a.repo_id) as Tracked,
                   a.role as Role
              from {Visible}
             where a.user_id = @userId
             order by lower(a.full_name)
            """, new { userId }, cancellationToken: cancellationToken))).ToArray();

    // ---- Changes that narrow access: each stamps what it narrows first, in the caller's transaction. ----

    /// <summary>How many narrowings have been stamped so far, as a scalar subquery (a re-check reads it before it asks GitHub).</summary>
    public const string NarrowingsSoFar = "(select case when is_called then last_value else 0 end from github_access_narrowings)";

    public static Task<long> NarrowingsSoFarAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition($"select {NarrowingsSoFar}", cancellationToken: cancellationToken));

    /// <summary>
    /// Announces that access through the installation narrows, before it does: a re-check that asked GitHub before
    /// this will take only narrowings from its answer for this installation. Locks the installation's row until the
    /// caller's transaction ends (a re-check saving meanwhile waits for it, then sees the stamp).
    /// </summary>
    public static Task NarrowInstallationAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long installationId,
        CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "update github_app_installations set narrowed_at = nextval('github_access_narrowings') where id = @installationId",
            new { installationId }, transaction, cancellationToken: cancellationToken));

    /// <summary>
    /// Announces that a GitHub user's access narrows (their connections' rows lock, and their re-check is due at once),
    /// before it does; as <see cref="NarrowInstallationAsync"/> for every installation.
    /// </summary>
    public static Task NarrowGitHubUserAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long githubUserId,
        CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            update github_connections set narrowed_at = nextval('github_access_narrowings'), recheck_after = now()
             where github_user_id = @githubUserId and revoked_at is null
            """, new { githubUserId }, transaction, cancellationToken: cancellationToken));

    /// <summary>
    /// The installation as GitHub showed it, unless CoTeX applied a newer state of it already (GitHub's answers and
    /// redeliveries arrive out of order: an old "not suspended" must not undo a newer suspension). A deleted
    /// installation stays a tombstone: GitHub never reuses an installation id.
    /// </summary>
    public static Task UpsertInstallationAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long id, string login,
        string type, DateTimeOffset? suspendedAt, DateTimeOffset? updatedAt, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            insert into github_app_installations (id, account_login, account_type, suspended_at, github_updated_at)
            values (@id, @login, @type, @suspendedAt, @updatedAt)
            on conflict (id) do update
               set account_login = excluded.account_login, account_type = excluded.account_type,
                   suspended_at = excluded.suspended_at, updated_at = now(),
                   github_updated_at = coalesce(excluded.github_updated_at, github_app_installations.github_updated_at)
             where github_app_installations.deleted_at is null
               and (github_app_installations.github_updated_at is null or excluded.github_updated_at is null
                    or github_app_installations.github_updated_at <= excluded.github_updated_at)
            """,
            new { id, login, type, suspendedAt = suspendedAt?.ToUniversalTime(), updatedAt = updatedAt?.ToUniversalTime() },
            transaction, cancellationToken: cancellationToken));

    /// <summary>The app was uninstalled: a tombstone, and nobody receives anything through it from now on.</summary>
    public static Task DeleteInstallationAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long id, string login,
        string type, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            insert into github_app_installations (id, account_login, account_type, deleted_at, narrowed_at)
            values (@id, @login, @type, now(), nextval('github_access_narrowings'))
            on conflict (id) do update set deleted_at = now(), updated_at = now(), narrowed_at = excluded.narrowed_at;
            delete from github_user_repo_access where installation_id = @id;
            """, new { id, login, type }, transaction, cancellationToken: cancellationToken));

    /// <summary>Repositories left the installation: nobody has access to them through it any more.</summary>
    public static Task RemoveRepositoriesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long installationId,
        long[] repositories, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "delete from github_user_repo_access where installation_id = @installationId and repo_id = any(@repositories)",
            new { installationId, repositories }, transaction, cancellationToken: cancellationToken));

    /// <summary>Whether anyone has access through the installation to a repository outside <paramref name="covered"/>.</summary>
    public static Task<bool> CoversLessAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long installationId,
        long[] covered, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            """
            select exists (select 1 from github_user_repo_access
                            where installation_id = @installationId and not (repo_id = any(@covered)))
            """, new { installationId, covered }, transaction, cancellationToken: cancellationToken));

    /// <summary>The installation covers only <paramref name="covered"/> now: access to any other repository through it goes.</summary>
    public static Task KeepOnlyRepositoriesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long installationId,
        long[] covered, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "delete from github_user_repo_access where installation_id = @installationId and not (repo_id = any(@covered))",
            new { installationId, covered }, transaction, cancellationToken: cancellationToken));
}
