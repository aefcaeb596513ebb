extern alias api;

using System.Net;
using System.Net.Http.Json;
using CoTeX.Contracts;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.GitHubApp;

/// <summary>Connect GitHub and tracking through the app, against the fake GitHub.</summary>
public sealed class ConnectTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Connecting_records_what_GitHub_says_the_user_can_access_and_such_repos_are_tracked_without_setup()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "octo", GitHubAppWorld.Api, GitHubAppWorld.Web);
        world.GitHub.AddInstallation(11, "octo", "User", (200, "octo/dotfiles"), (201, "octo/blog"), (202, "octo/notes"));
        world.GitHub.Grant(1, 200, 201, 202);
        var userId = Guid.NewGuid();
        var user = world.ApiApp.ClientFor(userId);

        var page = await world.ConnectAsync(userId, githubUserId: 1);

        page.Should().Contain("@octo").And.Contain("acme/api").And.Contain("octo/blog").And.NotContain("acme/secret");
        var status = (await user.GetFromJsonAsync<GitHubAppStatus>("/api/github-app"))!;
        status.Enabled.Should().BeTrue();
        status.Connection!.Login.Should().Be("octo");
        status.Connection.Repositories.Select(r => r.FullName).Should()
            .Equal("acme/api", "acme/web", "octo/blog", "octo/dotfiles", "octo/notes"); // read across pages of 2
        status.Connection.Repositories.Should().OnlyContain(r => !r.Tracked && !r.Suspended);

        // Tracked through the app: GitHub's spelling, no webhook, no secret.
        var created = await world.TrackThroughAppAsync(userId, "ACME/API");
        created.Should().BeEquivalentTo(new { FullName = "acme/api", Source = RepoSources.App, WebhookUrl = (string?)null, WebhookSecret = (string?)null });
        var auto = await world.TrackAsync(userId, "acme/web"); // no source given: the app, since it can
        (await auto.Content.ReadFromJsonAsync<CreatedRepo>())!.Source.Should().Be(RepoSources.App);
        var list = (await user.GetFromJsonAsync<RepoList>("/api/repos"))!;
        list.Repos.Should().OnlyContain(r => r.Source == RepoSources.App && r.WebhookUrl == null);
        list.Plan.Used.Should().Be(2);
        (await user.GetFromJsonAsync<GitHubAppStatus>("/api/github-app"))!.Connection!.Repositories
            .Where(r => r.Tracked).Select(r => r.FullName).Should().Equal("acme/api", "acme/web");

        // The plan's limit counts app repos like any other (Free: 3 active).
        await world.TrackThroughAppAsync(userId, "octo/blog");
        var fourth = await world.TrackAsync(userId, "octo/notes");
        fourth.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await fourth.Content.ReadAsStringAsync()).Should().Contain("Repo limit reached");

        // No secret to rotate; pause and delete work as for any repo.
        var rotate = await user.PostAsync($"/api/repos/{created.Id}/rotate-secret", null);
        rotate.StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await rotate.Content.ReadAsStringAsync()).Should().Contain("GitHub App");
        (await user.PatchAsJsonAsync($"/api/repos/{created.Id}", new { paused = true })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await user.DeleteAsync($"/api/repos/{created.Id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        // The user's tokens are kept only protected.
        var stored = await world.ApiApp.ScalarAsync<string>($"select token_protected || refresh_token_protected from github_connections where user_id = '{userId}'");
        stored.Should().NotContain("ghu_").And.NotContain("ghr_");
    }

    [Fact]
    public async Task A_repo_the_user_cannot_access_through_the_app_is_a_webhook_repo_or_a_403_when_the_app_is_insisted_on()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "octo", GitHubAppWorld.Api);
        var userId = Guid.NewGuid();
        await world.ConnectAsync(userId, 1);

        var insisted = await world.TrackAsync(userId, "acme/secret", RepoSources.App);
        insisted.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await insisted.Content.ReadAsStringAsync()).Should().Contain("Not accessible through the GitHub App");
        var webhook = (await (await world.TrackAsync(userId, "acme/secret")).Content.ReadFromJsonAsync<CreatedRepo>())!;
        webhook.Source.Should().Be(RepoSources.Webhook);
        webhook.WebhookSecret.Should().NotBeNullOrEmpty();
        var forced = (await (await world.TrackAsync(userId, "acme/api", RepoSources.Webhook)).Content.ReadFromJsonAsync<CreatedRepo>())!;
        forced.Source.Should().Be(RepoSources.Webhook);
        var bad = await world.TrackAsync(userId, "acme/web", "carrier-pigeon");
        bad.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await bad.Content.ReadAsStringAsync()).Should().Contain("source");
    }

    [Fact]
    public async Task Bad_replayed_and_expired_states_get_a_clear_400_page_and_connect_nothing()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "octo", GitHubAppWorld.Api);
        var userId = Guid.NewGuid();
        var callback = await world.StartConnectAsync(userId, 1);

        // Tampered with: one character of the state changed.
        var state = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(callback).Query)["state"].ToString();
        var tampered = await world.BrowseAsync(callback.Replace(Uri.EscapeDataString(state), Uri.EscapeDataString(Flip(state)), StringComparison.Ordinal));
        tampered.Status.Should().Be(HttpStatusCode.BadRequest);
        tampered.Html.Should().Contain("This link is not valid").And.StartWith("<!doctype html>");

        // Missing parts, and GitHub's own "the user said no".
        (await world.BrowseAsync(world.ApiApp.Host.Server.BaseAddress + "api/github-app/callback?state=x")).Status.Should().Be(HttpStatusCode.BadRequest);
        (await world.BrowseAsync(world.ApiApp.Host.Server.BaseAddress + "api/github-app/callback?error=access_denied&state=x"))
            .Html.Should().Contain("access_denied");

        // Used once; the second visit (a replay, a link in the history) is refused.
        var first = await world.BrowseAsync(callback);
        first.Status.Should().Be(HttpStatusCode.OK);
        var replay = await world.BrowseAsync(callback);
        replay.Status.Should().Be(HttpStatusCode.BadRequest);
        replay.Html.Should().Contain("used already");
        // ...and so is the confirmation, the second time.
        (await world.ConfirmAsync(first.Html)).Status.Should().Be(HttpStatusCode.OK);
        (await world.ConfirmAsync(first.Html)).Status.Should().Be(HttpStatusCode.BadRequest);

        // Expired: a state CoTeX made, for a real nonce, whose time is up.
        var states = world.ApiApp.Host.Services.GetRequiredService<api::CoTeX.Api.GitHubApp.ConnectStates>();
        var expired = states.Protect(userId, "0123456789abcdef", DateTimeOffset.UtcNow.AddSeconds(-1));
        var late = await world.BrowseAsync(world.ApiApp.Host.Server.BaseAddress +
                                           $"api/github-app/callback?code=whatever&state={Uri.EscapeDataString(expired)}");
        late.Status.Should().Be(HttpStatusCode.BadRequest);
        late.Html.Should().Contain("expired");

        // A client that asks for JSON gets a ProblemDetails.
        var json = world.ApiApp.AnonymousClient();
        json.DefaultRequestHeaders.Accept.ParseAdd("application/json");
        var problem = await json.GetAsync($"/api/github-app/callback?code=x&state={Uri.EscapeDataString(expired)}");
        problem.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    [Fact]
    public async Task A_code_GitHub_refuses_is_a_400_page_and_the_pages_cannot_be_framed_or_cached()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "octo", GitHubAppWorld.Api);
        var callback = await world.StartConnectAsync(Guid.NewGuid(), 1);
        var badCode = callback.Replace("code=code_", "code=forged_", StringComparison.Ordinal);

        var response = await world.ApiApp.AnonymousClient().GetAsync(new Uri(badCode).PathAndQuery);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).Should().Contain("GitHub did not accept the authorization");
        response.Headers.GetValues("X-Frame-Options").Should().Equal("DENY");
        response.Headers.GetValues("Referrer-Policy").Should().Equal("no-referrer");
        response.Headers.CacheControl!.NoStore.Should().BeTrue();
    }

    [Fact]
    public async Task With_no_app_configured_the_mode_says_it_is_off()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var user = app.ClientFor();

        (await user.GetFromJsonAsync<GitHubAppStatus>("/api/github-app")).Should().BeEquivalentTo(new GitHubAppStatus(false, null));
        var connect = await user.PostAsync("/api/github-app/connect", null);
        connect.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await connect.Content.ReadAsStringAsync()).Should().Contain("GitHub App mode is off");
        var body = "{}"u8.ToArray();
        var webhook = new HttpRequestMessage(HttpMethod.Post, "/api/webhooks/github-app") { Content = new ByteArrayContent(body) };
        webhook.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(FakeGitHub.WebhookSecret, body));
        (await app.AnonymousClient().SendAsync(webhook)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        var track = await user.PostAsJsonAsync("/api/repos", new { fullName = "acme/api", source = "app" });
        track.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await track.Content.ReadAsStringAsync()).Should().Contain("GitHub App mode is off");
        // Tracking without a source is a webhook repo, as always.
        (await ApiRequests.TrackRepoAsync(user, "acme/api")).Source.Should().Be(RepoSources.Webhook);
    }

    private static string Flip(string state)
    {
        var chars = state.ToCharArray();
        var i = chars.Length / 2;
        chars[i] = chars[i] == 'A' ? 'B' : 'A';
        return new string(chars);
    }
}
