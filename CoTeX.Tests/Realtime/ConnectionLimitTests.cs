using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Realtime;

/// <summary>
/// A replica holds at most <c>Realtime:MaxConnections</c> WebSockets: past it the upgrade is refused and the client
/// backs off, where a replica at its open-file limit would exit (docs/benchmarks/scale.md, the storm).
/// </summary>
public sealed class ConnectionLimitTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_connect_past_the_limit_is_refused_and_succeeds_once_a_connection_has_gone_and_nothing_is_missed()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1,
            realtimeSettings: new() { ["Realtime:MaxConnections"] = "2" });
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var first = await cluster.WatchAsync(userId, 0);
        var second = await cluster.WatchAsync(userId, 0);

        await using var third = new RecordingFeed(cluster.ClientFor(userId).Watch(fromPosition: 0));
        await Eventually.SucceedsAsync(() =>
        {
            third.Failures.Should().NotBeEmpty("a third WebSocket on a replica limited to two is refused");
            return Task.CompletedTask;
        });
        third.CaughtUp.IsCompleted.Should().BeFalse();
        var ids = await cluster.DeliverAsync(repo, 5);

        await first.DisposeAsync();
        await third.CaughtUp.WaitAsync(TimeSpan.FromSeconds(20));
        ids.AddRange(await cluster.DeliverAsync(repo, 5));

        await third.WaitForCountAsync(10, TimeSpan.FromSeconds(20));
        await second.WaitForCountAsync(10, TimeSpan.FromSeconds(20));
        third.Received.Select(e => e.Id).Should().Equal(ids, "refused first, it resumes from its position with all of them");
        second.Received.Select(e => e.Id).Should().Equal(ids);
    }
}
