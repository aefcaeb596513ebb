extern alias realtime;

using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using CoTeX.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.Operations;

/// <summary>Rate limits shared across replicas, CORS for REST and the hub, the OpenAPI document, admin access.</summary>
public sealed class EdgeProtectionTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_per_user_limit_is_shared_by_two_api_instances_and_trips_at_the_configured_total()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        var settings = new Dictionary<string, string?> { ["RateLimiting:PerUser"] = "5" };
        await using var instanceA = await ApiApp.StartAsync(infra, settings, db);
        await using var instanceB = await ApiApp.StartAsync(infra, settings, db);
        var userId = Guid.NewGuid();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            var instance = i % 2 == 0 ? instanceA : instanceB;
            statuses.Add((await instance.ClientFor(userId).GetAsync("/api/repos")).StatusCode);
        }

        statuses.Take(5).Should().OnlyContain(s => s == HttpStatusCode.OK);
        statuses[5].Should().Be(HttpStatusCode.TooManyRequests);
        var limited = await instanceA.ClientFor(userId).GetAsync("/api/github-events");
        limited.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        limited.Headers.RetryAfter!.Delta.Should().BeGreaterThan(TimeSpan.Zero);
        (await limited.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("At most 5 requests");
        (await instanceB.ClientFor().GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK, "another user has their own budget");
    }

    [Fact]
    public async Task Cors_grants_only_allowlisted_origins_on_rest_and_refuses_hub_websockets_from_others()
    {
        var settings = new Dictionary<string, string?> { ["Cors:AllowedOrigins:0"] = "https://app.cotex.test" };
        await using var api = await ApiApp.StartAsync(infra, settings);
        var db = api.DatabaseConnectionString;
        await using var hub = ServiceHost<realtime::Program>.Create(db, infra.Redis.ConnectionString, settings);
        var hubUrl = hub.WithKestrel();

        (await Preflight(api, "https://app.cotex.test")).Should().Be("https://app.cotex.test");
        (await Preflight(api, "https://evil.example")).Should().BeNull();

        var token = TestTokens.For(Guid.NewGuid());
        (await OpenSocket(hubUrl, token, "https://app.cotex.test")).Should().Be(WebSocketState.Open);
        (await OpenSocket(hubUrl, token, null)).Should().Be(WebSocketState.Open, "desktop clients send no Origin");
        var refused = async () => await OpenSocket(hubUrl, token, "https://evil.example");
        (await refused.Should().ThrowAsync<WebSocketException>()).Which.Message.Should().Contain("403");
    }

    [Fact]
    public async Task The_openapi_document_lists_every_route()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var document = await app.AnonymousClient().GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var paths = document.GetProperty("paths");

        var routes = app.Host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpMethodMetadata>() is not null)
            .Select(e => (Path: "/" + e.RoutePattern.RawText!.TrimStart('/'), Methods: e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods))
            .Where(r => !r.Path.StartsWith("/openapi", StringComparison.Ordinal) && !r.Path.StartsWith("/scalar", StringComparison.Ordinal))
            .ToList();

        routes.Should().HaveCountGreaterThan(10);
        foreach (var (path, methods) in routes)
        {
            var documented = System.Text.RegularExpressions.Regex.Replace(path, @"\{(\w+)(:[^}]*)?\}", "{$1}").TrimEnd('/');
            documented = documented.Length == 0 ? "/" : documented;
            paths.TryGetProperty(documented, out var item).Should().BeTrue($"{path} should be documented as {documented}");
            foreach (var method in methods)
            {
                item.TryGetProperty(method.ToLowerInvariant(), out _).Should().BeTrue($"{method} {path}");
            }
        }
        document.GetProperty("components").GetProperty("securitySchemes").TryGetProperty("Bearer", out _).Should().BeTrue();
        var receiver = paths.GetProperty("/api/webhooks/github/{repoId}").GetProperty("post").GetProperty("responses");
        foreach (var status in new[] { "200", "400", "401", "404", "408", "413", "415", "422", "429", "503" })
        {
            receiver.TryGetProperty(status, out _).Should().BeTrue($"the receiver documents {status}");
        }
    }

    [Fact]
    public async Task Admin_routes_are_403_for_users_and_show_stats_to_admins()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        await cluster.WatchAsync(userId, null);
        await cluster.DeliverAsync(repo, 2);
        var admin = cluster.Api.AnonymousClient().WithToken(TestTokens.For(Guid.NewGuid(),
            d => d.Claims["app_metadata"] = new Dictionary<string, object> { ["role"] = "admin" }));
        var forged = cluster.Api.AnonymousClient().WithToken(TestTokens.For(userId, d => d.Claims["role"] = "admin"));

        var denied = await cluster.Api.ClientFor(userId).GetAsync("/admin/stats");
        denied.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        denied.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        (await forged.GetAsync("/admin/users")).StatusCode.Should().Be(HttpStatusCode.Forbidden, "only app_metadata.role counts");

        await Eventually.SucceedsAsync(async () =>
        {
            var stats = (await admin.GetFromJsonAsync<CoTeX.Contracts.AdminStats>("/admin/stats"))!;
            stats.EventsLastHour.Should().Be(2);
            stats.EventsLastDay.Should().Be(2);
            stats.UsersByPlan["free"].Should().BeGreaterThanOrEqualTo(2);
            stats.ConnectedClientsByReplica.Should().ContainSingle("the cluster's one replica; other test runs share the Redis")
                .Which.Value.Should().Be(1);
        }, TimeSpan.FromSeconds(15));
        var users = (await admin.GetFromJsonAsync<CoTeX.Contracts.AdminUserPage>("/admin/users?limit=1"))!;
        users.Items.Should().ContainSingle();
        users.NextCursor.Should().NotBeNull();
    }

    [Fact]
    public async Task Problem_bodies_carry_the_request_id_and_trace_id_that_the_logs_carry()
    {
        await using var app = await ApiApp.StartAsync(infra);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/github-events?limit=0");
        request.Headers.Add("X-Request-Id", "support-ticket-1234");

        var response = await app.ClientFor().SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Headers.GetValues("X-Request-Id").Should().Equal("support-ticket-1234");
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        problem.GetProperty("requestId").GetString().Should().Be("support-ticket-1234");
        problem.GetProperty("traceId").GetString().Should().MatchRegex("^[0-9a-f]{32}$");
    }

    private static async Task<string?> Preflight(ApiApp api, string origin)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "/api/repos");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        var response = await api.AnonymousClient().SendAsync(request);
        return response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values) ? values.Single() : null;
    }

    private static async Task<WebSocketState> OpenSocket(Uri hub, string token, string? origin)
    {
        using var socket = new ClientWebSocket();
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }
        var url = new UriBuilder(hub) { Scheme = "ws", Path = "/ws", Query = $"access_token={token}" }.Uri;
        await socket.ConnectAsync(url, CancellationToken.None);
        var state = socket.State;
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        return state;
    }
}
