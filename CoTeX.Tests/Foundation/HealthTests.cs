extern alias api;
extern alias realtime;
extern alias worker;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Foundation;

public sealed class HealthTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Every_service_reports_healthy_against_real_postgres_and_redis()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var apiHost = ServiceHost<api::Program>.Create(db, infra.Redis.ConnectionString);
        await using var realtimeHost = ServiceHost<realtime::Program>.Create(db, infra.Redis.ConnectionString);
        await using var workerHost = ServiceHost<worker::Program>.Create(db, infra.Redis.ConnectionString);

        foreach (var client in new[] { apiHost.CreateClient(), realtimeHost.CreateClient(), workerHost.CreateClient() })
        {
            var (status, health) = await GetHealthAsync(client, "/health");
            status.Should().Be(HttpStatusCode.OK);
            health.GetProperty("status").GetString().Should().Be("Healthy");
            foreach (var check in new[] { "postgres", "redis", "migrations" })
            {
                health.GetProperty("checks").GetProperty(check).GetProperty("status").GetString().Should().Be("Healthy", check);
            }

            (await client.GetAsync("/alive")).StatusCode.Should().Be(HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Health_is_503_naming_postgres_while_it_is_down_and_healthy_again_when_it_returns()
    {
        await using var servers = await PrivateServers.StartAsync();
        var postgres = servers.Postgres;
        var db = await postgres.CreateMigratedDatabaseAsync("cotexdb");
        await using var host = ServiceHost<api::Program>.Create(db, infra.Redis.ConnectionString);
        var client = host.CreateClient();
        (await GetHealthAsync(client, "/health")).Status.Should().Be(HttpStatusCode.OK);

        await postgres.StopAsync();

        var (status, health) = await GetHealthAsync(client, "/health");
        status.Should().Be(HttpStatusCode.ServiceUnavailable);
        health.GetProperty("status").GetString().Should().Be("Unhealthy");
        var postgresCheck = health.GetProperty("checks").GetProperty("postgres");
        postgresCheck.GetProperty("status").GetString().Should().Be("Unhealthy");
        postgresCheck.GetProperty("description").GetString().Should().NotBeNullOrWhiteSpace("it says what failed");
        health.GetProperty("checks").GetProperty("redis").GetProperty("status").GetString().Should().Be("Healthy");
        (await client.GetAsync("/alive")).StatusCode.Should().Be(HttpStatusCode.OK, "the process itself still lives");

        await postgres.StartAsync();

        // Pooled connections to the old server are dead; the pool recovers on the next attempts.
        await Eventually.SucceedsAsync(async () =>
            (await GetHealthAsync(client, "/health")).Status.Should().Be(HttpStatusCode.OK));
    }

    [Fact]
    public async Task Health_is_503_naming_migrations_until_they_are_applied()
    {
        var db = await infra.Postgres.CreateDatabaseAsync();
        await using var host = ServiceHost<api::Program>.Create(db, infra.Redis.ConnectionString);
        var client = host.CreateClient();

        var (status, health) = await GetHealthAsync(client, "/health");
        status.Should().Be(HttpStatusCode.ServiceUnavailable);
        var migrations = health.GetProperty("checks").GetProperty("migrations");
        migrations.GetProperty("status").GetString().Should().Be("Unhealthy");
        migrations.GetProperty("description").GetString().Should().Contain("pending");

        await TestInfrastructure.MigrateAsync(db);

        (await GetHealthAsync(client, "/health")).Status.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Health_is_503_naming_redis_while_it_is_down()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var servers = await PrivateServers.StartAsync();
        var redis = servers.Redis;
        await using var host = ServiceHost<realtime::Program>.Create(db, redis.ConnectionString);
        var client = host.CreateClient();
        (await GetHealthAsync(client, "/health")).Status.Should().Be(HttpStatusCode.OK);

        await redis.KillAsync();

        await Eventually.SucceedsAsync(async () =>
        {
            var (status, health) = await GetHealthAsync(client, "/health");
            status.Should().Be(HttpStatusCode.ServiceUnavailable);
            health.GetProperty("checks").GetProperty("redis").GetProperty("status").GetString().Should().Be("Unhealthy");
        });

        await redis.StartAsync();

        await Eventually.SucceedsAsync(async () =>
            (await GetHealthAsync(client, "/health")).Status.Should().Be(HttpStatusCode.OK));
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetHealthAsync(HttpClient client, string path)
    {
        var response = await client.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }
}
