extern alias realtime;

using System.Net;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Hostile;

/// <summary>
/// The errors the hostile-input suite cannot provoke (a tripped rate limit, a database that is down, the hub's
/// negotiate) keep their status whatever the client's Accept header says; a client that rules JSON out gets the status
/// with a short plain-text body instead of ProblemDetails.
/// </summary>
public sealed class AcceptHeaderTests(TestInfrastructure infra)
{
    private const string Browser = "text/html,application/xhtml+xml,application/xml;q=0.9";

    [Fact]
    public async Task A_tripped_rate_limit_answers_429_with_retry_after_to_a_browser()
    {
        await using var app = await ApiApp.StartAsync(infra, new() { ["RateLimiting:PerUser"] = "1" });
        var client = app.ClientFor();
        (await client.GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK);

        var limited = await SendAsync(client, HttpMethod.Get, "/api/repos", Browser);

        await ShouldBePlainTextAsync(limited, HttpStatusCode.TooManyRequests);
        limited.Headers.RetryAfter.Should().NotBeNull();
    }

    [Fact]
    public async Task A_database_outage_answers_503_with_retry_after_to_a_browser()
    {
        await using var servers = await PrivateServers.StartAsync();
        var postgres = servers.Postgres;
        var db = await postgres.CreateMigratedDatabaseAsync("cotexdb");
        await using var app = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        await postgres.StopAsync();

        var response = await SendAsync(app.ClientFor(), HttpMethod.Get, "/api/repos", Browser);

        await ShouldBePlainTextAsync(response, HttpStatusCode.ServiceUnavailable);
        response.Headers.RetryAfter.Should().NotBeNull();
    }

    [Theory]
    [InlineData(Browser)]
    [InlineData("text/plain")]
    [InlineData("application/xml")]
    public async Task The_hubs_negotiate_without_a_token_answers_401_whatever_the_client_accepts(string accept)
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var hub = ServiceHost<realtime::Program>.Create(db, infra.Redis.ConnectionString);

        var response = await SendAsync(hub.CreateClient(), HttpMethod.Post, "/ws/negotiate?negotiateVersion=1", accept);

        await ShouldBePlainTextAsync(response, HttpStatusCode.Unauthorized);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, string accept)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.TryAddWithoutValidation("Accept", accept);
        return client.SendAsync(request);
    }

    private static async Task ShouldBePlainTextAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        response.StatusCode.Should().Be(status);
        response.Content.Headers.ContentType?.MediaType.Should().Be("text/plain");
        (await response.Content.ReadAsStringAsync()).Should().StartWith($"{(int)status} ");
    }
}
