using System.Net;
using System.Net.Http.Json;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.GitHubEvents;

public sealed class GitHubEventsApiTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Pages_are_newest_first_and_the_cursor_walks_every_event_once()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner);
        var ids = new List<long>();
        for (var i = 0; i < 7; i++)
        {
            var ack = await (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues",
                GitHubPayloads.ForRepo("issues/opened.payload.json", repo.FullName))).Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
            ids.Add(ack.GetProperty("id").GetInt64());
        }

        var seen = new List<long>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = (await owner.GetFromJsonAsync<GitHubEventPage>(
                $"/api/github-events?repoId={repo.Id}&limit=3{(cursor is null ? "" : $"&cursor={cursor}")}"))!;
            seen.AddRange(page.Items.Select(e => e.Id));
            cursor = page.NextCursor;
            pages++;
        } while (cursor is not null);

        pages.Should().Be(3);
        seen.Should().Equal(Enumerable.Reverse(ids));
    }

    [Fact]
    public async Task Type_filter_and_recent_since_position_return_just_what_was_asked()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner);
        foreach (var (type, file) in new[] { ("push", "push/payload.json"), ("issues", "issues/opened.payload.json"), ("push", "push/1.payload.json") })
        {
            (await app.DeliverAsync(repo.Id, repo.WebhookSecret, type, GitHubPayloads.ForRepo(file, repo.FullName))).EnsureSuccessStatusCode();
        }

        (await owner.GetFromJsonAsync<GitHubEventPage>("/api/github-events?type=push"))!.Items
            .Should().HaveCount(2).And.OnlyContain(e => e.Type == "push");

        var recent = (await owner.GetFromJsonAsync<RecentGitHubEvents>("/api/github-events/recent?since=1"))!;
        recent.Items.Select(e => e.Position).Should().Equal(2, 3);
        recent.Position.Should().Be(3);
        recent.HasMore.Should().BeFalse();

        var limited = (await owner.GetFromJsonAsync<RecentGitHubEvents>("/api/github-events/recent?since=0&limit=2"))!;
        limited.Items.Should().HaveCount(2);
        limited.HasMore.Should().BeTrue();

        var nothingNew = (await owner.GetFromJsonAsync<RecentGitHubEvents>("/api/github-events/recent?since=3"))!;
        nothingNew.Items.Should().BeEmpty();
        nothingNew.Position.Should().Be(3);
    }

    [Theory]
    [InlineData("/api/github-events?limit=0")]
    [InlineData("/api/github-events?limit=101")]
    [InlineData("/api/github-events?limit=-5")]
    [InlineData("/api/github-events?limit=abc")]
    [InlineData("/api/github-events?cursor=abc")]
    [InlineData("/api/github-events?cursor=-1")]
    [InlineData("/api/github-events?cursor=99999999999999999999999")]
    [InlineData("/api/github-events?repoId=not-a-guid")]
    [InlineData("/api/github-events/recent?since=-1")]
    [InlineData("/api/github-events/recent?since=x")]
    [InlineData("/api/github-events/recent?limit=1001")]
    [InlineData("/api/github-events/event")]
    [InlineData("/api/github-events/event?id=0")]
    [InlineData("/api/github-events/event?id=1'%20or%20'1'='1")]
    public async Task Out_of_range_or_garbled_queries_are_a_400_problem(string url)
    {
        await using var app = await ApiApp.StartAsync(infra);

        var response = await app.ClientFor().GetAsync(url);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, url);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    [Fact]
    public async Task The_payload_comes_back_as_delivered_and_events_stored_as_jsonb_before_0007_still_read()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner);
        // Spacing, key order and a duplicate key that jsonb would have normalised away.
        var body = System.Text.Encoding.UTF8.GetBytes(
            $$"""{ "zeta" : 1, "action":"opened",  "repository": {"full_name": "{{repo.FullName}}"}, "zeta": 2 }""");
        var ack = await (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body)).Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        var id = ack.GetProperty("id").GetInt64();

        (await app.ScalarAsync<byte[]>($"select body from github_events where id = {id}")).Should().Equal(body);
        var detail = await owner.GetStringAsync($"/api/github-events/event?id={id}");
        detail.Should().Contain(System.Text.Encoding.UTF8.GetString(body), "the payload is served byte for byte");

        // A row from before migration 0007: jsonb payload, no body.
        await app.ScalarAsync<int>($"update github_events set payload = convert_from(body, 'UTF8')::jsonb, body = null where id = {id}");
        var old = await owner.GetFromJsonAsync<GitHubEventDetail>($"/api/github-events/event?id={id}");
        old!.Payload.GetProperty("action").GetString().Should().Be("opened");
    }

    [Fact]
    public async Task An_unknown_event_id_is_404()
    {
        await using var app = await ApiApp.StartAsync(infra);

        var response = await app.ClientFor().GetAsync("/api/github-events/event?id=123456");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }
}
