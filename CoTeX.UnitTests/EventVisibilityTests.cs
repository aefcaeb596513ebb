using System.Text.RegularExpressions;
using CoTeX.Shared.GitHubApp;

namespace CoTeX.UnitTests;

/// <summary>The least role per event type (EventVisibility) and the role read from GitHub's <c>permissions</c>.</summary>
public sealed class EventVisibilityTests
{
    [Theory]
    [InlineData("push", RepoRole.Read)]
    [InlineData("pull_request", RepoRole.Read)]
    [InlineData("dependabot_alert", RepoRole.Write)]
    [InlineData("code_scanning_alert", RepoRole.Write)]
    [InlineData("secret_scanning_alert", RepoRole.Admin)]
    [InlineData("member", RepoRole.Admin)]
    [InlineData("package", RepoRole.Admin)]
    [InlineData("an_event_type_github_adds_next_year", RepoRole.Admin)]
    [InlineData("PUSH", RepoRole.Admin)] // GitHub's names are lower case: another spelling is unknown, so private
    public void Each_event_type_needs_the_least_role_GitHub_shows_it_to_and_an_unknown_one_needs_admin(string eventType, RepoRole role) =>
        EventVisibility.RequiredRole(eventType).Should().Be(role);

    [Fact]
    public void Every_row_names_the_GitHub_page_it_comes_from() =>
        EventVisibility.Table.Values.Should().OnlyContain(row => row.Source.StartsWith("https://docs.github.com/", StringComparison.Ordinal));

    [Theory]
    [InlineData(true, true, true, true, true, RepoRole.Admin)]
    [InlineData(false, true, true, true, true, RepoRole.Maintain)]
    [InlineData(false, false, true, true, true, RepoRole.Write)]
    [InlineData(false, false, false, true, true, RepoRole.Triage)]
    [InlineData(false, false, false, false, true, RepoRole.Read)]
    public void The_role_is_the_highest_flag_GitHub_sets(bool admin, bool maintain, bool push, bool triage, bool pull, RepoRole role) =>
        new GitHubRepositoryPermissions(admin, maintain, push, triage, pull).Role.Should().Be(role);

    [Fact]
    public void A_repository_listed_with_every_flag_off_gives_no_role_and_one_listed_without_permissions_gives_read()
    {
        new GitHubRepository(1, "o/r", new GitHubRepositoryPermissions(false, false, false, false, false)).Role.Should().BeNull();
        new GitHubRepository(1, "o/r").Role.Should().Be(RepoRole.Read);
    }

    [Fact]
    public void The_READMEs_table_of_roles_per_event_type_is_the_codes()
    {
        var readme = File.ReadAllLines(Path.Combine(RepositoryRoot(), "README.md"));
        var documented = new Dictionary<string, string>();
        foreach (var line in readme.SkipWhile(l => !l.StartsWith("| Event types | Least role |", StringComparison.Ordinal)).Skip(2)
                     .TakeWhile(l => l.StartsWith('|')))
        {
            var cells = line.Split('|', StringSplitOptions.TrimEntries);
            foreach (var type in Regex.Matches(cells[1], "`([a-z_*]+)`").Select(m => m.Groups[1].Value))
            {
                documented[type] = cells[2];
            }
        }
        documented.Should().NotBeEmpty();
        foreach (var (type, (role, _)) in EventVisibility.Table)
        {
            var row = documented.GetValueOrDefault(type)
                      ?? documented.FirstOrDefault(d => d.Key.EndsWith('*') && type.StartsWith(d.Key.TrimEnd('*'), StringComparison.Ordinal)).Value;
            row.Should().Be(role.ToString().ToLowerInvariant(), $"the README's row for {type}");
        }
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "CoTeX.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("CoTeX.sln not found above the test's folder.");
    }
}
