using System.Net;
using System.Text.Json;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Npgsql;

namespace CoTeX.Tests.Hostile;

/// <summary>
/// A steady stream of signed webhooks and two connected clients, while Postgres restarts, Redis restarts and a
/// Realtime replica goes away. The sender behaves like GitHub: a delivery that did not get a 2xx is sent again (none
/// should need it: the short Postgres outage is waited out by the receiver).
/// At the end: acknowledged deliveries == stored events == what each client holds, in order, without duplicates.
/// </summary>
public sealed class FaultsUnderLoadTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Acked_equals_stored_equals_delivered_through_postgres_redis_and_replica_failures()
    {
        await using var servers = await PrivateServers.StartAsync();
        var postgres = servers.Postgres;
        var db = await postgres.CreateMigratedDatabaseAsync("cotexdb");
        var redis = servers.Redis;
        await using var cluster = await RealtimeCluster.StartAsync(infra, redis.ConnectionString, databaseConnectionString: db,
            apiSettings: new() { ["RateLimiting:Enabled"] = "false" });
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var urls = cluster.ReplicaUrls;
        var clientA = await cluster.WatchAsync(userId, 0, urls[0], urls[1]);
        var clientB = await cluster.WatchAsync(userId, 0, urls[1], urls[0]);

        var body = GitHubPayloads.ForRepo("issues/opened.payload.json", repo.FullName);
        var acked = new List<string>();
        var answers = new Dictionary<int, int>();
        async Task SendAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var delivery = $"delivery-{acked.Count:D4}";
                while (true)
                {
                    HttpStatusCode status;
                    try
                    {
                        status = (await cluster.Api.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body, delivery)).StatusCode;
                    }
                    catch (HttpRequestException)
                    {
                        status = HttpStatusCode.BadGateway;
                    }
                    answers[(int)status] = answers.GetValueOrDefault((int)status) + 1;
                    if (status == HttpStatusCode.OK)
                    {
                        acked.Add(delivery);
                        break;
                    }
                    status.Should().Be(HttpStatusCode.ServiceUnavailable, "an outage is a 503, never anything else");
                    await Task.Delay(100); // GitHub would redeliver later
                }
            }
        }

        await SendAsync(50);
        await postgres.StopAsync();
        var duringOutage = SendAsync(50);
        await Task.Delay(1500);
        await postgres.StartAsync();
        await duringOutage;

        await redis.KillAsync();
        await SendAsync(30);
        await redis.StartAsync();
        await SendAsync(30);

        await cluster.Replicas[0].DisposeAsync(); // replica A goes away mid-stream
        await SendAsync(60);

        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select id, delivery_id from github_events order by seq", connection);
        var stored = new List<(long Id, string Delivery)>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                stored.Add((reader.GetInt64(0), reader.GetString(1)));
            }
        }

        answers.Keys.Should().Equal([200], "the 1.5 s Postgres outage is waited out within GitHub's 10 s, and nothing else refuses");
        stored.Select(s => s.Delivery).Should().BeEquivalentTo(acked, "acked == stored, each once");
        foreach (var client in new[] { clientA, clientB })
        {
            await client.WaitForCountAsync(acked.Count, TimeSpan.FromSeconds(60));
            await Task.Delay(300);
            client.Received.Select(e => e.Id).Should().Equal(stored.Select(s => s.Id), "every client holds every event, in order, once");
        }
        var summary = $"Faults under load: {acked.Count} acked, {stored.Count} stored, {clientA.Received.Count}/{clientB.Received.Count} delivered; answers {JsonSerializer.Serialize(answers)}";
        await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "faults-under-load-summary.txt"), summary + Environment.NewLine);
    }
}
