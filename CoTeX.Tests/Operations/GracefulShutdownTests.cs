using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Npgsql;

namespace CoTeX.Tests.Operations;

public sealed class GracefulShutdownTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Sigterm_during_a_burst_of_webhooks_exits_in_time_and_every_acknowledged_delivery_is_stored()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var api = await ServiceProcess.StartAsync("CoTeX.Api", new()
        {
            ["ConnectionStrings__cotexdb"] = db,
            ["ConnectionStrings__redis"] = infra.Redis.ConnectionString,
            ["Shutdown__TimeoutSeconds"] = "10",
        });
        using var client = new HttpClient { BaseAddress = api.Url };
        var user = new HttpClient { BaseAddress = api.Url }.WithToken(TestTokens.For(Guid.NewGuid()));
        var repo = (await (await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/Hello-World" }))
            .Content.ReadFromJsonAsync<CreatedRepo>())!;
        var body = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        using (var probe = new HttpRequestMessage(HttpMethod.Get, "/api/github-events?limit=0"))
        {
            probe.Headers.Add("X-Request-Id", "log-probe-123");
            (await user.SendAsync(probe)).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        }

        var acked = new ConcurrentBag<string>();
        var refused = 0;
        using var firstAcks = new SemaphoreSlim(0);
        var senders = Enumerable.Range(0, 8).Select(sender => Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                var delivery = $"{sender}-{i}";
                try
                {
                    var response = await ApiRequests.DeliverAsync(client, repo.Id, repo.WebhookSecret, "push", body, delivery);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        acked.Add(delivery);
                        firstAcks.Release();
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref refused); // the server has stopped listening: GitHub would redeliver
                }
            }
        })).ToArray();

        for (var i = 0; i < 50; i++)
        {
            await firstAcks.WaitAsync(TimeSpan.FromSeconds(30));
        }
        var exitTime = await api.TerminateAsync(TimeSpan.FromSeconds(25));
        await Task.WhenAll(senders);

        exitTime.Should().BeLessThan(TimeSpan.FromSeconds(25));
        acked.Count.Should().BeGreaterThanOrEqualTo(50);
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select delivery_id from github_events", connection);
        var stored = new HashSet<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                stored.Add(reader.GetString(0));
            }
        }
        stored.Should().Contain(acked, "a 2xx is only sent after the commit");

        // Logs: JSON lines carrying the request id and trace id; never a secret, token or payload.
        var logs = api.Output;
        var probeLine = logs.Should().Contain(l => l.Contains("\"RequestId\":\"log-probe-123\"", StringComparison.Ordinal)).Which;
        JsonDocument.Parse(probeLine).RootElement.GetProperty("@tr").GetString().Should().MatchRegex("^[0-9a-f]{32}$");
        logs.Should().NotContain(l => l.Contains(repo.WebhookSecret!, StringComparison.Ordinal));
        logs.Should().NotContain(l => l.Contains(TestTokens.Secret, StringComparison.Ordinal));
        logs.Should().NotContain(l => l.Contains("Codertocat/Hello-World/compare", StringComparison.Ordinal), "payloads are not logged");
        logs.Should().NotContain(l => l.Contains("eyJ", StringComparison.Ordinal), "tokens are not logged");
    }
}
