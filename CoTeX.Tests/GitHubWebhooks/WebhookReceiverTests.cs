using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CoTeX.Contracts;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.GitHubWebhooks;

public sealed class WebhookReceiverTests(TestInfrastructure infra)
{
    private const string Repo = "Codertocat/Hello-World";

    [Fact]
    public async Task Signed_push_is_stored_and_visible_to_its_owner_only()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var stranger = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner, Repo);

        var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/with-new-branch.payload.json", Repo));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var ack = await response.Content.ReadFromJsonAsync<JsonElement>();
        ack.GetProperty("status").GetString().Should().Be("stored");
        var id = ack.GetProperty("id").GetInt64();

        var page = await owner.GetFromJsonAsync<GitHubEventPage>("/api/github-events");
        var summary = page!.Items.Should().ContainSingle().Subject;
        summary.Id.Should().Be(id);
        summary.Type.Should().Be("push");
        summary.RepoId.Should().Be(repo.Id);
        summary.RepoFullName.Should().Be(Repo);
        summary.Sender.Should().Be("Codertocat");
        summary.Title.Should().Be("Pushed 1 commit to master");
        summary.HtmlUrl.Should().StartWith("https://github.com/");
        summary.Position.Should().Be(1);

        var detail = await owner.GetFromJsonAsync<GitHubEventDetail>($"/api/github-events/event?id={id}");
        detail!.Payload.GetProperty("ref").GetString().Should().Be("refs/heads/master");
        detail.Payload.GetProperty("repository").GetProperty("full_name").GetString().Should().Be(Repo);

        (await stranger.GetAsync($"/api/github-events/event?id={id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await stranger.GetAsync($"/api/github-events?repoId={repo.Id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await stranger.GetFromJsonAsync<GitHubEventPage>("/api/github-events"))!.Items.Should().BeEmpty();
        (await stranger.GetFromJsonAsync<RecentGitHubEvents>("/api/github-events/recent?since=0"))!.Items.Should().BeEmpty();
    }

    [Fact]
    public async Task Duplicate_delivery_is_acknowledged_and_stored_once()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var body = GitHubPayloads.ForRepo("issues/opened.payload.json", Repo);
        var delivery = Guid.NewGuid().ToString();

        var first = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body, delivery);
        var second = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body, delivery);

        first.StatusCode.Should().Be(HttpStatusCode.OK);
        second.StatusCode.Should().Be(HttpStatusCode.OK);
        (await second.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString().Should().Be("duplicate");
        (await app.CountEventsAsync(repo.Id)).Should().Be(1);
    }

    [Fact]
    public async Task Concurrent_duplicates_store_one_event()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var body = GitHubPayloads.ForRepo("pull_request/opened.payload.json", Repo);
        var delivery = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8)
            .Select(_ => app.DeliverAsync(repo.Id, repo.WebhookSecret, "pull_request", body, delivery)));

        responses.Should().OnlyContain(r => r.StatusCode == HttpStatusCode.OK);
        (await app.CountEventsAsync(repo.Id)).Should().Be(1);
    }

    [Fact]
    public async Task Ping_is_acknowledged_and_recorded_on_the_repo()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner, Repo);

        var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "ping", GitHubPayloads.ForRepo("ping/payload.json", Repo));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var listed = (await owner.GetFromJsonAsync<RepoList>("/api/repos"))!.Repos.Single();
        listed.LastPingAt.Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1));
        listed.LastDeliveryAt.Should().NotBeNull();
        (await owner.GetFromJsonAsync<GitHubEventPage>("/api/github-events?type=ping"))!.Items.Should().ContainSingle()
            .Which.Title.Should().Be("Webhook connected");
    }

    [Fact]
    public async Task Form_encoded_delivery_is_verified_over_the_raw_body_and_stored()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner, Repo);
        var json = Encoding.UTF8.GetString(GitHubPayloads.ForRepo("issue_comment/created.payload.json", Repo));
        var form = Encoding.UTF8.GetBytes("payload=" + Uri.EscapeDataString(json));

        var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issue_comment", form,
            tamper: r => r.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded"));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var stored = (await owner.GetFromJsonAsync<GitHubEventPage>("/api/github-events"))!.Items.Single();
        stored.Type.Should().Be("issue_comment");
        stored.Action.Should().Be("created");
        stored.HtmlUrl.Should().Contain("#issuecomment-");
    }

    public static TheoryData<string, int, string> Rejections => new()
    {
        { "missing signature", 401, "X-Hub-Signature-256" },
        { "signature with another secret", 401, "does not match" },
        { "signature over a different body", 401, "does not match" },
        { "garbled signature", 401, "does not match" },
        { "sha1 signature while SHA-1 is disabled", 401, "X-Hub-Signature-256" },
        { "missing event header", 400, "X-GitHub-Event" },
        { "missing delivery header", 400, "X-GitHub-Delivery" },
        { "payload for another repository", 422, "octocat/Spoon-Knife" },
        { "payload without a repository", 422, "repository.full_name" },
        { "invalid JSON", 400, "not valid JSON" },
        { "invalid UTF-8 in a string", 400, "UTF-8" },
        { "JSON that is not an object", 400, "JSON object" },
        { "unsupported content type", 415, "text/plain" },
        { "form body without payload", 400, "payload field" },
    };

    [Theory]
    [MemberData(nameof(Rejections))]
    public async Task Bad_deliveries_are_rejected_with_a_problem_and_store_nothing(string bad, int status, string detailMentions)
    {
        await using var app = await ApiApp.StartAsync(infra);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var body = GitHubPayloads.ForRepo("push/payload.json", Repo);
        var secret = repo.WebhookSecret;
        Action<HttpRequestMessage>? tamper = null;

        switch (bad)
        {
            case "missing signature":
                tamper = r => r.Headers.Remove("X-Hub-Signature-256");
                break;
            case "signature with another secret":
                secret = new string('a', 64);
                break;
            case "signature over a different body":
                tamper = r => r.Content = new ByteArrayContent(GitHubPayloads.ForRepo("push/1.payload.json", Repo))
                    { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
                break;
            case "garbled signature":
                tamper = r => { r.Headers.Remove("X-Hub-Signature-256"); r.Headers.TryAddWithoutValidation("X-Hub-Signature-256", "sha256=zz" + new string('0', 62)); };
                break;
            case "sha1 signature while SHA-1 is disabled":
                tamper = r =>
                {
                    r.Headers.Remove("X-Hub-Signature-256");
                    r.Headers.Add(WebhookSigning.Sha1Header, WebhookSigning.SignSha1(repo.WebhookSecret!, body));
                };
                break;
            case "missing event header":
                tamper = r => r.Headers.Remove("X-GitHub-Event");
                break;
            case "missing delivery header":
                tamper = r => r.Headers.Remove("X-GitHub-Delivery");
                break;
            case "payload for another repository":
                body = GitHubPayloads.ForRepo("push/payload.json", "octocat/Spoon-Knife");
                break;
            case "payload without a repository":
                body = Encoding.UTF8.GetBytes(GitHubPayloads.Read("installation/created.payload.json"));
                break;
            case "invalid JSON":
                body = Encoding.UTF8.GetBytes("""{"repository": {"full_name": "Codertocat/Hello-World" """);
                break;
            case "invalid UTF-8 in a string":
                body = [.. Encoding.UTF8.GetBytes("""{"repository": {"full_name": "Codertocat/Hello-World"}, "x": " """), 0xC3, 0x28, .. "\"}"u8];
                break;
            case "JSON that is not an object":
                body = Encoding.UTF8.GetBytes("[1, 2, 3]");
                break;
            case "unsupported content type":
                tamper = r => r.Content!.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
                break;
            case "form body without payload":
                body = Encoding.UTF8.GetBytes("notpayload=1");
                tamper = r => r.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
                break;
        }

        var response = await app.DeliverAsync(repo.Id, secret, "push", body, tamper: tamper);

        ((int)response.StatusCode).Should().Be(status, bad);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        problem.GetProperty("detail").GetString().Should().Contain(detailMentions);
        (await app.CountEventsAsync()).Should().Be(0);
    }

    [Fact]
    public async Task Unknown_repo_is_404()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var body = GitHubPayloads.ForRepo("push/payload.json", Repo);

        var response = await app.DeliverAsync(Guid.NewGuid(), "secret", "push", body);

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("title").GetString().Should().Be("Unknown repo");
    }

    [Fact]
    public async Task Body_over_25_MB_is_413_and_not_stored()
    {
        await using var app = await ApiApp.StartAsync(infra, kestrel: true);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var huge = new byte[25 * 1024 * 1024 + 1];
        huge.AsSpan().Fill((byte)' ');

        var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", huge);

        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await app.CountEventsAsync()).Should().Be(0);
    }

    [Fact]
    public async Task Sha1_signature_is_accepted_only_when_enabled_and_no_sha256_header_is_sent()
    {
        await using var app = await ApiApp.StartAsync(infra, new() { ["GitHub:AllowSha1"] = "true" });
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var body = GitHubPayloads.ForRepo("push/payload.json", Repo);
        var sha1 = WebhookSigning.SignSha1(repo.WebhookSecret!, body);

        var accepted = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body,
            tamper: r => { r.Headers.Remove("X-Hub-Signature-256"); r.Headers.Add("X-Hub-Signature", sha1); });
        var badSha256WithGoodSha1 = await app.DeliverAsync(repo.Id, "wrong", "push", body,
            tamper: r => r.Headers.Add("X-Hub-Signature", sha1));

        accepted.StatusCode.Should().Be(HttpStatusCode.OK);
        badSha256WithGoodSha1.StatusCode.Should().Be(HttpStatusCode.Unauthorized, "a present SHA-256 signature must be valid");
        (await app.CountEventsAsync()).Should().Be(1);
    }

    [Fact]
    public async Task Rotating_the_secret_invalidates_the_old_one_at_once()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner, Repo);
        var body = GitHubPayloads.ForRepo("push/payload.json", Repo);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);

        var rotated = await (await owner.PostAsync($"/api/repos/{repo.Id}/rotate-secret", null)).Content.ReadFromJsonAsync<RotatedSecret>();

        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await app.DeliverAsync(repo.Id, rotated!.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_secret_rotated_through_another_replica_is_picked_up()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var replicaA = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        await using var replicaB = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        var userId = Guid.NewGuid();
        var repo = await ApiRequests.TrackRepoAsync(replicaA.ClientFor(userId), Repo);
        var body = GitHubPayloads.ForRepo("push/payload.json", Repo);
        (await replicaB.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);

        var rotated = await (await replicaA.ClientFor(userId).PostAsync($"/api/repos/{repo.Id}/rotate-secret", null))
            .Content.ReadFromJsonAsync<RotatedSecret>();
        await Task.Delay(TimeSpan.FromSeconds(1.1)); // replica B reloads a repo at most once a second

        (await replicaB.DeliverAsync(repo.Id, rotated!.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Webhook_while_postgres_is_down_is_503_with_retry_after_and_the_redelivery_is_stored_once()
    {
        await using var servers = await PrivateServers.StartAsync();
        var postgres = servers.Postgres;
        var db = await postgres.CreateMigratedDatabaseAsync("cotexdb");
        await using var app = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var body = GitHubPayloads.ForRepo("push/payload.json", Repo);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);
        var delivery = Guid.NewGuid().ToString();

        await postgres.StopAsync();
        var duringOutage = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body, delivery);

        duringOutage.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        duringOutage.Headers.RetryAfter.Should().NotBeNull();
        (await duringOutage.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("database");

        await postgres.StartAsync();
        await Eventually.SucceedsAsync(async () =>
            (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body, delivery)).StatusCode.Should().Be(HttpStatusCode.OK));
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body, delivery)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await app.CountEventsAsync(repo.Id)).Should().Be(2);
    }

    [Fact]
    public async Task While_the_database_stalls_deliveries_beyond_the_pending_limit_get_503_and_the_waiting_one_is_stored()
    {
        await using var app = await ApiApp.StartAsync(infra, new() { ["GitHub:MaxPendingDeliveries"] = "1" });
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(), Repo);
        var body = GitHubPayloads.ForRepo("issues/opened.payload.json", Repo);
        var userId = await app.ScalarAsync<Guid>($"select user_id from tracked_repos where id = '{repo.Id}'");

        // Holding the user's row stalls the ingest statement, as a slow or locked database would.
        await using var stall = new Npgsql.NpgsqlConnection(app.DatabaseConnectionString);
        await stall.OpenAsync();
        await using var transaction = await stall.BeginTransactionAsync();
        await using (var lockUser = new Npgsql.NpgsqlCommand($"select 1 from users where id = '{userId}' for update", stall, transaction))
        {
            await lockUser.ExecuteScalarAsync();
        }
        var waiting = app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body);
        await Eventually.SucceedsAsync(async () => (await app.ScalarAsync<long>(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%ingest_github_events%'")).Should().Be(1));

        var refused = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body);

        refused.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        refused.Headers.RetryAfter.Should().NotBeNull();
        (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("waiting");
        waiting.IsCompleted.Should().BeFalse("it waits for its commit");

        await transaction.RollbackAsync();

        (await waiting).StatusCode.Should().Be(HttpStatusCode.OK);
        (await app.CountEventsAsync(repo.Id)).Should().Be(1);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body)).StatusCode.Should().Be(HttpStatusCode.OK,
            "the limit counts only deliveries still waiting");
    }

    [Fact]
    public async Task Every_real_repository_payload_is_stored_with_a_title_and_url()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var owner = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner, Repo);
        var payloads = GitHubPayloads.AllRepositoryEvents().ToList();

        foreach (var (eventType, path) in payloads)
        {
            var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, eventType, GitHubPayloads.ForRepo(path, Repo));
            response.StatusCode.Should().Be(HttpStatusCode.OK, path);
        }

        (await app.CountEventsAsync()).Should().Be(payloads.Count);
        var titles = await app.ScalarAsync<long>("select count(*) from github_events where title is null or html_url is null");
        titles.Should().Be(0);
    }
}
