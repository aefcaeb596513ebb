using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CoTeX.Client;
using CoTeX.DevTools;

namespace CoTeX.Benchmarks;

/// <param name="Followers">Users following the repository, each with one client (alternating between the replicas).</param>
/// <param name="Deliveries">Measured deliveries, sent one after another, each once every follower had the one before.</param>
/// <param name="Delivered">Events the followers' clients received of the <paramref name="Expected"/> (followers × deliveries).</param>
/// <param name="AckLatency">GitHub's view: from sending the delivery to the Api's 200 (GitHub gives up after 10 s).</param>
/// <param name="DeliveryLatency">From sending the delivery to each follower's client receiving it.</param>
/// <param name="LastFollowerLatency">From sending a delivery to the last of its followers receiving it.</param>
/// <param name="WalBytesPerDelivery">Postgres WAL written during the measured deliveries (<c>pg_current_wal_lsn()</c>
/// before and after, a checkpoint just before), per delivery.</param>
/// <param name="TableBytesPerDelivery">Growth of github_events, github_deliveries and github_event_payloads (where it
/// exists), indexes and TOAST included, per delivery.</param>
/// <param name="EventRowsPerDelivery">github_events rows per delivery; <paramref name="PayloadRowsPerDelivery"/>
/// github_event_payloads rows (0 where the table does not exist).</param>
public sealed record FanOutRun(int Followers, int Deliveries, long Expected, long Delivered, Percentiles AckLatency,
    Percentiles DeliveryLatency, Percentiles LastFollowerLatency, double WalBytesPerDelivery, double TableBytesPerDelivery,
    double EventRowsPerDelivery, double PayloadRowsPerDelivery, int PayloadBytes);

