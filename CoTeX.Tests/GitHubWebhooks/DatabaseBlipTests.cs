using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.GitHubWebhooks;

/// <summary>
/// GitHub does not redeliver a delivery that failed, and waits 10 s for an answer. So a delivery that meets an
/// unavailable database waits and retries within that time (on fresh connections: the idle ones a restart broke must
/// not fail anything) and answers 503 only when the database stays away.
/// </summary>
public sealed class DatabaseBlipTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_fast_postgres_restart_during_a_steady_stream_answers_every_delivery_2xx_and_stores_each_once()
    {
        await using var servers = await PrivateServers.StartAsync();
        var postgres = servers.Postgres;
        var db = await postgres.CreateMigratedDatabaseAsync("cotexdb");
        await using var app = await ApiApp.StartAsync(infra, new() { ["RateLimiting:Enabled"] = "false" }, db);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var body = GitHubPayloads.ForRepo("issues/opened.payload.json", repo.FullName);
        var answers = new ConcurrentDictionary<string, HttpStatusCode>();
        using var stop = new CancellationTokenSource();

        // About 150 deliveries a second: 6 senders, each waiting 40 ms between deliveries.
        var senders = Enumerable.Range(0, 6).Select(sender => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var delivery = $"blip-{sender}-{i:D4}";
                answers[delivery] = (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body, delivery)).StatusCode;
                await Task.Delay(40);
            }
        })).ToList();
        await Task.Delay(TimeSpan.FromSeconds(2));
        await postgres.StopAsync(); // a fast shutdown: sessions end, every pooled connection breaks
        await postgres.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        await stop.CancelAsync();
        await Task.WhenAll(senders);

        answers.Values.GroupBy(s => s).ToDictionary(g => (int)g.Key, g => g.Count())
            .Should().ContainKey(200).And.HaveCount(1, "no delivery gets anything but a 2xx");
        var stored = await StoredDeliveriesAsync(app);
        stored.Should().OnlyHaveUniqueItems().And.BeEquivalentTo(answers.Keys, "every acked delivery is stored once");
    }

    [Fact]
    public async Task A_database_that_stays_away_answers_503_with_retry_after_before_githubs_ten_seconds()
    {
        await using var servers = await PrivateServers.StartAsync();
        var postgres = servers.Postgres;
        var db = await postgres.CreateMigratedDatabaseAsync("cotexdb");
        await using var app = await ApiApp.StartAsync(infra, new() { ["RateLimiting:Enabled"] = "false" }, db);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var body = GitHubPayloads.ForRepo("issues/opened.payload.json", repo.FullName);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body)).StatusCode.Should().Be(HttpStatusCode.OK);
        await postgres.StopAsync();

        var stopwatch = Stopwatch.StartNew();
        var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body);

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        response.Headers.RetryAfter.Should().NotBeNull();
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(9), "GitHub gives up after 10 s");
    }

    private static async Task<List<string>> StoredDeliveriesAsync(ApiApp app)
    {
        await using var connection = new Npgsql.NpgsqlConnection(app.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("select delivery_id from github_events", connection);
        var stored = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            stored.Add(reader.GetString(0));
        }
        return stored;
    }
}
