using System.Net;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using CoTeX.Contracts;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.AppHost;

/// <summary>
/// The whole distributed application started from the real AppHost (<see cref="AppHostFixture"/>): what a developer
/// gets from <c>dotnet run --project CoTeX.AppHost</c>, and what the dashboard shows of it.
/// </summary>
public sealed class AppHostTests(AppHostFixture app) : IClassFixture<AppHostFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>OTLP's SPAN_KIND_SERVER (OTLP numbers kinds from 1 = internal; .NET's ActivityKind from 0).</summary>
    private const int ServerSpan = 2;

    [Fact]
    public async Task A_signed_webhook_posted_to_the_api_reaches_a_client_on_each_realtime_replica()
    {
        app.RealtimeReplicas.Should().HaveCount(2).And.OnlyHaveUniqueItems("each replica serves on its own port");
        var (api, repo, feeds) = await NewUserWatchingEveryReplicaAsync();
        await using var _ = feeds;

        var response = await ApiRequests.DeliverAsync(api, repo.Id, repo.WebhookSecret, "push",
            GitHubPayloads.ForRepo("push/payload.json", repo.FullName));

        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        foreach (var feed in feeds)
        {
            await feed.WaitForCountAsync(1, Patience);
            feed.Received.Should().ContainSingle().Which.Should().Match<GitHubEventSummary>(e =>
                e.Type == "push" && e.RepoId == repo.Id && e.RepoFullName == repo.FullName);
        }
    }

    [Fact]
    public async Task Every_service_exports_telemetry_and_one_webhook_is_one_trace_from_the_request_to_each_replicas_send()
    {
        var (api, repo, feeds) = await NewUserWatchingEveryReplicaAsync();
        await using var _ = feeds;

        var response = await ApiRequests.DeliverAsync(api, repo.Id, repo.WebhookSecret, "issues",
            GitHubPayloads.ForRepo("issues/opened.payload.json", repo.FullName));
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        foreach (var feed in feeds)
        {
            await feed.WaitForCountAsync(1, Patience);
        }

        // The request, the batch that stored it with its Postgres statement and its Redis publish, and the send on
        // each replica: one trace.
        await Eventually.SucceedsAsync(() =>
        {
            var spans = app.Telemetry.Spans;
            var request = spans.Should().ContainSingle(s => s.Service == "api" && s.Kind == ServerSpan
                && s.Attributes.GetValueOrDefault("url.path") == $"/api/webhooks/github/{repo.Id}").Subject;
            var trace = spans.Where(s => s.TraceId == request.TraceId).ToList();
            var batch = trace.Should().ContainSingle(s => s.Name == "ingest batch").Subject;
            batch.ParentSpanId.Should().Be(request.SpanId);
            trace.Should().Contain(s => s.ParentSpanId == batch.SpanId && s.Attributes.Keys.Any(k => k.StartsWith("db.", StringComparison.Ordinal)),
                "the batch's Postgres statement is traced");
            trace.Should().ContainSingle(s => s.Name == "publish cotex:github-event-batches")
                .Which.ParentSpanId.Should().Be(batch.SpanId);
            var sends = trace.Where(s => s.Service == "realtime" && s.Name == "send Event").ToList();
            sends.Select(s => s.Instance).Distinct().Should().HaveCount(2, "the user has a client on each replica");
            sends.Should().OnlyContain(s => s.ParentSpanId == request.SpanId);
            return Task.CompletedTask;
        }, Patience);

        // Every service's spans, metrics and logs reach the OTLP endpoint, and CoTeX's own meters are among them.
        await Eventually.SucceedsAsync(() =>
        {
            var telemetry = app.Telemetry;
            foreach (var service in new[] { "api", "realtime", "worker", "migrations" })
            {
                telemetry.Spans.Should().Contain(s => s.Service == service, $"{service} exports spans");
                telemetry.Metrics.Should().Contain(m => m.Service == service, $"{service} exports metrics");
                telemetry.Logs.Should().Contain(l => l.Service == service, $"{service} exports logs");
            }
            var metricNames = telemetry.Metrics.Select(m => m.Name).ToHashSet();
            metricNames.Should().Contain(["cotex.github.webhooks", "cotex.ingest.batch.size", "cotex.realtime.connections",
                "cotex.realtime.events.sent"]);
            telemetry.Logs.Should().Contain(l => l.Service == "migrations" && l.Body.StartsWith("Migrations complete"));
            return Task.CompletedTask;
        }, Patience);
    }

    [Fact]
    public async Task The_dashboard_commands_mint_a_token_the_api_accepts_and_send_a_sample_webhook_to_the_dev_users_clients()
    {
        var devUser = DevTokens.DevUserId; // eng/mint-token.sh's too
        var commands = app.App.Services.GetRequiredService<ResourceCommandService>();
        var api = app.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == "api");

        var minted = await commands.ExecuteCommandAsync(api, "mint-dev-token");
        minted.Success.Should().BeTrue(minted.Message);
        using (var client = app.App.CreateHttpClient("api").WithToken(minted.Data!.Value))
        {
            (await client.GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK, "the minted token is the dev user's");
        }

        await using var feeds = new Feeds();
        foreach (var replica in app.RealtimeReplicas)
        {
            var feed = new RecordingFeed(app.ClientFor(devUser, replica).Watch());
            feeds.Add(feed);
            await feed.CaughtUp.WaitAsync(Patience);
        }
        // The second time the repo is tracked already: the command takes a new secret for it.
        for (var sent = 1; sent <= 2; sent++)
        {
            var result = await commands.ExecuteCommandAsync(api, "send-sample-webhook");
            result.Success.Should().BeTrue(result.Message);
            foreach (var feed in feeds)
            {
                await feed.WaitForCountAsync(sent, Patience);
                feed.Received[^1].Should().Match<GitHubEventSummary>(e => e.Type == "push" && e.RepoFullName == "Codertocat/Hello-World");
            }
        }
    }

    /// <summary>A new user with a tracked repo and a live client on each Realtime replica, caught up.</summary>
    private async Task<(HttpClient Api, CreatedRepo Repo, Feeds Feeds)> NewUserWatchingEveryReplicaAsync()
    {
        var userId = Guid.NewGuid();
        var api = app.ApiClientFor(userId);
        var repo = await ApiRequests.TrackRepoAsync(api);
        var feeds = new Feeds();
        foreach (var replica in app.RealtimeReplicas)
        {
            var feed = new RecordingFeed(app.ClientFor(userId, replica).Watch());
            feeds.Add(feed);
            await feed.CaughtUp.WaitAsync(Patience);
        }
        return (api, repo, feeds);
    }

    private sealed class Feeds : List<RecordingFeed>, IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var feed in this)
            {
                await feed.DisposeAsync();
            }
        }
    }
}