/// <summary>
/// Team fan-out (issue 27, item 3): one GitHub App delivery on a repository followed by a whole team. For each team
/// size, a repository of an installation of the benchmark's app (Topology) is followed by that many users, each with
/// a desktop client connected (alternating between the two Realtime replicas); GitHub's deliveries of a real push
/// payload go to the app's webhook URL, one at a time.
/// <para>
/// The followers are written straight into the tables the product fills when a user connects GitHub and tracks a
/// repository through the app (users, github_connections, github_app_installations, github_user_repo_access,
/// tracked_repos): the product's way goes through GitHub's API, which is out of reach here, and the webhook path
/// reads only these rows (GitHubAccessQueries.FollowersAsync). The connections are due a re-check tomorrow, so the
/// Worker leaves them alone during the run.
/// </para>
/// </summary>
public static class FanOut
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 16 }) { Timeout = TimeSpan.FromSeconds(60) };

    public static async Task<IReadOnlyList<FanOutRun>> RunAsync(Topology topology, IReadOnlyList<int> teamSizes, int deliveries, int warmup)
    {
        Http.BaseAddress ??= topology.ApiUrl;
        var runs = new List<FanOutRun>();
        foreach (var size in teamSizes)
        {
            runs.Add(await RunTeamAsync(topology, size, deliveries, warmup));
        }
        return runs;
    }

    private static async Task<FanOutRun> RunTeamAsync(Topology topology, int followers, int deliveries, int warmup)
    {
        var installation = 27_000L + followers;
        var repository = 2_700_000L + followers;
        var fullName = $"bench/fanout-{followers}";
        var users = Enumerable.Range(0, followers).Select(_ => Guid.NewGuid()).ToArray();
        await AddTeamAsync(topology, installation, repository, fullName, users);
        var body = PushPayload(fullName, repository, installation);

        // Each follower's position counts the deliveries they received: position p is delivery p (1-based), warm-up
        // included, since every follower starts with no event and receives every delivery.
        var total = warmup + deliveries;
        var receivedAt = new ConcurrentBag<(long Position, long At)>();
        var perDelivery = new int[total + 1];
        var feeds = new List<CoTeXFeed>(followers);
        // Connected in waves, each caught up before the next starts: every new user's first connection writes its
        // users row and runs a catch-up, and a thousand at once exhausted the replicas' database pools (503s, clients
        // backing off for longer than the wait). A client that reconnects says CaughtUp again; it counts once.
        var caughtUp = new int[followers];
        var connected = 0;
        const int wave = 100;
        for (var start = 0; start < followers; start += wave)
        {
            var end = Math.Min(followers, start + wave);
            for (var i = start; i < end; i++)
            {
                var index = i;
                var feed = topology.ClientFor(users[i], topology.RealtimeUrls[i % 2]).Watch();
                feed.CaughtUp += _ =>
                {
                    if (Interlocked.Exchange(ref caughtUp[index], 1) == 0)
                    {
                        Interlocked.Increment(ref connected);
                    }
                };
                feeds.Add(feed);
                _ = Task.Run(async () =>
                {
                    await foreach (var e in feed.ReadAllAsync())
                    {
                        receivedAt.Add((e.Position, Stopwatch.GetTimestamp()));
                        if (e.Position is > 0 and var p && p <= total)
                        {
                            Interlocked.Increment(ref perDelivery[p]);
                        }
                    }
                });
            }
            var deadline = Stopwatch.GetTimestamp() + 120 * Stopwatch.Frequency;
            while (Volatile.Read(ref connected) < end && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(20);
            }
            if (Volatile.Read(ref connected) < end)
            {
                throw new InvalidOperationException($"fan-out: {end - connected} of {end} clients did not connect");
            }
        }

        var sentAt = new long[total + 1];
        var acks = new List<double>();
        async Task DeliverAsync(int number, bool record)
        {
            var begin = Stopwatch.GetTimestamp();
            sentAt[number] = begin;
            var ok = await SendAsync(body, $"fanout-{followers}-{number}-{Guid.NewGuid():N}");
            var ack = Stopwatch.GetElapsedTime(begin).TotalMilliseconds;
            if (!ok)
            {
                throw new InvalidOperationException($"fan-out: delivery {number} to {followers} followers was not acked");
            }
            if (record)
            {
                acks.Add(ack);
            }
            // The next delivery goes once every follower has this one (or after 10 s: a loss shows as Delivered < Expected).
            var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
            while (Volatile.Read(ref perDelivery[number]) < followers && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(5);
            }
        }

        for (var n = 1; n <= warmup; n++)
        {
            await DeliverAsync(n, record: false);
        }
        await Scenarios.RunAsync("psql", [.. Scenarios.Psql(topology), "-q", "-c", "checkpoint"]);
        var before = await StorageAsync(topology);
        for (var n = warmup + 1; n <= total; n++)
        {
            await DeliverAsync(n, record: true);
        }
        var after = await StorageAsync(topology);
        await Task.Delay(200);
        await Task.WhenAll(feeds.Select(f => f.DisposeAsync().AsTask()));

        var measured = receivedAt.Where(r => r.Position > warmup && r.Position <= total)
            .Select(r => (r.Position, Ms: (r.At - sentAt[r.Position]) * 1000.0 / Stopwatch.Frequency)).ToArray();
        var latencies = measured.Select(m => m.Ms).ToArray();
        var lastFollower = measured.GroupBy(m => m.Position).Select(g => g.Max(m => m.Ms)).ToArray();
        var wal = await WalBytesSinceAsync(topology, before.Lsn);
        return new FanOutRun(followers, deliveries, (long)followers * deliveries, latencies.Length, Percentiles.Of(acks),
            Percentiles.Of(latencies), Percentiles.Of(lastFollower), Math.Round(wal / (double)deliveries),
            Math.Round((after.TableBytes - before.TableBytes) / (double)deliveries),
            (after.EventRows - before.EventRows) / (double)deliveries, (after.PayloadRows - before.PayloadRows) / (double)deliveries,
            body.Length);
    }

    /// <summary>
    /// The rows a team leaves when each member has connected GitHub (a connection GitHub said can read the repository
    /// through the installation) and tracks the repository through the app.
    /// </summary>
    private static async Task AddTeamAsync(Topology topology, long installation, long repository, string fullName, Guid[] users)
    {
        var ids = "{" + string.Join(",", users) + "}";
        var sql = string.Create(CultureInfo.InvariantCulture, $"""
            begin;
            create temporary table team as
                select id, row_number() over () as n from unnest('{ids}'::uuid[]) as id;
            insert into users (id, email) select id, 'fanout-' || n || '@example.com' from team;
            insert into github_app_installations (id, account_login, account_type) values ({installation}, 'bench', 'Organization');
            insert into github_connections (user_id, github_user_id, github_login, recheck_after, token_purpose)
                select id, {installation} * 10000 + n, 'fanout-' || n, now() + interval '1 day', 2 from team;
            insert into github_user_repo_access (user_id, installation_id, repo_id, full_name, role)
                select id, {installation}, {repository}, '{fullName}', 1 from team;
            insert into tracked_repos (id, user_id, full_name, source, github_repo_id)
                select gen_random_uuid(), id, '{fullName}', 'app', {repository} from team;
            commit;
            """);
        var file = Path.Combine(topology.DataDir, $"fanout-{users.Length}.sql");
        await File.WriteAllTextAsync(file, sql);
        await Scenarios.RunAsync("psql", [.. Scenarios.Psql(topology), "-q", "-v", "ON_ERROR_STOP=1", "-f", file]);
    }

    /// <summary>
    /// A real push payload (Payloads/push.json) as the app delivers it: whole (the other scenarios trim the repository
    /// and sender objects, which an app delivery carries in full), with the repository's id and the installation.
    /// </summary>
    private static byte[] PushPayload(string fullName, long repository, long installation)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Payloads", "push.json")))!.AsObject();
        json["repository"]!["id"] = repository;
        json["repository"]!["full_name"] = fullName;
        json["repository"]!["name"] = fullName.Split('/')[1];
        json["installation"] = new JsonObject { ["id"] = installation, ["node_id"] = "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==" };
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    private static async Task<bool> SendAsync(byte[] body, string deliveryId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/webhooks/github-app")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
        };
        request.Headers.Add("X-GitHub-Event", "push");
        request.Headers.Add("X-GitHub-Delivery", deliveryId);
        request.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(Topology.GitHubAppWebhookSecret, body));
        using var response = await Http.SendAsync(request);
        return response.IsSuccessStatusCode;
    }

    private sealed record Storage(string Lsn, long TableBytes, long EventRows, long PayloadRows);

    /// <summary>
    /// The WAL position, and the size and rows of the tables a delivery writes (the payloads' table only where the
    /// schema has one, so the same tool measures before and after it).
    /// </summary>
    private static async Task<Storage> StorageAsync(Topology topology)
    {
        const string sql = """
            select pg_current_wal_lsn(),
                   (select coalesce(sum(pg_total_relation_size(relid)), 0) from pg_partition_tree('github_events'))
                 + pg_total_relation_size('github_deliveries')
                 + coalesce((select sum(pg_total_relation_size(relid)) from pg_partition_tree(to_regclass('github_event_payloads'))), 0),
                   (select count(*) from github_events),
                   case when to_regclass('github_event_payloads') is null then 0
                        else (xpath('/row/c/text()', query_to_xml('select count(*) as c from github_event_payloads', false, true, '')))[1]::text::bigint end
            """;
        var fields = (await Scenarios.RunAsync("psql", [.. Scenarios.Psql(topology), "-At", "-F", " ", "-c", sql])).Trim().Split(' ');
        return new Storage(fields[0], long.Parse(fields[1], CultureInfo.InvariantCulture), long.Parse(fields[2], CultureInfo.InvariantCulture),
            long.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    private static async Task<long> WalBytesSinceAsync(Topology topology, string lsn) =>
        (long)decimal.Parse((await Scenarios.RunAsync("psql", [.. Scenarios.Psql(topology), "-At", "-c",
            $"select pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')"])).Trim(), CultureInfo.InvariantCulture);
}
