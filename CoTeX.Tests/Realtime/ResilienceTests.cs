extern alias realtime;

using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CoTeX.Tests.Realtime;

/// <summary>Delivery stays complete when Redis restarts or a replica shuts down mid-stream.</summary>
public sealed class ResilienceTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Killing_and_restarting_redis_mid_stream_leaves_every_client_with_the_complete_set()
    {
        await using var servers = await PrivateServers.StartAsync();
        var redis = servers.Redis;
        await using var cluster = await RealtimeCluster.StartAsync(infra, redis.ConnectionString);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var clients = new[]
        {
            await cluster.WatchAsync(userId, 0, cluster.ReplicaUrls[0]),
            await cluster.WatchAsync(userId, 0, cluster.ReplicaUrls[1]),
        };

        var ids = await cluster.DeliverAsync(repo, 40);
        await redis.KillAsync();
        ids.AddRange(await cluster.DeliverAsync(repo, 40)); // acknowledged: Postgres has them, Redis is down
        await redis.StartAsync();
        ids.AddRange(await cluster.DeliverAsync(repo, 40));

        foreach (var client in clients)
        {
            await client.WaitForCountAsync(120, TimeSpan.FromSeconds(60));
        }
        await Task.Delay(500);
        foreach (var client in clients)
        {
            client.Received.Select(e => e.Id).Should().Equal(ids);
        }
    }

    [Fact]
    public async Task A_replica_outlives_redis_stalling_past_its_command_timeout_and_delivers_afterwards()
    {
        // Short timeouts so the stall outlasts them quickly; the replica's heartbeat to Redis runs every 5 s.
        await using var servers = await PrivateServers.StartAsync();
        var redis = servers.Redis;
        await using var cluster = await RealtimeCluster.StartAsync(infra, $"{redis.ConnectionString},asyncTimeout=1000,syncTimeout=1000", replicas: 1);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var client = await cluster.WatchAsync(userId, 0, cluster.ReplicaUrls[0]);
        var stopping = cluster.Replicas[0].Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;

        await redis.FreezeAsync();
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(7)); // a heartbeat is sent and times out in this window
        }
        finally
        {
            await redis.ResumeAsync();
        }
        var ids = await cluster.DeliverAsync(repo, 5);

        await client.WaitForCountAsync(5, TimeSpan.FromSeconds(30));
        client.Received.Select(e => e.Id).Should().Equal(ids);
        stopping.IsCancellationRequested.Should().BeFalse("a Redis timeout must not stop the replica");
        client.Connections.Should().Equal(cluster.ReplicaUrls[0]);
    }

    [Fact]
    public async Task A_replica_shutting_down_loses_nothing_for_its_clients_which_resume_on_the_other()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var replicaUrls = cluster.ReplicaUrls.ToArray();
        var client = await cluster.WatchAsync(userId, 0, replicaUrls);
        client.Connections.Should().Equal(replicaUrls[0]);

        var sending = cluster.DeliverAsync(repo, 200);
        await client.WaitForCountAsync(50);
        // What SIGTERM does: the host stops gracefully (Program's shutdown path, bounded by Shutdown:TimeoutSeconds).
        await cluster.Replicas[0].DisposeAsync();
        var ids = await sending;

        await client.WaitForCountAsync(200);
        await Task.Delay(300);
        client.Received.Select(e => e.Id).Should().Equal(ids);
        client.Connections.Should().HaveCountGreaterThanOrEqualTo(2).And.Contain(replicaUrls[1]);
    }
}
