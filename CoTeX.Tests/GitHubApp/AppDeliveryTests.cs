using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.GitHubApp;

/// <summary>The app's webhook: one delivery to every follower, and access that follows GitHub's events.</summary>
public sealed class AppDeliveryTests(TestInfrastructure infra)
{
    [Fact]
    public async Task One_delivery_reaches_two_users_clients_on_different_replicas_once_each_in_their_own_positions()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "alice", GitHubAppWorld.Api);
        world.AddGitHubUser(2, "bob", GitHubAppWorld.Api);
        var (alice, bob, carol) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await world.ConnectAsync(alice, 1);
        await world.ConnectAsync(bob, 2);
        var aliceRepo = await world.TrackThroughAppAsync(alice, "acme/api");
        var bobRepo = await world.TrackThroughAppAsync(bob, "acme/api");
        // Bob already has an event of his own, so his positions differ from Alice's.
        var bobWebhookRepo = await CoTeX.Tests.Infrastructure.ApiRequests.TrackRepoAsync(world.ApiApp.ClientFor(bob), "bob/own");
        (await world.ApiApp.DeliverAsync(bobWebhookRepo.Id, bobWebhookRepo.WebhookSecret, "push",
            GitHubPayloads.ForRepo("push/payload.json", "bob/own"))).EnsureSuccessStatusCode();
        var aliceFeed = await world.Cluster.WatchAsync(alice, 0, world.Cluster.ReplicaUrls[0]);
        var bobFeed = await world.Cluster.WatchAsync(bob, 1, world.Cluster.ReplicaUrls[1]);
        var carolFeed = await world.Cluster.WatchAsync(carol, null, world.Cluster.ReplicaUrls[0]);

        var answer = await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));

        answer["status"]!.GetValue<string>().Should().Be("stored");
        answer["followers"]!.GetValue<int>().Should().Be(2);
        answer["stored"]!.GetValue<int>().Should().Be(2);
        await aliceFeed.WaitForCountAsync(1);
        await bobFeed.WaitForCountAsync(1);
        await Task.Delay(500); // room for a duplicate to show up
        aliceFeed.Received.Should().ContainSingle().Which.Should().BeEquivalentTo(new { RepoId = aliceRepo.Id, Position = 1L, Type = "push", RepoFullName = "acme/api" });
        bobFeed.Received.Should().ContainSingle().Which.Should().BeEquivalentTo(new { RepoId = bobRepo.Id, Position = 2L, Type = "push" });
        carolFeed.Received.Should().BeEmpty();

        // GitHub's redelivery of the same delivery (or a replay of it) stores nothing more.
        var again = await world.DeliverAsync("push", world.GitHub.Deliveries[^1].Body, world.GitHub.Deliveries[^1].Guid);
        again["status"]!.GetValue<string>().Should().Be("duplicate");
        (await world.CountEventsAsync(alice)).Should().Be(1);
        (await world.CountEventsAsync(bob)).Should().Be(2);

        // A catch-up finds it too, from the event history.
        var late = await world.Cluster.WatchAsync(alice, 0, world.Cluster.ReplicaUrls[1]);
        await late.WaitForCountAsync(1);
        late.Received.Single().Id.Should().Be(aliceFeed.Received.Single().Id);
    }

    [Fact]
    public async Task Forged_and_malformed_deliveries_are_refused_and_store_nothing()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        var push = GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api");

        (await world.GitHub.DeliverAsync("push", push, secret: "not-the-app-secret")).StatusCode.Should().Be(401);
        var unsigned = new HttpRequestMessage(HttpMethod.Post, "/api/webhooks/github-app") { Content = new ByteArrayContent(push) };
        unsigned.Headers.Add("X-GitHub-Event", "push");
        unsigned.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        var response = await world.ApiApp.AnonymousClient().SendAsync(unsigned);
        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await response.Content.ReadAsStringAsync()).Should().Contain("X-Hub-Signature-256");
        // Signed, but the body altered on the way.
        var tampered = new HttpRequestMessage(HttpMethod.Post, "/api/webhooks/github-app") { Content = new ByteArrayContent([.. push, (byte)' ']) };
        tampered.Headers.Add("X-GitHub-Event", "push");
        tampered.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        tampered.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(FakeGitHub.WebhookSecret, push));
        (await world.ApiApp.AnonymousClient().SendAsync(tampered)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        // Signed by the app's secret but not JSON: a 400 naming it.
        var notJson = await world.GitHub.DeliverAsync("push", "not json"u8.ToArray());
        notJson.StatusCode.Should().Be(400);
        notJson.Response.Should().Contain("not valid JSON");

        (await world.CountEventsAsync(alice)).Should().Be(0);
    }

    [Fact]
    public async Task Repositories_removed_from_the_installation_and_a_revoked_authorization_stop_delivery_at_once()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "alice", GitHubAppWorld.Api, GitHubAppWorld.Web);
        world.AddGitHubUser(2, "bob", GitHubAppWorld.Api, GitHubAppWorld.Web);
        var (alice, bob) = (Guid.NewGuid(), Guid.NewGuid());
        await world.ConnectAsync(alice, 1);
        await world.ConnectAsync(bob, 2);
        foreach (var user in new[] { alice, bob })
        {
            await world.TrackThroughAppAsync(user, "acme/api");
            await world.TrackThroughAppAsync(user, "acme/web");
        }

        // acme/web leaves the installation (the real payload, about this installation and repository).
        var removed = await world.DeliverAsync("installation_repositories", GitHubAppWorld.Payload(
            "installation_repositories/removed.payload.json", json =>
            {
                json["installation"]!["id"] = GitHubAppWorld.Installation;
                json["repositories_removed"]![0]!["id"] = GitHubAppWorld.Web;
            }));
        removed["status"]!.GetValue<string>().Should().Be("applied");
        (await world.PushAsync(GitHubAppWorld.Web, "acme/web")).Should().Be("no followers");

        // Alice revokes CoTeX's authorization on GitHub.
        var revoked = await world.DeliverAsync("github_app_authorization", GitHubAppWorld.Payload(
            "github_app_authorization/revoked.payload.json", json => json["sender"]!["id"] = 1));
        revoked["status"]!.GetValue<string>().Should().Be("applied");
        var push = await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        push["followers"]!.GetValue<int>().Should().Be(1);
        (await world.CountEventsAsync(alice)).Should().Be(0);
        (await world.CountEventsAsync(bob)).Should().Be(1);
        (await world.ApiApp.ScalarAsync<bool>($"select revoked_at is not null and token_protected is null from github_connections where user_id = '{alice}'"))
            .Should().BeTrue();

        // A replay of the removal changes nothing and says so.
        var replay = await world.DeliverAsync("installation_repositories", world.GitHub.Deliveries.First(d => d.Event == "installation_repositories").Body,
            world.GitHub.Deliveries.First(d => d.Event == "installation_repositories").Guid);
        replay["status"]!.GetValue<string>().Should().Be("duplicate");
    }

    [Fact]
    public async Task A_suspended_or_uninstalled_installation_delivers_nothing_and_an_older_event_cannot_undo_a_newer_one()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        byte[] Installation(string file, string updatedAt) => GitHubAppWorld.Payload(file, json =>
        {
            json["installation"]!["id"] = GitHubAppWorld.Installation;
            json["installation"]!["updated_at"] = updatedAt;
        });

        var suspend = Installation("installation/suspend.payload.json", "2030-01-01T10:00:00Z");
        (await world.DeliverAsync("installation", suspend))["status"]!.GetValue<string>().Should().Be("applied");
        (await world.PushAsync()).Should().Be("no followers");

        await world.DeliverAsync("installation", Installation("installation/unsuspend.payload.json", "2030-01-01T11:00:00Z"));
        (await world.PushAsync()).Should().Be("stored");

        // GitHub redelivers the old suspend after the unsuspend: it is older, so it changes nothing.
        await world.DeliverAsync("installation", Installation("installation/suspend.payload.json", "2030-01-01T10:00:00Z"));
        (await world.PushAsync()).Should().Be("stored");

        await world.DeliverAsync("installation", Installation("installation/deleted.payload.json", "2030-01-01T12:00:00Z"));
        (await world.PushAsync()).Should().Be("no followers");
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_user_repo_access")).Should().Be(0);
        // An older "created" cannot bring an uninstalled installation back.
        await world.DeliverAsync("installation", Installation("installation/created.payload.json", "2030-01-01T09:00:00Z"));
        (await world.PushAsync()).Should().Be("no followers");
        (await world.CountEventsAsync(alice)).Should().Be(2);
    }

    [Fact]
    public async Task A_member_removed_from_the_organisation_stops_receiving_at_once_even_after_the_organisation_was_renamed()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));

        // The shape of organization.member_removed (GitHub's member_added payload, with that action).
        var removed = await world.DeliverAsync("organization", GitHubAppWorld.Payload(
            "organization/member_added.with-installation.payload.json", json =>
            {
                json["action"] = "member_removed";
                json["membership"]!["user"]!["id"] = 1;
                json["organization"]!["login"] = "acme-renamed"; // logins change: the removal goes by GitHub's ids
                json["installation"]!["id"] = GitHubAppWorld.Installation;
            }));

        removed["status"]!.GetValue<string>().Should().Be("applied");
        (await world.PushAsync()).Should().Be("no followers");
        // The Worker re-checks at once: GitHub decides what, if anything, is left.
        (await world.ApiApp.ScalarAsync<bool>($"select recheck_after <= now() from github_connections where user_id = '{alice}'")).Should().BeTrue();
    }

    [Fact]
    public async Task An_attacker_cannot_receive_events_of_a_repo_they_cannot_access_on_GitHub()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "victim", GitHubAppWorld.Secret);
        world.AddGitHubUser(666, "mallory"); // a GitHub account with access to nothing of acme's
        var (victim, attacker) = (Guid.NewGuid(), Guid.NewGuid());
        await world.ConnectAsync(victim, 1);
        await world.TrackThroughAppAsync(victim, "acme/secret");
        await world.ConnectAsync(attacker, 666);

        // 1. Insisting on the app for a repo GitHub never said they can access: 403.
        (await world.TrackAsync(attacker, "acme/secret", "app")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        // 2. Tracking it anyway gives a webhook repo: only what is sent to its own URL with its own secret reaches it.
        var webhookRepo = (await (await world.TrackAsync(attacker, "acme/secret")).Content.ReadFromJsonAsync<CoTeX.Contracts.CreatedRepo>())!;
        webhookRepo.Source.Should().Be("webhook");
        // 3. Login CSRF: the attacker starts Connect GitHub for their account and gets the victim to open the link.
        //    GitHub sends the victim (who authorized the app before) straight back; the page names the attacker's
        //    account and waits for a confirmation only that page holds.
        var lure = await world.StartConnectAsync(attacker, githubUserId: 1);
        var victimsPage = await world.BrowseAsync(lure);
        victimsPage.Html.Should().Contain($"{attacker:N}@example.test").And.Contain("@victim");
        var state = GitHubAppWorld.FormField(victimsPage.Html, "state");
        (await world.PostFormAsync(state, confirm: null)).Status.Should().Be(HttpStatusCode.BadRequest);
        (await world.PostFormAsync(state, new string('0', 64))).Status.Should().Be(HttpStatusCode.BadRequest);
        // 4. Payloads the attacker signs are refused; the app's webhook cannot be pointed at their repo.
        (await world.GitHub.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Secret, "acme/secret"), secret: "guess"))
            .StatusCode.Should().Be(401);
        var hook = await world.ApiApp.DeliverAsync(webhookRepo.Id, "guess", "push", GitHubAppWorld.Push(GitHubAppWorld.Secret, "acme/secret"));
        hook.StatusCode.Should().Be(HttpStatusCode.Unauthorized);

        // GitHub's real delivery reaches the victim only.
        var answer = await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Secret, "acme/secret"));
        answer["followers"]!.GetValue<int>().Should().Be(1);
        (await world.CountEventsAsync(victim)).Should().Be(1);
        (await world.CountEventsAsync(attacker)).Should().Be(0);
        var attackerStatus = await world.ApiApp.ClientFor(attacker).GetFromJsonAsync<CoTeX.Contracts.GitHubAppStatus>("/api/github-app");
        attackerStatus!.Connection!.Login.Should().Be("mallory");
        attackerStatus.Connection.Repositories.Should().BeEmpty();
    }
}
