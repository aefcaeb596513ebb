using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Hostile;

/// <summary>
/// GitHub App mode attacked from the outside by its own users: a reader after an alert meant for writers, one account
/// flooding re-checks to starve the database pool, an anonymous session, a tampered connect flow, a token copied to
/// another row. The numbers go to access-attack-summary.txt (CI prints it).
/// </summary>
public sealed class AccessAttackTests(TestInfrastructure infra)
{
    private static readonly string SummaryFile = Path.Combine(AppContext.BaseDirectory, "access-attack-summary.txt");

    [Fact]
    public async Task A_reader_never_gets_a_writers_alert_live_in_the_catch_up_or_by_id()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "reader", GitHubAppWorld.Api);
        world.AddGitHubUser(2, "writer", GitHubAppWorld.Api);
        world.GitHub.SetRole(2, "write", GitHubAppWorld.Api);
        var (reader, writer) = (Guid.NewGuid(), Guid.NewGuid());
        await world.ConnectAsync(reader, 1);
        await world.ConnectAsync(writer, 2);
        await world.TrackThroughAppAsync(reader, "acme/api");
        await world.TrackThroughAppAsync(writer, "acme/api");
        var readerFeed = await world.Cluster.WatchAsync(reader, 0, world.Cluster.ReplicaUrls[0]);
        var writerFeed = await world.Cluster.WatchAsync(writer, 0, world.Cluster.ReplicaUrls[1]);

        await world.DeliverAsync("dependabot_alert", GitHubAppWorld.Payload("dependabot_alert/created.payload.json", json =>
        {
            json["repository"]!["id"] = GitHubAppWorld.Api;
            json["installation"] = new JsonObject { ["id"] = GitHubAppWorld.Installation };
        }));
        await world.PushAsync();

        await writerFeed.WaitForCountAsync(2);
        await readerFeed.WaitForCountAsync(1);
        await Task.Delay(500); // room for anything more to arrive
        readerFeed.Received.Select(e => e.Type).Should().Equal("push");
        writerFeed.Received.Select(e => e.Type).Should().Equal("dependabot_alert", "push");
        var late = await world.Cluster.WatchAsync(reader, 0, world.Cluster.ReplicaUrls[1]);
        await late.WaitForCountAsync(1);
        late.Received.Select(e => e.Type).Should().Equal("push");

        // The writer's alert by its id, asked for by the reader: not theirs, so not found (the same as an id that does not exist).
        var alertId = writerFeed.Received[0].Id;
        var byId = await world.ApiApp.ClientFor(reader).GetAsync($"/api/github-events/event?id={alertId}");
        byId.StatusCode.Should().Be(HttpStatusCode.NotFound);
        byId.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    [Fact]
    public async Task Thirty_parallel_rechecks_from_one_account_leave_the_database_pool_to_GitHubs_deliveries()
    {
        const int poolSize = 10, rechecks = 30;
        await using var world = await GitHubAppWorld.StartAsync(infra, new()
        {
            ["GitHubApp:RecheckCooldownSeconds"] = "0", // the lease alone must hold them off
            ["Database:MaxPoolSize"] = $"{poolSize}",
            ["RateLimiting:Enabled"] = "false", // nothing in front of the re-check endpoint but its own rules
        });
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        world.GitHub.UserCallLatency = TimeSpan.FromSeconds(1); // a slow GitHub: each re-check waits ~3 s on it
        using var pool = new PoolGauge();

        var client = world.ApiApp.ClientFor(alice);
        var flood = Enumerable.Range(0, rechecks).Select(_ => client.PostAsync("/api/github-app/recheck", null)).ToArray();
        var acks = new List<(int Status, double Milliseconds)>();
        var all = Task.WhenAll(flood);
        long? burst = null;
        while (!all.IsCompleted || acks.Count < 20)
        {
            if (burst is null && flood.Count(t => t.IsCompleted) >= rechecks - 1)
            {
                // The refused ones are answered: from here on only the running re-check (waiting on GitHub) and the deliveries.
                burst = pool.MaxUsed;
                pool.Reset();
            }
            var watch = Stopwatch.StartNew();
            var delivery = await world.GitHub.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
            acks.Add((delivery.StatusCode, watch.Elapsed.TotalMilliseconds));
            await Task.Delay(50);
        }
        var answers = await all;

        var statuses = answers.Select(a => (int)a.StatusCode).ToList();
        statuses.Should().OnlyContain(s => s == 200 || s == 429);
        statuses.Count(s => s == 200).Should().Be(1, "a connection's re-checks run one at a time");
        answers.Where(a => a.StatusCode == HttpStatusCode.TooManyRequests).Should().OnlyContain(a => a.Headers.RetryAfter != null);
        acks.Should().OnlyContain(a => a.Status == 200, "GitHub's deliveries are acked while the re-checks wait on GitHub");
        (await world.CountEventsAsync(alice)).Should().Be(acks.Count);
        acks.Max(a => a.Milliseconds).Should().BeLessThan(10_000, "GitHub gives up on a delivery after 10 s");

        // While the one re-check waits on GitHub, the pool serves deliveries only (one at a time here).
        pool.MaxUsed.Should().BeLessThanOrEqualTo(3); // a delivery, and the group commit's writer
        var sorted = acks.Select(a => a.Milliseconds).Order().ToList();
        await File.WriteAllTextAsync(SummaryFile,
            $"GitHub App: {rechecks} parallel re-checks from one account (GitHub answering in 1 s, pool {poolSize}): " +
            $"{statuses.Count(s => s == 200)} ran, {statuses.Count(s => s == 429)} got 429; {acks.Count} deliveries acked meanwhile, " +
            $"ack p50 {sorted[sorted.Count / 2]:0} ms, max {sorted[^1]:0} ms; pooled connections in use at most {burst?.ToString() ?? "n/a"} of {poolSize} in the burst of {rechecks} requests, " +
            $"at most {pool.MaxUsed?.ToString() ?? "n/a"} while the running re-check waited on GitHub\n");
    }

    [Fact]
    public async Task A_user_can_ask_for_one_recheck_per_cooldown_and_is_told_when_to_come_back()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, new() { ["GitHubApp:RecheckCooldownSeconds"] = "30" });
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        var client = world.ApiApp.ClientFor(alice);

        (await client.PostAsync("/api/github-app/recheck", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        var calls = world.GitHub.Calls.Count;
        var again = await client.PostAsync("/api/github-app/recheck", null);

        again.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        again.Headers.RetryAfter!.Delta!.Value.TotalSeconds.Should().BeInRange(1, 30);
        (await again.Content.ReadFromJsonAsync<JsonObject>())!["detail"]!.GetValue<string>().Should().Contain("30 s");
        world.GitHub.Calls.Count.Should().Be(calls, "a refused re-check asks GitHub nothing");
        // Someone else's cooldown is their own.
        var bob = await world.NewFollowerAsync(2, "bob", (GitHubAppWorld.Api, "acme/api"));
        (await world.ApiApp.ClientFor(bob).PostAsync("/api/github-app/recheck", null)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task An_anonymous_session_cannot_connect_GitHub()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var response = await world.ApiApp.ClientFor(anonymous: true).PostAsync("/api/github-app/connect", null);

        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await response.Content.ReadFromJsonAsync<JsonObject>())!["title"]!.GetValue<string>().Should().Be("Sign in to connect GitHub");
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_app_connect_states")).Should().Be(0);
    }

    [Fact]
    public async Task A_pending_connection_that_cannot_be_read_back_is_a_400_page_and_connects_nothing()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        world.AddGitHubUser(1, "alice", GitHubAppWorld.Api);
        var (alice, bob) = (Guid.NewGuid(), Guid.NewGuid());
        var confirmation = await world.BrowseAsync(await world.StartConnectAsync(alice, 1));
        // Bob's pending connection, copied into Alice's row: it was protected for Bob, so it does not read as hers.
        var bobsConfirmation = await world.BrowseAsync(await world.StartConnectAsync(bob, 1));
        await world.ApiApp.ScalarAsync<int>(
            $"""
            update github_app_connect_states set pending_protected = (select pending_protected from github_app_connect_states where user_id = '{bob}')
             where user_id = '{alice}' returning 1
            """);

        var (status, html) = await world.ConfirmAsync(confirmation.Html);

        status.Should().Be(HttpStatusCode.BadRequest);
        html.Should().Contain("This connection cannot be completed");
        (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_connections where user_id = '{alice}'")).Should().Be(0);
        // Bob's own flow is untouched.
        (await world.ConfirmAsync(bobsConfirmation.Html)).Status.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_token_copied_into_another_users_connection_cannot_be_used()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, new() { ["GitHubApp:RecheckCooldownSeconds"] = "0" });
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        var mallory = await world.NewFollowerAsync(666, "mallory");
        await world.ApiApp.ScalarAsync<int>(
            $"""
            update github_connections m set token_protected = a.token_protected, refresh_token_protected = a.refresh_token_protected,
                                            token_expires_at = a.token_expires_at
              from github_connections a where a.user_id = '{alice}' and m.user_id = '{mallory}' returning 1
            """);
        var calls = world.GitHub.Calls.Count;

        var response = await world.ApiApp.ClientFor(mallory).PostAsync("/api/github-app/recheck", null);

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        world.GitHub.Calls.Count.Should().Be(calls, "nothing was sent to GitHub with Alice's token");
        (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_user_repo_access where user_id = '{mallory}'")).Should().Be(0);
        (await world.PushAsync()).Should().Be("stored");
        (await world.CountEventsAsync(mallory)).Should().Be(0);
    }

    /// <summary>
    /// The most connections in use at once in each Npgsql pool of this process (the Api's and the replicas'), from
    /// Npgsql's own meter, while it lives.
    /// </summary>
    private sealed class PoolGauge : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Timer _timer;
        private readonly Dictionary<string, long> _current = [];
        private readonly Dictionary<string, long> _max = [];

        public PoolGauge()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Npgsql" && instrument.Name is "db.client.connections.usage" or "db.client.connection.count")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<int>((_, value, tags, _) => Add(value, tags));
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => Add(value, tags));
            _listener.Start();
            _timer = new Timer(_ => Sample(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(20));
        }

        /// <summary>The largest of the pools' maxima (the Api's pool, which the re-checks and deliveries share).</summary>
        /// <summary>Starts counting the maxima afresh.</summary>
        public void Reset()
        {
            lock (_max)
            {
                _max.Clear();
            }
        }

        public long? MaxUsed
        {
            get
            {
                lock (_max)
                {
                    return _max.Count == 0 ? null : _max.Values.Max();
                }
            }
        }

        private void Add(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? pool = null;
            var used = false;
            foreach (var tag in tags)
            {
                if (tag.Key is "pool.name" or "db.client.connection.pool.name" or "db.client.connections.pool.name")
                {
                    pool = tag.Value as string;
                }
                if (tag.Key is "state" or "db.client.connection.state" or "db.client.connections.state" && tag.Value as string == "used")
                {
                    used = true;
                }
            }
            if (used)
            {
                _current[pool ?? ""] = _current.GetValueOrDefault(pool ?? "") + value;
            }
        }

        private void Sample()
        {
            lock (_max)
            {
                _current.Clear();
                _listener.RecordObservableInstruments();
                foreach (var (pool, used) in _current)
                {
                    _max[pool] = Math.Max(_max.GetValueOrDefault(pool), used);
                }
            }
        }

        public void Dispose()
        {
            _timer.Dispose();
            _listener.Dispose();
        }
    }
}
