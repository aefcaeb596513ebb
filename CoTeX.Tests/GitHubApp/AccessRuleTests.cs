using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.GitHubApp;

/// <summary>
/// The access rule (CoTeX.Shared/GitHubApp/GitHubAccessQueries.cs), clause by clause, from the outside: what a
/// follower receives, may track and sees in their status; each role sees only the event types GitHub shows it; and a
/// re-check that waited on GitHub never undoes a removal that committed meanwhile.
/// </summary>
public sealed class AccessRuleTests(TestInfrastructure infra)
{
    private static readonly Dictionary<string, string?> NoCooldown = new() { ["GitHubApp:RecheckCooldownSeconds"] = "0" };

    [Fact]
    public async Task A_read_only_follower_gets_a_push_but_not_a_dependabot_alert_until_promoted_to_write_and_rechecked()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, NoCooldown);
        world.AddGitHubUser(1, "reader", GitHubAppWorld.Api);
        world.AddGitHubUser(2, "writer", GitHubAppWorld.Api);
        world.AddGitHubUser(3, "admin", GitHubAppWorld.Api);
        world.GitHub.SetRole(2, "write", GitHubAppWorld.Api);
        world.GitHub.SetRole(3, "admin", GitHubAppWorld.Api);
        var (reader, writer, admin) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        foreach (var (user, githubId) in new[] { (reader, 1L), (writer, 2L), (admin, 3L) })
        {
            await world.ConnectAsync(user, githubId);
            await world.TrackThroughAppAsync(user, "acme/api");
        }
        (await StatusAsync(world, reader)).Repositories.Single().Role.Should().Be("read");
        (await StatusAsync(world, writer)).Repositories.Single().Role.Should().Be("write");

        // Everyone who can read the repository sees a push.
        (await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api")))["followers"]!.GetValue<int>().Should().Be(3);
        // A Dependabot alert: write and up. A secret scanning alert: admin. A type GitHub's table does not list: admin.
        (await DeliverAboutApiAsync(world, "dependabot_alert", "dependabot_alert/created.payload.json"))["followers"]!.GetValue<int>().Should().Be(2);
        (await DeliverAboutApiAsync(world, "secret_scanning_alert", "secret_scanning_alert/reopened.payload.json"))["followers"]!.GetValue<int>().Should().Be(1);
        (await DeliverAboutApiAsync(world, "some_future_event", "push/with-installation.payload.json"))["followers"]!.GetValue<int>().Should().Be(1);

        (await TypesAsync(world, reader)).Should().BeEquivalentTo(["push"]);
        (await TypesAsync(world, writer)).Should().BeEquivalentTo(["push", "dependabot_alert"]);
        (await TypesAsync(world, admin)).Should().BeEquivalentTo(["push", "dependabot_alert", "secret_scanning_alert", "some_future_event"]);

        // The reader is promoted to write on GitHub: the next re-check says so, and the next alert reaches them.
        world.GitHub.SetRole(1, "write", GitHubAppWorld.Api);
        var recheck = await world.ApiApp.ClientFor(reader).PostAsync("/api/github-app/recheck", null);
        recheck.StatusCode.Should().Be(HttpStatusCode.OK, await recheck.Content.ReadAsStringAsync());
        (await recheck.Content.ReadFromJsonAsync<GitHubAppStatus>())!.Connection!.Repositories.Single().Role.Should().Be("write");
        (await DeliverAboutApiAsync(world, "dependabot_alert", "dependabot_alert/fixed.payload.json"))["followers"]!.GetValue<int>().Should().Be(3);
        (await TypesAsync(world, reader)).Should().BeEquivalentTo(["push", "dependabot_alert"]);

        // Demoted again: the next alert passes them by (what they received while they could see it stays theirs).
        world.GitHub.SetRole(1, "triage", GitHubAppWorld.Api);
        (await world.ApiApp.ClientFor(reader).PostAsync("/api/github-app/recheck", null)).EnsureSuccessStatusCode();
        (await DeliverAboutApiAsync(world, "dependabot_alert", "dependabot_alert/created.payload.json"))["followers"]!.GetValue<int>().Should().Be(2);
    }

    /// <summary>Each clause of the rule, broken for Alice: she stops receiving, cannot track, and her status says so.</summary>
    [Theory]
    [InlineData("access withdrawn by GitHub")]
    [InlineData("connection revoked")]
    [InlineData("disconnected")]
    [InlineData("account closed")]
    [InlineData("installation suspended")]
    [InlineData("installation deleted")]
    public async Task Each_clause_of_the_access_rule_withholds_delivery_tracking_and_status(string clause)
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "alice", GitHubAppWorld.Api, GitHubAppWorld.Web);
        world.AddGitHubUser(2, "bob", GitHubAppWorld.Api, GitHubAppWorld.Web);
        var (alice, bob) = (Guid.NewGuid(), Guid.NewGuid());
        foreach (var (user, githubId) in new[] { (alice, 1L), (bob, 2L) })
        {
            await world.ConnectAsync(user, githubId);
            await world.TrackThroughAppAsync(user, "acme/api");
        }
        (await world.PushAsync()).Should().Be("stored");

        var everyone = clause.StartsWith("installation", StringComparison.Ordinal);
        await BreakAsync(world, clause, alice);

        var push = await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        push["followers"]?.GetValue<int>().Should().Be(everyone ? 0 : 1);
        (await world.CountEventsAsync(alice)).Should().Be(clause == "account closed" ? 0 : 1, "nothing more reaches Alice");
        (await world.CountEventsAsync(bob)).Should().Be(everyone ? 1 : 2);
        if (clause == "account closed")
        {
            return; // her tokens are refused from now on; the rows are gone (AccountClosingTests)
        }

        if (clause != "access withdrawn by GitHub") // (that clause is about acme/api alone: acme/web is still hers)
        {
            var track = await world.TrackAsync(alice, "acme/web", RepoSources.App);
            track.StatusCode.Should().Be(HttpStatusCode.Forbidden, await track.Content.ReadAsStringAsync());
            (await track.Content.ReadAsStringAsync()).Should().Contain(clause == "installation suspended" ? "suspended" : "Not accessible");
        }
        var status = await StatusAsync(world, alice, allowDisconnected: clause == "disconnected");
        if (clause == "installation suspended")
        {
            status.Repositories.Should().OnlyContain(r => r.Suspended).And.HaveCount(2);
        }
        else
        {
            status?.Repositories.Should().NotContain(r => r.FullName == "acme/api");
        }
    }

    /// <summary>
    /// GitHub holds the re-check's repository listing open (its answer already read) while a removal commits; then the
    /// re-check finishes. The removal stands, and what GitHub said before it is never saved.
    /// </summary>
    [Theory]
    [InlineData("repository removed from the installation")]
    [InlineData("authorization revoked")]
    [InlineData("installation suspended")]
    [InlineData("collaborator removed")]
    [InlineData("disconnected")]
    [InlineData("account closed")]
    public async Task A_removal_that_commits_while_a_recheck_waits_on_GitHub_wins(string removal)
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, NoCooldown);
        world.AddGitHubUser(1, "alice", GitHubAppWorld.Api);
        world.AddGitHubUser(2, "bob", GitHubAppWorld.Api);
        var (alice, bob) = (Guid.NewGuid(), Guid.NewGuid());
        await world.ConnectAsync(alice, 1);
        await world.ConnectAsync(bob, 2);
        await world.TrackThroughAppAsync(alice, "acme/api");
        await world.TrackThroughAppAsync(bob, "acme/api");
        var listingsBefore = RepositoryListings(world);

        var release = new TaskCompletionSource();
        var held = world.GitHub.HoldNextRepositoryListing(release.Task);
        var recheck = world.ApiApp.ClientFor(alice).PostAsync("/api/github-app/recheck", null);
        await held.WaitAsync(TimeSpan.FromSeconds(30));
        switch (removal)
        {
            case "repository removed from the installation":
                world.GitHub.RemoveRepository(GitHubAppWorld.Installation, GitHubAppWorld.Api);
                (await world.DeliverAsync("installation_repositories", GitHubAppWorld.Payload("installation_repositories/removed.payload.json",
                    json =>
                    {
                        json["installation"]!["id"] = GitHubAppWorld.Installation;
                        json["repositories_removed"]![0]!["id"] = GitHubAppWorld.Api;
                    })))["status"]!.GetValue<string>().Should().Be("applied");
                break;
            case "authorization revoked":
                world.GitHub.RevokeTokens(1);
                await world.DeliverAsync("github_app_authorization",
                    GitHubAppWorld.Payload("github_app_authorization/revoked.payload.json", json => json["sender"]!["id"] = 1));
                break;
            case "installation suspended":
                await SuspendAsync(world);
                break;
            case "collaborator removed":
                world.GitHub.Deny(1, GitHubAppWorld.Api);
                await world.DeliverAsync("member", GitHubAppWorld.Payload("member/added.with-installation.payload.json", json =>
                {
                    json["action"] = "removed"; // GitHub's member.removed has member.added's shape
                    json["member"]!["id"] = 1;
                    json["repository"]!["id"] = GitHubAppWorld.Api;
                    json["installation"]!["id"] = GitHubAppWorld.Installation;
                }));
                break;
            default:
                await BreakAsync(world, removal, alice);
                break;
        }
        release.SetResult();
        var answer = await recheck;
        ((int)answer.StatusCode).Should().BeOneOf([200, 404], await answer.Content.ReadAsStringAsync());

        // Two pushes after the re-check finished: nobody who lost access receives them.
        var first = await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        var second = await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        (await world.CountEventsAsync(alice)).Should().Be(0);
        var bobReceives = removal is "disconnected" or "account closed" or "authorization revoked" or "collaborator removed";
        (await world.CountEventsAsync(bob)).Should().Be(bobReceives ? 2 : 0);
        if (!bobReceives)
        {
            first["status"]!.GetValue<string>().Should().Be("no followers");
            second["status"]!.GetValue<string>().Should().Be("no followers");
        }
        var connection = await world.ApiApp.ScalarAsync<string>(
            $"select case when revoked_at is null then 'active' else 'revoked' end || ':' || coalesce(token_protected, 'no token') from github_connections where user_id = '{alice}'");
        switch (removal)
        {
            case "authorization revoked":
                connection.Should().Be("revoked:no token");
                break;
            case "disconnected" or "account closed":
                connection.Should().BeNull("the connection and its tokens are gone, not written back");
                break;
            case "installation suspended":
                (await world.ApiApp.ScalarAsync<bool>($"select suspended_at is not null from github_app_installations where id = {GitHubAppWorld.Installation}"))
                    .Should().BeTrue();
                break;
            case "collaborator removed":
                (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_user_repo_access where user_id = '{alice}'")).Should().Be(0);
                break;
            default:
                (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_user_repo_access where repo_id = {GitHubAppWorld.Api}")).Should().Be(0);
                break;
        }
        if (removal is "repository removed from the installation" or "installation suspended" or "collaborator removed")
        {
            // The answer GitHub gave before the removal was dropped, and GitHub asked again.
            RepositoryListings(world).Should().BeGreaterThan(listingsBefore + 1);
        }
    }

    [Fact]
    public async Task A_team_removed_from_a_repository_takes_it_from_everyone_until_their_recheck_says_otherwise()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, NoCooldown);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        var bob = await world.NewFollowerAsync(2, "bob", (GitHubAppWorld.Api, "acme/api"));

        // The team Bob is in loses acme/api; Alice still has it another way (GitHub will say so at her re-check).
        world.GitHub.Deny(2, GitHubAppWorld.Api);
        var removed = await world.DeliverAsync("team", GitHubAppWorld.Payload("team/removed_from_repository.payload.json", json =>
        {
            json["repository"]!["id"] = GitHubAppWorld.Api;
            json["installation"] = new JsonObject { ["id"] = GitHubAppWorld.Installation };
        }));
        // (Applied, then delivered as a repository event: a team's changes are for the repository's admins.)
        removed["status"]!.GetValue<string>().Should().Be("no followers");
        (await world.PushAsync()).Should().Be("no followers");
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_connections where recheck_after <= now()")).Should().Be(2);

        (await world.ApiApp.ClientFor(alice).PostAsync("/api/github-app/recheck", null)).EnsureSuccessStatusCode();
        (await world.ApiApp.ClientFor(bob).PostAsync("/api/github-app/recheck", null)).EnsureSuccessStatusCode();
        (await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api")))["followers"]!.GetValue<int>().Should().Be(1);
        (await world.CountEventsAsync(alice)).Should().Be(1);
        (await world.CountEventsAsync(bob)).Should().Be(0);
    }

    /// <summary>Breaks one clause of the rule for <paramref name="alice"/> (GitHub user 1), as GitHub or she would.</summary>
    private static async Task BreakAsync(GitHubAppWorld world, string clause, Guid alice)
    {
        switch (clause)
        {
            case "access withdrawn by GitHub":
                // Her role on acme/api changed (GitHub's member.edited): no access to it until GitHub says what she has.
                await world.DeliverAsync("member", GitHubAppWorld.Payload("member/edited.payload.json", json =>
                {
                    json["member"]!["id"] = 1;
                    json["repository"]!["id"] = GitHubAppWorld.Api;
                    json["installation"] = new JsonObject { ["id"] = GitHubAppWorld.Installation };
                }));
                (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_user_repo_access where user_id = '{alice}' and repo_id = {GitHubAppWorld.Api}"))
                    .Should().Be(0);
                break;
            case "connection revoked":
                await world.DeliverAsync("github_app_authorization",
                    GitHubAppWorld.Payload("github_app_authorization/revoked.payload.json", json => json["sender"]!["id"] = 1));
                break;
            case "disconnected":
                (await world.ApiApp.ClientFor(alice).DeleteAsync("/api/github-app")).StatusCode.Should().Be(HttpStatusCode.NoContent);
                break;
            case "account closed":
                (await world.ApiApp.ClientFor(alice).DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);
                break;
            case "installation suspended":
                await SuspendAsync(world);
                break;
            case "installation deleted":
                world.GitHub.Uninstall(GitHubAppWorld.Installation);
                await world.DeliverAsync("installation", GitHubAppWorld.Payload("installation/deleted.payload.json",
                    json => json["installation"]!["id"] = GitHubAppWorld.Installation));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(clause), clause, null);
        }
    }

    /// <summary>An owner suspends installation 10 on GitHub, and GitHub tells the app.</summary>
    private static async Task SuspendAsync(GitHubAppWorld world)
    {
        var installation = world.GitHub.Suspend(GitHubAppWorld.Installation, suspended: true);
        (await world.DeliverAsync("installation", GitHubAppWorld.Payload("installation/suspend.payload.json", json =>
        {
            json["installation"]!["id"] = GitHubAppWorld.Installation;
            json["installation"]!["suspended_at"] = installation.SuspendedAt!.Value.ToString("O");
            json["installation"]!["updated_at"] = installation.UpdatedAt.ToString("O");
        })))["status"]!.GetValue<string>().Should().Be("applied");
    }

    /// <summary>How often GitHub was asked which installations a user can reach (once per reading of their access).</summary>
    private static int RepositoryListings(GitHubAppWorld world) => world.GitHub.Calls.Count(c => c == "GET /user/installations");

    /// <summary>A real payload of <paramref name="file"/>, about acme/api of installation 10.</summary>
    private static Task<JsonObject> DeliverAboutApiAsync(GitHubAppWorld world, string eventType, string file) =>
        world.DeliverAsync(eventType, GitHubAppWorld.Payload(file, json =>
        {
            json["repository"]!["id"] = GitHubAppWorld.Api;
            json["repository"]!["full_name"] = "acme/api";
            json["installation"] = new JsonObject { ["id"] = GitHubAppWorld.Installation };
        }));

    private static async Task<GitHubConnection> StatusAsync(GitHubAppWorld world, Guid userId, bool allowDisconnected = false)
    {
        var status = await world.ApiApp.ClientFor(userId).GetFromJsonAsync<GitHubAppStatus>("/api/github-app");
        if (!allowDisconnected)
        {
            status!.Connection.Should().NotBeNull();
        }
        return status!.Connection!;
    }

    /// <summary>The event types stored for the user, through the events API.</summary>
    private static async Task<string[]> TypesAsync(GitHubAppWorld world, Guid userId) =>
        (await world.ApiApp.ClientFor(userId).GetFromJsonAsync<GitHubEventPage>("/api/github-events"))!.Items.Select(e => e.Type).ToArray();
}
