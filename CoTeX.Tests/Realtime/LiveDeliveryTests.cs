using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Realtime;

/// <summary>A signed webhook in, SignalR clients on two replicas receiving it out.</summary>
public sealed class LiveDeliveryTests(TestInfrastructure infra)
{
    [Fact]
    public async Task An_ingested_event_reaches_the_users_clients_on_both_replicas_once_each_and_nobody_else()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userA, repoA) = await cluster.NewUserWithRepoAsync();
        var (userB, _) = await cluster.NewUserWithRepoAsync();
        var onReplica1 = await cluster.WatchAsync(userA, null, cluster.ReplicaUrls[0]);
        var onReplica2 = await cluster.WatchAsync(userA, null, cluster.ReplicaUrls[1]);
        var otherUser = await cluster.WatchAsync(userB, null, cluster.ReplicaUrls[0]);

        var ids = await cluster.DeliverAsync(repoA, 3);

        await onReplica1.WaitForCountAsync(3);
        await onReplica2.WaitForCountAsync(3);
        await Task.Delay(500); // room for any duplicate to show up
        onReplica1.Received.Select(e => e.Id).Should().Equal(ids);
        onReplica2.Received.Select(e => e.Id).Should().Equal(ids);
        otherUser.Received.Should().BeEmpty();

        var first = onReplica1.Received[0];
        first.RepoId.Should().Be(repoA.Id);
        first.RepoFullName.Should().Be(repoA.FullName);
        first.Type.Should().Be("issues");
        first.Action.Should().Be("opened");
        first.Title.Should().NotBeNullOrEmpty();
        first.HtmlUrl.Should().StartWith("https://github.com/");
        onReplica1.Received.Select(e => e.Position).Should().Equal(1, 2, 3);
    }

    [Fact]
    public async Task A_client_disconnected_during_500_events_resumes_on_the_other_replica_with_all_of_them_in_order()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var before = await cluster.WatchAsync(userId, null, cluster.ReplicaUrls[0]);

        var firstBatch = await cluster.DeliverAsync(repo, 100);
        await before.WaitForCountAsync(100);
        await before.DisposeAsync();
        var position = before.Feed.Position;
        var missed = await cluster.DeliverAsync(repo, 400);

        var after = await cluster.WatchAsync(userId, position, cluster.ReplicaUrls[1]);
        await after.WaitForCountAsync(400);

        before.Received.Concat(after.Received).Select(e => e.Id).Should().Equal(firstBatch.Concat(missed));
        after.Received.Select(e => e.Position).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task Events_arriving_while_catch_up_runs_are_delivered_after_it_without_gap_or_duplicate()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, realtimeSettings: new() { ["Realtime:CatchUpBatchSize"] = "50" });
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var stored = await cluster.DeliverAsync(repo, 300);

        var feed = cluster.ClientFor(userId, cluster.ReplicaUrls[0]).Watch(fromPosition: 0);
        await using var recording = new RecordingFeed(feed);
        var during = await cluster.DeliverAsync(repo, 200);

        await recording.WaitForCountAsync(500);
        await Task.Delay(300);
        recording.Received.Select(e => e.Id).Should().Equal(stored.Concat(during));
    }

    [Fact]
    public async Task A_position_older_than_retention_gets_a_reset_and_then_live_events()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        await cluster.DeliverAsync(repo, 10);
        await cluster.Api.ScalarAsync<int>($"update users set pruned_through_seq = 5 where id = '{userId}'");

        var feed = await cluster.WatchAsync(userId, 2, cluster.ReplicaUrls[0]);
        var live = await cluster.DeliverAsync(repo, 1);

        feed.Resets.Should().ContainSingle().Which.Position.Should().Be(10);
        await feed.WaitForCountAsync(1);
        feed.Received.Select(e => e.Id).Should().Equal(live);
        feed.Received[0].Position.Should().Be(11);
    }

    [Fact]
    public async Task A_position_from_within_retention_is_resumed_without_reset()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var ids = await cluster.DeliverAsync(repo, 10);
        await cluster.Api.ScalarAsync<int>($"update users set pruned_through_seq = 5 where id = '{userId}'");

        var feed = await cluster.WatchAsync(userId, 5, cluster.ReplicaUrls[1]);

        feed.Resets.Should().BeEmpty();
        await feed.WaitForCountAsync(5);
        feed.Received.Select(e => e.Id).Should().Equal(ids.Skip(5));
    }

    [Fact]
    public async Task A_paused_repo_delivers_nothing_live_or_in_catch_up_while_its_events_are_still_stored()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, active) = await cluster.NewUserWithRepoAsync();
        var paused = await ApiRequests.TrackRepoAsync(cluster.Api.ClientFor(userId), "octocat/paused-repo");
        await cluster.Api.ScalarAsync<int>($"update tracked_repos set paused = true where id = '{paused.Id}'");
        var live = await cluster.WatchAsync(userId, 0, cluster.ReplicaUrls[0]);

        await cluster.DeliverAsync(paused, 3);
        var activeIds = await cluster.DeliverAsync(active, 2);

        await live.WaitForCountAsync(2);
        var catchUp = await cluster.WatchAsync(userId, 0, cluster.ReplicaUrls[1]);
        await catchUp.WaitForCountAsync(2);
        await Task.Delay(300);
        live.Received.Select(e => e.Id).Should().Equal(activeIds);
        catchUp.Received.Select(e => e.Id).Should().Equal(activeIds);
        (await cluster.Api.CountEventsAsync(paused.Id)).Should().Be(3, "nothing is lost while paused");
    }

    [Fact]
    public async Task Catch_up_reads_in_position_ranges_and_skips_whole_ranges_of_a_paused_repo()
    {
        // Ranges of 4 positions: positions 1-2 active, 3-10 paused (two whole ranges with nothing to send), 11-15 active.
        await using var cluster = await RealtimeCluster.StartAsync(infra, realtimeSettings: new() { ["Realtime:CatchUpBatchSize"] = "4" });
        var (userId, active) = await cluster.NewUserWithRepoAsync();
        var paused = await ApiRequests.TrackRepoAsync(cluster.Api.ClientFor(userId), "octocat/paused-repo");
        var first = await cluster.DeliverAsync(active, 2);
        await cluster.DeliverAsync(paused, 8);
        var last = await cluster.DeliverAsync(active, 5);
        await cluster.Api.ScalarAsync<int>($"update tracked_repos set paused = true where id = '{paused.Id}'");

        var catchUp = await cluster.WatchAsync(userId, 0, cluster.ReplicaUrls[0]);
        await catchUp.WaitForCountAsync(7);
        await Task.Delay(300);

        catchUp.Received.Select(e => e.Id).Should().Equal(first.Concat(last));
        catchUp.Received.Select(e => e.Position).Should().Equal(1, 2, 11, 12, 13, 14, 15);
        catchUp.Feed.Position.Should().Be(15, "the positions of the paused repo are covered too");
    }
}
