using System.Collections.Frozen;

namespace CoTeX.Shared.GitHubApp;

/// <summary>A person's role on a repository, least to most (stored as this number in <c>github_user_repo_access.role</c>).</summary>
public enum RepoRole : short
{
    Read = 1,
    Triage = 2,
    Write = 3,
    Maintain = 4,
    Admin = 5,
}

/// <summary>
/// The least role on a repository GitHub requires to see the content of each webhook event type, so that a follower
/// receives through the app only what GitHub itself would show them. An event type not in the table needs admin: a new
/// kind of event is private until someone reads GitHub's documentation for it and adds a row (with the page, as below).
/// The README's "GitHub App mode" section has the same table.
/// </summary>
public static class EventVisibility
{
    /// <summary>GitHub's page on repository roles and the access requirements for security features.</summary>
    public const string RolesPage =
        "https://docs.github.com/en/organizations/managing-user-access-to-your-organizations-repositories/managing-repository-roles/repository-roles-for-an-organization";

    private const string SecurityFeaturesPage = RolesPage + "#access-requirements-for-security-features";

    /// <summary>Event type → (least role, the GitHub documentation page that says so).</summary>
    public static readonly FrozenDictionary<string, (RepoRole Role, string Source)> Table = new Dictionary<string, (RepoRole, string)>
    {
        // What anyone who can read the repository sees on github.com: its code, issues, pull requests, discussions,
        // releases, Actions runs, checks, deployments and wiki ("Read" in the roles table).
        ["push"] = (RepoRole.Read, RolesPage),
        ["create"] = (RepoRole.Read, RolesPage),
        ["delete"] = (RepoRole.Read, RolesPage),
        ["commit_comment"] = (RepoRole.Read, RolesPage),
        ["pull_request"] = (RepoRole.Read, RolesPage),
        ["pull_request_review"] = (RepoRole.Read, RolesPage),
        ["pull_request_review_comment"] = (RepoRole.Read, RolesPage),
        ["pull_request_review_thread"] = (RepoRole.Read, RolesPage),
        ["issues"] = (RepoRole.Read, RolesPage),
        ["issue_comment"] = (RepoRole.Read, RolesPage),
        ["sub_issues"] = (RepoRole.Read, RolesPage),
        ["label"] = (RepoRole.Read, RolesPage),
        ["milestone"] = (RepoRole.Read, RolesPage),
        ["discussion"] = (RepoRole.Read, RolesPage),
        ["discussion_comment"] = (RepoRole.Read, RolesPage),
        ["release"] = (RepoRole.Read, RolesPage),
        ["fork"] = (RepoRole.Read, RolesPage),
        ["star"] = (RepoRole.Read, RolesPage),
        ["watch"] = (RepoRole.Read, RolesPage),
        ["gollum"] = (RepoRole.Read, RolesPage),
        ["public"] = (RepoRole.Read, RolesPage),
        ["repository"] = (RepoRole.Read, RolesPage),
        ["status"] = (RepoRole.Read, RolesPage),
        ["check_run"] = (RepoRole.Read, RolesPage),
        ["check_suite"] = (RepoRole.Read, RolesPage),
        ["workflow_run"] = (RepoRole.Read, RolesPage),
        ["workflow_job"] = (RepoRole.Read, RolesPage),
        ["workflow_dispatch"] = (RepoRole.Read, RolesPage),
        ["deployment"] = (RepoRole.Read, RolesPage),
        ["deployment_status"] = (RepoRole.Read, RolesPage),
        ["page_build"] = (RepoRole.Read, RolesPage),
        ["merge_group"] = (RepoRole.Read, RolesPage),

        // Security features: Dependabot alerts and code scanning alerts are shown to write, maintain and admin (read
        // and triage have the same rights there, as have write and maintain).
        ["dependabot_alert"] = (RepoRole.Write, SecurityFeaturesPage),
        ["repository_vulnerability_alert"] = (RepoRole.Write, SecurityFeaturesPage),
        ["code_scanning_alert"] = (RepoRole.Write, SecurityFeaturesPage),

        // The collaborators list needs write and, for an organisation's repository, membership of the organisation,
        // which CoTeX does not know; packages have access settings of their own (a repository's readers may not see
        // them). Admin, which sees both.
        ["member"] = (RepoRole.Admin, "https://docs.github.com/en/rest/collaborators/collaborators#list-repository-collaborators"),
        ["package"] = (RepoRole.Admin,
            "https://docs.github.com/en/packages/learn-github-packages/configuring-a-packages-access-control-and-visibility"),
        ["registry_package"] = (RepoRole.Admin,
            "https://docs.github.com/en/packages/learn-github-packages/configuring-a-packages-access-control-and-visibility"),

        // Secret scanning alerts: admins (and security managers, a role CoTeX cannot see; writers only for their own
        // commits, by email). Security advisories, deploy keys, webhooks, branch protection and security settings:
        // admin. Listed to name their pages; they would need admin anyway as types not in the table.
        ["secret_scanning_alert"] = (RepoRole.Admin, SecurityFeaturesPage),
        ["secret_scanning_alert_location"] = (RepoRole.Admin, SecurityFeaturesPage),
        ["secret_scanning_scan"] = (RepoRole.Admin, SecurityFeaturesPage),
        ["repository_advisory"] = (RepoRole.Admin, SecurityFeaturesPage),
        ["security_and_analysis"] = (RepoRole.Admin, SecurityFeaturesPage),
        ["deploy_key"] = (RepoRole.Admin, RolesPage),
        ["meta"] = (RepoRole.Admin, RolesPage),
        ["branch_protection_rule"] = (RepoRole.Admin, RolesPage),
        ["branch_protection_configuration"] = (RepoRole.Admin, RolesPage),
        ["repository_ruleset"] = (RepoRole.Admin, RolesPage),
    }.ToFrozenDictionary();

    /// <summary>The least role that sees <paramref name="eventType"/>: the table's, or admin for a type not in it.</summary>
    public static RepoRole RequiredRole(string eventType) =>
        Table.TryGetValue(eventType, out var row) ? row.Role : RepoRole.Admin;
}
