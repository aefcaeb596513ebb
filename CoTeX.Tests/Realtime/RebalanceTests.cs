extern alias realtime;

using CoTeX.Contracts;
using CoTeX.Shared.Events;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using realtime::CoTeX.Realtime.Feeds;
using StackExchange.Redis;

namespace CoTeX.Tests.Realtime;

/// <summary>
/// A replica that holds more than its share of the deployment's connections asks some clients to reconnect elsewhere
/// (<c>Reconnect { code: "rebalance" }</c>), so a replica that restarts or is added takes load back; the clients
/// resume from their position and miss nothing. A peer counts only while its heartbeat in Redis keeps moving.
/// </summary>
public sealed class RebalanceTests(TestInfrastructure infra)
{
    private static readonly Dictionary<string, string?> Rebalancing = new()
    {
        ["Realtime:HeartbeatSeconds"] = "1",
        ["Realtime:RebalancePerSecond"] = "2",
    };

    [Fact]
    public async Task Clients_piled_on_one_replica_spread_to_the_other_and_miss_nothing()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, realtimeSettings: Rebalancing);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        // Every client tries the first replica first; one asked to move goes to its next URL, the second replica.
        var feeds = new List<RecordingFeed>();
        for (var i = 0; i < 8; i++)
        {
            feeds.Add(await cluster.WatchAsync(userId, 0));
        }
        var ids = await cluster.DeliverAsync(repo, 5);

        await Eventually.SucceedsAsync(() =>
        {
            Connections(cluster, 0).Should().Be(4);
            Connections(cluster, 1).Should().Be(4);
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(30));
        ids.AddRange(await cluster.DeliverAsync(repo, 5));

        foreach (var feed in feeds)
        {
            await feed.WaitForCountAsync(10, TimeSpan.FromSeconds(20));
            feed.Received.Select(e => e.Id).Should().Equal(ids, "a client that moved resumed from its position");
        }
        var moved = feeds.Where(f => Notices(f).Any(n => n.Code == ReconnectCodes.Rebalance)).ToList();
        moved.Should().HaveCountGreaterThanOrEqualTo(4, "four clients had to move to the second replica");
    }

    [Fact]
    public async Task A_peer_whose_heartbeat_has_stopped_is_given_no_clients_and_one_that_beats_is()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1, realtimeSettings: Rebalancing);
        var (userId, _) = await cluster.NewUserWithRepoAsync();
        var feeds = new List<RecordingFeed>();
        for (var i = 0; i < 6; i++)
        {
            feeds.Add(await cluster.WatchAsync(userId, 0));
        }
        var services = cluster.Replicas[0].Services;
        var scope = OpsCounters.DeploymentScope(services.GetRequiredService<NpgsqlDataSource>().ConnectionString);
        var redis = services.GetRequiredService<IConnectionMultiplexer>().GetDatabase();

        // A replica of the same deployment that died holding no connections: its last heartbeat is fresh but frozen.
        await redis.HashSetAsync(OpsCounters.RealtimeConnections, "crashed-replica",
            OpsCounters.FormatHeartbeat(0, DateTimeOffset.UtcNow, scope));
        await Task.Delay(TimeSpan.FromSeconds(5));
        feeds.SelectMany(Notices).Should().BeEmpty("clients are not sent toward a replica that has stopped beating");
        Connections(cluster, 0).Should().Be(6);

        // The same peer alive (beating every half second): now the replica moves clients (back to itself, its only URL).
        using var beating = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        var beat = Task.Run(async () =>
        {
            while (!beating.IsCancellationRequested)
            {
                await redis.HashSetAsync(OpsCounters.RealtimeConnections, "live-replica",
                    OpsCounters.FormatHeartbeat(0, DateTimeOffset.UtcNow, scope));
                await Task.Delay(500);
            }
        });
        try
        {
            await Eventually.SucceedsAsync(() =>
            {
                feeds.SelectMany(Notices).Should().Contain(n => n.Code == ReconnectCodes.Rebalance);
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(15));

            // The clients it moves come straight back (its only URL), as they would to a peer that takes none: it
            // backs off instead of moving two a second for as long as the peer beats.
            var moved = feeds.SelectMany(Notices).Count();
            await Task.Delay(TimeSpan.FromSeconds(8));
            (feeds.SelectMany(Notices).Count() - moved).Should().BeLessThan(10, "undamped it moves two a round, 15 in the 8 s when tried");
        }
        finally
        {
            await beating.CancelAsync();
            await beat;
        }
    }

    private static int Connections(RealtimeCluster cluster, int replica) =>
        cluster.Replicas[replica].Services.GetRequiredService<FeedRegistry>().Count;

    private static List<ReconnectNotice> Notices(RecordingFeed feed)
    {
        lock (feed.Notices)
        {
            return [.. feed.Notices];
        }
    }
}
