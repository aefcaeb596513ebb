using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Repos;

public sealed class ReposApiTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Tracking_a_repo_returns_the_webhook_url_and_a_secret_that_is_stored_encrypted()
    {
        await using var app = await ApiApp.StartAsync(infra, new() { ["Api:PublicBaseUrl"] = "https://api.cotex.test/" });
        var user = app.ClientFor();

        var response = await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/Hello-World" });

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        var created = (await response.Content.ReadFromJsonAsync<CreatedRepo>())!;
        response.Headers.Location!.ToString().Should().Be($"/api/repos/{created.Id}");
        created.WebhookUrl.Should().Be($"https://api.cotex.test/api/webhooks/github/{created.Id}");
        created.WebhookSecret.Should().MatchRegex("^[0-9a-f]{64}$");
        created.ContentType.Should().Be("application/json");

        var stored = await app.ScalarAsync<string>($"select webhook_secret_protected from tracked_repos where id = '{created.Id}'");
        stored.Should().NotBeNullOrEmpty().And.NotContain(created.WebhookSecret);

        var list = (await user.GetFromJsonAsync<RepoList>("/api/repos"))!;
        list.Repos.Should().ContainSingle().Which.Should().BeEquivalentTo(new
        {
            created.Id, FullName = "octocat/Hello-World", created.WebhookUrl, Paused = false, LastDeliveryAt = (DateTimeOffset?)null,
        });
        JsonSerializer.Serialize(list).Should().NotContain(created.WebhookSecret, "the secret is shown only once");
        list.Plan.Should().Be(new PlanUsage("free", 1, 3));
    }

    [Fact]
    public async Task The_free_plan_limit_is_enforced_with_a_403_naming_the_limit()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var user = app.ClientFor();
        for (var i = 1; i <= 3; i++)
        {
            (await user.PostAsJsonAsync("/api/repos", new { fullName = $"octocat/repo-{i}" })).StatusCode.Should().Be(HttpStatusCode.Created);
        }

        var fourth = await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/repo-4" });

        fourth.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var problem = await fourth.Content.ReadFromJsonAsync<JsonElement>();
        problem.GetProperty("detail").GetString().Should().Contain("free plan allows 3 active repos");
        problem.GetProperty("limit").GetInt32().Should().Be(3);
        (await user.GetFromJsonAsync<RepoList>("/api/repos"))!.Repos.Should().HaveCount(3);
    }

    [Fact]
    public async Task Concurrent_requests_cannot_exceed_the_limit_together()
    {
        await using var app = await ApiApp.StartAsync(infra, new() { ["Plans:FreeRepoLimit"] = "2" });
        var userId = Guid.NewGuid();
        (await app.ClientFor(userId).GetAsync("/api/repos")).EnsureSuccessStatusCode();

        var responses = await Task.WhenAll(Enumerable.Range(0, 6)
            .Select(i => app.ClientFor(userId).PostAsJsonAsync("/api/repos", new { fullName = $"octocat/race-{i}" })));

        responses.Count(r => r.StatusCode == HttpStatusCode.Created).Should().Be(2);
        responses.Count(r => r.StatusCode == HttpStatusCode.Forbidden).Should().Be(4);
    }

    [Fact]
    public async Task Tracking_the_same_repo_twice_is_a_409()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var user = app.ClientFor();
        await ApiRequests.TrackRepoAsync(user, "octocat/Hello-World");

        var again = await user.PostAsJsonAsync("/api/repos", new { fullName = "OctoCat/hello-world" });

        again.StatusCode.Should().Be(HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData("""{"fullName":"no-slash"}""")]
    [InlineData("""{"fullName":"a/b/c"}""")]
    [InlineData("""{"fullName":"owner/.."}""")]
    [InlineData("""{"fullName":"-owner/repo"}""")]
    [InlineData("""{"fullName":"owner/repo; drop table users"}""")]
    [InlineData("""{"fullName":""}""")]
    [InlineData("""{}""")]
    [InlineData("""{"fullName":42}""")]
    [InlineData("""{"fullName":""")]
    [InlineData("""[]""")]
    public async Task Invalid_repo_names_are_a_400_problem(string body)
    {
        await using var app = await ApiApp.StartAsync(infra);
        var user = app.ClientFor();

        var response = await user.PostAsync("/api/repos", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        (await app.ScalarAsync<long>("select count(*) from tracked_repos")).Should().Be(0);
    }

    [Fact]
    public async Task Another_users_repo_cannot_be_deleted_or_rotated_and_looks_like_it_does_not_exist()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var stranger = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner);

        (await stranger.DeleteAsync($"/api/repos/{repo.Id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await stranger.PostAsync($"/api/repos/{repo.Id}/rotate-secret", null)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await stranger.DeleteAsync($"/api/repos/{Guid.NewGuid()}")).StatusCode.Should().Be(HttpStatusCode.NotFound);

        (await owner.GetFromJsonAsync<RepoList>("/api/repos"))!.Repos.Should().ContainSingle();
    }

    [Fact]
    public async Task Deleting_a_repo_removes_its_events_and_its_webhook_url_stops_working()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner);
        var body = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);

        (await owner.DeleteAsync($"/api/repos/{repo.Id}")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await app.CountEventsAsync()).Should().Be(0);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await owner.GetFromJsonAsync<RepoList>("/api/repos"))!.Plan.Used.Should().Be(0);
    }
}
