extern alias realtime;

using System.Net;
using CoTeX.Client;
using CoTeX.Contracts;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// The delivery path end to end: the Api (in-process) and two Realtime replicas serving real sockets, as separate
/// hosts sharing one Postgres database and one Redis, and SDK clients connected to them.
/// </summary>
public sealed class RealtimeCluster : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    private RealtimeCluster(ApiApp api) => Api = api;

    public ApiApp Api { get; }
    public List<ServiceHost<realtime::Program>> Replicas { get; } = [];
    public List<Uri> ReplicaUrls { get; } = [];

    /// <param name="apiKestrel">Serve the Api on a real socket (for the <c>cotex</c> CLI) instead of the in-memory test server.</param>
    public static async Task<RealtimeCluster> StartAsync(TestInfrastructure infra, string? redisConnectionString = null,
        int replicas = 2, Dictionary<string, string?>? realtimeSettings = null, Dictionary<string, string?>? apiSettings = null,
        string? databaseConnectionString = null, bool apiKestrel = false)
    {
        var db = databaseConnectionString ?? await infra.CreateMigratedDatabaseAsync();
        var redis = redisConnectionString ?? infra.Redis.ConnectionString;
        var api = await ApiApp.StartAsync(infra, new(apiSettings ?? []) { ["ConnectionStrings:redis"] = redis }, db, apiKestrel);
        var cluster = new RealtimeCluster(api);
        for (var i = 0; i < replicas; i++)
        {
            var host = ServiceHost<realtime::Program>.Create(db, redis, new(realtimeSettings ?? [])
            {
                ["Realtime:SweepSeconds"] = realtimeSettings?.GetValueOrDefault("Realtime:SweepSeconds") ?? "1",
                // Tests pin which replica a client is on; RebalanceTests turns moving clients on.
                ["Realtime:RebalancePerSecond"] = realtimeSettings?.GetValueOrDefault("Realtime:RebalancePerSecond") ?? "0",
            });
            cluster.Replicas.Add(host);
            cluster.ReplicaUrls.Add(host.WithKestrel());
        }
        return cluster;
    }

    public CoTeXClient ClientFor(Guid userId, params Uri[] realtimeUrls) =>
        ClientFor(_ => ValueTask.FromResult(TestTokens.For(userId)), realtimeUrls);

    /// <summary>A client whose every request and connection gets its token from <paramref name="tokens"/>.</summary>
    public CoTeXClient ClientFor(Func<CancellationToken, ValueTask<string>> tokens, params Uri[] realtimeUrls) =>
        new(new CoTeXClientOptions
        {
            ApiUrl = Api.Host.Server.BaseAddress,
            RealtimeUrls = realtimeUrls.Length > 0 ? realtimeUrls : ReplicaUrls,
            AccessTokenProvider = tokens,
            MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
        }, Api.Host.Server.CreateHandler());

    /// <summary>Starts a feed and waits until the server says it is caught up (so live events will reach it).</summary>
    public async Task<RecordingFeed> WatchAsync(Guid userId, long? fromPosition, params Uri[] realtimeUrls)
    {
        var feed = ClientFor(userId, realtimeUrls).Watch(fromPosition);
        var recording = new RecordingFeed(feed);
        _owned.Add(recording);
        await recording.CaughtUp.WaitAsync(TimeSpan.FromSeconds(20));
        return recording;
    }

    /// <summary>Tracks a repo for a (new) user and returns it with the user's id.</summary>
    public async Task<(Guid UserId, CreatedRepo Repo)> NewUserWithRepoAsync()
    {
        var userId = Guid.NewGuid();
        var repo = await ApiRequests.TrackRepoAsync(Api.ClientFor(userId));
        return (userId, repo);
    }

    /// <summary>Delivers <paramref name="count"/> distinct signed issue events; returns their acknowledged ids.</summary>
    public async Task<List<long>> DeliverAsync(CreatedRepo repo, int count)
    {
        var body = GitHubPayloads.ForRepo("issues/opened.payload.json", repo.FullName);
        var ids = new List<long>(count);
        for (var i = 0; i < count; i++)
        {
            var response = await Api.DeliverAsync(repo.Id, repo.WebhookSecret, "issues", body);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var ack = await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<System.Text.Json.JsonElement>(response.Content);
            ids.Add(ack.GetProperty("id").GetInt64());
        }
        return ids;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
        foreach (var replica in Replicas)
        {
            await replica.DisposeAsync();
        }
        await Api.DisposeAsync();
    }
}
