using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using CoTeX.Contracts;
using CoTeX.DevTools;
using Npgsql;

namespace CoTeX.Benchmarks;

/// <param name="Connections">Idle connections on realtime-1 at this step (subscribed and caught up).</param>
/// <param name="KbPerConnection">RSS grown since before the first connection, per connection.</param>
/// <param name="KbPerConnectionAdded">RSS grown since the previous step, per connection added.</param>
/// <param name="IdleCpuPercent">CPU of realtime-1 while the crowd sat idle, % of one core.</param>
/// <param name="RedisBytesPerConnection">Redis <c>used_memory</c> grown since before the first connection, per connection.</param>
/// <param name="RedisChannelsPerConnection">Redis pub/sub channels (<c>INFO stats</c> pubsub_channels) added, per connection.</param>
/// <param name="Live">Webhook sent → live <c>Event</c> received by a measuring client on the same replica, while the crowd sat idle.</param>
public sealed record ConnectionStep(int Connections, int Failed, double SecondsToConnect, double ConnectsPerSecond, long RssKb,
    double KbPerConnection, double KbPerConnectionAdded, double IdleCpuPercent, double LoadGeneratorCpuPercent, double IdleSeconds,
    long RedisUsedBytes, long RedisChannels, long RedisClients, double RedisBytesPerConnection, double RedisChannelsPerConnection,
    int LiveSent, int LiveReceived, Percentiles Live, IReadOnlyList<double> LiveMilliseconds);

/// <param name="Ceiling">The most connections this machine lets one replica hold (its open-file limit less the files it keeps for itself, past which it refuses upgrades).</param>
/// <param name="Wall">Why the steps stop short of <paramref name="Requested"/>, if they do.</param>
public sealed record ConnectionsScaleResult(int Requested, int Ceiling, string? Wall, long RssBeforeKb, long RedisBeforeBytes,
    long RedisChannelsBefore, int ConnectionsPerUser, IReadOnlyList<ConnectionStep> Steps);

/// <param name="Connected">Clients subscribed on some replica.</param>
/// <param name="CaughtUp">Clients of the killed replica holding every event they missed.</param>
/// <param name="PgTransactionsPerSecond">pg_stat_database's commits and rollbacks of the services' database, per second.</param>
/// <param name="PgRowsPerSecond">Rows returned and fetched (tup_returned + tup_fetched), per second.</param>
/// <param name="PgActive">Backends of the database running a statement at the sample.</param>
public sealed record StormSample(double Seconds, int Connected, int CaughtUp, int OnReplica1, int OnReplica2,
    double PgTransactionsPerSecond, double PgRowsPerSecond, int PgActive, int PgBackends);

/// <param name="KilledShare">The share of the clients that started on the killed replica.</param>
/// <param name="Reconnecting">Clients of the killed replica (each missed <paramref name="Missed"/> events).</param>
/// <param name="Lost">Events a client should have and never received.</param>
/// <param name="Duplicated">Events received at or below a position the client already held.</param>
/// <param name="OutOfOrder">Events that skipped a position (a later one arriving before an earlier one).</param>
/// <param name="FailedAttempts">Connects that failed (refused by the dead replica, 503 after a pool timeout, ...), not counting those below.</param>
/// <param name="RefusedWithRetryAfter">Connects answered 503 with a Retry-After (the replica's database pool busy past its timeout).</param>
/// <param name="Unexpected">Events received by clients of the surviving replica, which were sent none.</param>
/// <param name="SecondsToBalanced">From realtime-2's restart until realtime-1 held at most its share plus the balancer's
/// tolerance (10%), every client connected; null if not within the scenario's patience.</param>
/// <param name="RebalanceNotices">Clients realtime-1 asked to move (<c>Reconnect { code: "rebalance" }</c>).</param>
public sealed record StormResult(int Requested, int Clients, double KilledShare, int Missed, int Reconnecting, double SecondsToSetUp, double SecondsToInsert,
    double? SecondsToAllReconnected, double SecondsToAllCaughtUp, bool Complete, long Lost, long Duplicated, long OutOfOrder,
    long Unexpected, long FailedAttempts, long RefusedWithRetryAfter, int ServerCloses, double PgPeakTransactionsPerSecond, double PgPeakRowsPerSecond,
    int PgPeakActive, IReadOnlyDictionary<string, double> CpuMs, double MsRestartedHealthy, int OnSurvivorAfterRestart,
    int OnRestartedAfterRestart, double? SecondsToBalanced, int RebalanceNotices, long RebalanceFailedAttempts,
    IReadOnlyDictionary<string, double> RebalanceCpuMs, IReadOnlyList<StormSample> Timeline);

/// <summary>
/// Issue 27's scale scenarios, on the cheap load generator (<see cref="CheapClients"/>): idle connections on one
/// replica in steps (<c>connections-100k</c>), and a reconnect storm (<c>storm</c>).
/// </summary>
public static class ScaleScenarios
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>
    /// Idle clients on realtime-1, added in steps (10k, 25k, 50k, 100k, up to <paramref name="connections"/>). At each
    /// step: the replica's RSS per connection, the connect rate, its CPU while the crowd idles (pings both ways),
    /// Redis' memory and pub/sub channels, and the latency of live events to a few measuring clients on the same
    /// replica. One user per <paramref name="connectionsPerUser"/> connections, each new to the service (the token check
    /// creates the user's row on the first connect).
    /// </summary>
    public static async Task<ConnectionsScaleResult> ConnectionsAtScaleAsync(Topology topology, int connections, bool quick,
        int connectionsPerUser = 10)
    {
        var replica = topology.RealtimeUrls[0];
        var pid = topology.RealtimePid(1);
        // Both ends hold one descriptor per connection; neither may pass its open-file limit (ulimit -n). The replica
        // refuses upgrades past its limit (Realtime:MaxConnections), and the measuring clients below count too.
        var ceiling = Math.Min(OpenFileLimit(Environment.ProcessId) - OpenFiles(Environment.ProcessId) - 200,
            OpenFileLimit(pid) - ReplicaReservedFiles - MeasuringClients);
        var steps = (quick ? new[] { connections / 2, connections } : [5_000, 10_000, 15_000, 25_000, 50_000, 100_000, connections])
            .Where(s => s > 0 && s <= connections).Distinct().Order().ToList();
        string? wall = null;
        if (steps[^1] > ceiling)
        {
            wall = $"open files: the replica may hold {OpenFileLimit(pid)} descriptors and this tool {OpenFileLimit(Environment.ProcessId)} " +
                "(RLIMIT_NOFILE; raising the hard limit needs CAP_SYS_RESOURCE), so one replica stops at about " +
                $"{ceiling} connections";
            steps = [.. steps.Where(s => s < ceiling), ceiling];
        }

        await using var crowd = new CheapCrowd();
        // The measuring clients: a real user with a repo, on the same replica as the crowd.
        var (measuredUser, repo) = await topology.NewUserWithRepoAsync($"bench/scale-{Guid.NewGuid():N}");
        var measuring = Enumerable.Range(0, MeasuringClients).Select(_ => crowd.Add(Topology.Token(measuredUser), [replica])).ToList();
        await crowd.ConnectAsync(measuring, 4);
        await CheapCrowd.WaitUntilAsync(() => measuring.All(c => c.CaughtUp), TimeSpan.FromSeconds(60));
        var sentAt = new ConcurrentDictionary<long, long>();
        var latencies = new ConcurrentBag<double>();
        foreach (var client in measuring)
        {
            client.OnLiveEvent = position =>
            {
                if (sentAt.TryGetValue(position, out var sent))
                {
                    latencies.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                }
            };
        }
        var payload = Payloads.Load()[0];
        var body = Payloads.For(payload.Template, repo.FullName);
        Http.BaseAddress ??= topology.ApiUrl;
        long position = 0;
        // Warm the live path (JIT) outside the measurements.
        for (var i = 0; i < 20; i++)
        {
            await Webhooks.SendAsync(Http, repo, payload.EventType, body, Guid.NewGuid().ToString("N"));
            position++;
        }

        await Task.Delay(2000);
        var rssBefore = Scenarios.RssKb(pid);
        var redisBefore = await RedisAsync(topology);
        Console.WriteLine($"connections-100k: steps {string.Join(", ", steps)}; realtime-1 RSS {rssBefore / 1024} MB" +
            (wall is null ? "" : $"; wall: {wall}"));
        var results = new List<ConnectionStep>();
        var tokens = new List<string>();
        var previousRss = rssBefore;
        var connected = 0;
        foreach (var target in steps)
        {
            var added = new List<CheapClient>();
            for (var i = crowd.Clients.Count - measuring.Count; i < target; i++)
            {
                if (i / connectionsPerUser >= tokens.Count)
                {
                    tokens.Add(Topology.Token(Guid.NewGuid()));
                }
                added.Add(crowd.Add(tokens[i / connectionsPerUser], [replica]));
            }
            var caughtUpBefore = crowd.CaughtUpCount;
            var started = Stopwatch.GetTimestamp();
            var firstAttempt = await crowd.ConnectAsync(added, concurrency: 64);
            var all = await CheapCrowd.WaitUntilAsync(() => crowd.CaughtUpCount - caughtUpBefore >= added.Count, TimeSpan.FromSeconds(300));
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            connected = crowd.Clients.Count(c => c.CaughtUp) - measuring.Count;
            var failed = target - connected;
            Console.WriteLine($"  {target}: {connected} subscribed in {seconds:F1} s ({firstAttempt} at the first attempt{(all ? "" : ", TIMED OUT")})");

            // Idle: only the pings (the server's every 15 s, ours every 15 s) and the Realtime sweep.
            await Task.Delay(quick ? 1000 : 5000);
            var idle = TimeSpan.FromSeconds(quick ? 2 : 30);
            var cpu = CpuMeter.Start(topology);
            var idleStarted = Stopwatch.GetTimestamp();
            await Task.Delay(idle);
            var idleMs = Stopwatch.GetElapsedTime(idleStarted).TotalMilliseconds;
            var cpuMs = cpu.MillisecondsPer(1);
            var rss = Scenarios.RssKb(pid);
            var redis = await RedisAsync(topology);

            // Live events while the crowd sits: paced, one at a time, so each position is the webhook just sent.
            latencies.Clear();
            var liveCount = quick ? 20 : 200;
            for (var i = 0; i < liveCount; i++)
            {
                sentAt[position + 1] = Stopwatch.GetTimestamp();
                if ((await Webhooks.SendAsync(Http, repo, payload.EventType, body, Guid.NewGuid().ToString("N"))).Ok)
                {
                    position++;
                }
                await Task.Delay(50);
            }
            await CheapCrowd.WaitUntilAsync(() => measuring.All(c => c.Position >= position), TimeSpan.FromSeconds(10));
            var live = latencies.ToList();
            var step = new ConnectionStep(connected, failed, seconds, added.Count / seconds, rss,
                (rss - rssBefore) / (double)Math.Max(1, connected),
                (rss - previousRss) / (double)Math.Max(1, added.Count),
                cpuMs.GetValueOrDefault("realtime-1") / idleMs * 100, cpuMs.GetValueOrDefault("load generator") / idleMs * 100, idleMs / 1000,
                redis.UsedBytes, redis.Channels, redis.Clients,
                (redis.UsedBytes - redisBefore.UsedBytes) / (double)Math.Max(1, connected),
                (redis.Channels - redisBefore.Channels) / (double)Math.Max(1, connected),
                liveCount, live.Count, Percentiles.Of(live), live.Order().ToList());
            results.Add(step);
            previousRss = rss;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {connected}: {step.KbPerConnection:F1} KB RSS/conn ({step.KbPerConnectionAdded:F1} for the step's), {step.ConnectsPerSecond:F0} connects/s, " +
                $"idle CPU {step.IdleCpuPercent:F1}% (load generator {step.LoadGeneratorCpuPercent:F1}%), Redis {redis.UsedBytes / 1048576.0:F1} MB " +
                $"({step.RedisBytesPerConnection:F0} B/conn), {redis.Channels} channels ({step.RedisChannelsPerConnection:F2}/conn), " +
                $"{redis.Clients} clients; live {live.Count}/{liveCount * measuring.Count} {step.Live}"));
            if (failed > 0 && failed > target / 100)
            {
                wall ??= $"{failed} of {target} clients could not connect";
                break;
            }
        }
        return new ConnectionsScaleResult(connections, ceiling, wall, rssBefore, redisBefore.UsedBytes, redisBefore.Channels,
            connectionsPerUser, results);
    }

    /// <summary>
    /// Reconnect storm. <paramref name="requested"/> users, one client each, spread over the replicas, all caught up. Then
    /// realtime-2 is frozen (SIGSTOP: its clients stay connected but hear nothing), <paramref name="missed"/> events are
    /// stored for each of its users straight through the product's ingest function (<c>ingest_github_events</c>, as
    /// the Api stores webhooks, without the Redis announcement that nobody could hear), and realtime-2 is killed
    /// (SIGKILL: no Reconnect notice, the kernel closes the sockets). Its clients reconnect to realtime-1 as the .NET
    /// client does (the next replica at once, then backing off) and resume from their position. Every 500 ms: clients
    /// connected, clients caught up, Postgres' load. Every event is counted per client (lost, duplicated, out of
    /// order). Then realtime-2 starts again, and the time until realtime-1 has moved its excess clients to it
    /// (<c>ReplicaBalancer</c>, at the product's default rate) is measured. Both replicas run with client moving on, as
    /// the product ships (the topology turns it off for the scenarios that crowd one replica on purpose).
    /// </summary>
    /// <param name="killedShare">The share of the clients that start on realtime-2, the replica killed (0.5: half on each).
    /// The replicas even out a lopsided start as the product does (ReplicaBalancer), so <see cref="StormResult.Reconnecting"/>
    /// says how many were on realtime-2 when it was frozen.</param>
    public static async Task<StormResult> StormAsync(Topology topology, int requested, int missed, double killedShare, bool quick)
    {
        // The survivor ends up holding every client, and this tool holds them all too.
        var ceiling = Math.Min(OpenFileLimit(Environment.ProcessId) - OpenFiles(Environment.ProcessId) - 200,
            OpenFileLimit(topology.RealtimePid(1)) - ReplicaReservedFiles);
        var clients = Math.Min(requested, ceiling);
        if (clients < requested)
        {
            Console.WriteLine($"storm: {clients} clients, not {requested}: one replica may hold about {ceiling} connections here (open-file limit)");
        }
        await topology.RestartAsync("realtime-1", settings: Topology.Rebalancing);
        await topology.RestartAsync("realtime-2", settings: Topology.Rebalancing);
        var setUp = Stopwatch.GetTimestamp();
        Http.BaseAddress ??= topology.ApiUrl;
        var users = new (Guid UserId, CreatedRepo Repo)[clients];
        await Parallel.ForEachAsync(Enumerable.Range(0, clients), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            var userId = Guid.NewGuid();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/repos")
            {
                Content = JsonContent.Create(new CreateRepoRequest($"bench/storm-{i}-{userId:N}")),
            };
            request.Headers.Authorization = new("Bearer", Topology.Token(userId));
            using var response = await Http.SendAsync(request, ct);
            response.EnsureSuccessStatusCode();
            users[i] = (userId, (await response.Content.ReadFromJsonAsync<CreatedRepo>(ct))!);
        });
        await using var crowd = new CheapCrowd();
        // Interleaved, so the replicas fill together: a replica ahead of its share would move clients to the other
        // (ReplicaBalancer) while the rest connect.
        var crowdClients = users.Select((u, i) => crowd.Add(Topology.Token(u.UserId), topology.RealtimeUrls,
            firstUrl: (int)Math.Floor((i + 1) * killedShare) > (int)Math.Floor(i * killedShare) ? 1 : 0)).ToList();
        await crowd.ConnectAsync(crowdClients, concurrency: 64);
        if (!await CheapCrowd.WaitUntilAsync(() => crowdClients.All(c => c.CaughtUp), TimeSpan.FromSeconds(300)))
        {
            throw new InvalidOperationException($"storm: only {crowdClients.Count(c => c.CaughtUp)} of {clients} clients connected");
        }
        var secondsToSetUp = Stopwatch.GetElapsedTime(setUp).TotalSeconds;
        var onTwo = crowdClients.Where(c => c.ConnectedTo == 1).ToList();
        var onOne = crowdClients.Where(c => c.ConnectedTo == 0).ToList();
        Console.WriteLine($"storm: {clients} clients connected in {secondsToSetUp:F1} s ({onOne.Count} on realtime-1, {onTwo.Count} on realtime-2)");

        await using var database = NpgsqlDataSource.Create(
            $"Host=127.0.0.1;Port={topology.PostgresPort};Username=postgres;Database=cotexdb;Maximum Pool Size=4");
        var victim = topology.RealtimePid(2);
        ChildProcess.Signal(victim, Signals.Stop);
        var inserting = Stopwatch.GetTimestamp();
        await InsertMissedAsync(database, onTwo.Select(c => users[c.Index]).ToList(), missed);
        var secondsToInsert = Stopwatch.GetElapsedTime(inserting).TotalSeconds;
        Console.WriteLine($"storm: {onTwo.Count * missed} events stored for realtime-2's clients in {secondsToInsert:F1} s; killing realtime-2");

        var timeline = new List<StormSample>();
        using var stopSampling = new CancellationTokenSource();
        var cpu = CpuMeter.Start(topology);
        var killed = Stopwatch.GetTimestamp();
        ChildProcess.Signal(victim, Signals.Kill);
        double? allReconnected = null;
        var sampler = SampleAsync(database, killed, timeline, () =>
        {
            var connected = crowdClients.Count(c => c.ConnectedTo >= 0);
            var caughtUp = onTwo.Count(c => c.CaughtUp && c.Position >= missed);
            if (onTwo.All(c => c.ConnectedTo == 0)) // the dead replica's clients are all on the survivor
            {
                allReconnected ??= Stopwatch.GetElapsedTime(killed).TotalSeconds;
            }
            return (connected, caughtUp, crowdClients.Count(c => c.ConnectedTo == 0), crowdClients.Count(c => c.ConnectedTo == 1));
        }, stopSampling.Token);
        // Stops early if the survivor dies (seen once at the open-file limit: "Out of memory." and gone).
        bool SurvivorDied() => topology.ServicePids().All(p => p.Name != "realtime-1");
        var complete = await CheapCrowd.WaitUntilAsync(() => onTwo.All(c => c.CaughtUp && c.Position >= missed) || SurvivorDied(),
            TimeSpan.FromSeconds(quick ? 60 : 300)) && !SurvivorDied();
        if (SurvivorDied())
        {
            throw new InvalidOperationException($"storm: realtime-1, the survivor, exited during the storm (its log: {topology.DataDir}/logs/realtime-1.log)");
        }
        var secondsToCaughtUp = Stopwatch.GetElapsedTime(killed).TotalSeconds;
        var cpuMs = cpu.MillisecondsPer(1);
        await Task.Delay(2000); // the timeline shows the load falling back
        await stopSampling.CancelAsync();
        await sampler;
        Console.WriteLine($"storm: {(complete ? "all" : "NOT all")} {onTwo.Count} caught up {secondsToCaughtUp:F1} s after the kill " +
            $"(all reconnected after {allReconnected:F1} s)");

        // realtime-2 comes back (a crashed replica restarted, or one added): realtime-1 moves clients to it.
        var restarted = await topology.RestartAsync("realtime-2", settings: Topology.Rebalancing);
        var rebalancing = Stopwatch.GetTimestamp();
        var (noticesBefore, failedBefore, closesBefore) =
            (crowd.ReconnectNotices, crowdClients.Sum(c => (long)c.FailedAttempts), crowd.ServerCloses);
        var rebalanceCpu = CpuMeter.Start(topology);
        using var stopRebalanceSampling = new CancellationTokenSource();
        var rebalanceSampler = SampleAsync(database, killed, timeline, () => (crowdClients.Count(c => c.ConnectedTo >= 0),
            onTwo.Count(c => c.CaughtUp && c.Position >= missed), crowdClients.Count(c => c.ConnectedTo == 0),
            crowdClients.Count(c => c.ConnectedTo == 1)), stopRebalanceSampling.Token);
        var fairShare = (int)Math.Ceiling(clients / 2.0) * (1 + RebalanceTolerance);
        var balanced = await CheapCrowd.WaitUntilAsync(
            () => crowdClients.Count(c => c.ConnectedTo == 0) <= fairShare && crowdClients.All(c => c.ConnectedTo >= 0),
            TimeSpan.FromSeconds(quick ? 90 : 600));
        double? secondsToBalanced = balanced ? Stopwatch.GetElapsedTime(rebalancing).TotalSeconds : null;
        var rebalanceCpuMs = rebalanceCpu.MillisecondsPer(1);
        await Task.Delay(2000);
        await stopRebalanceSampling.CancelAsync();
        await rebalanceSampler;
        var onSurvivor = crowdClients.Count(c => c.ConnectedTo == 0);
        var onRestarted = crowdClients.Count(c => c.ConnectedTo == 1);
        var rebalanceNotices = crowd.ReconnectNotices - noticesBefore;
        Console.WriteLine($"storm: realtime-2 healthy {restarted.TotalMilliseconds:F0} ms after its start; " +
            (balanced ? $"balanced {secondsToBalanced:F1} s after that" : "NOT balanced") +
            $" ({rebalanceNotices} clients asked to move): {onSurvivor} clients on realtime-1, {onRestarted} on realtime-2");

        // Counted per client, over the storm and the moves: each of realtime-2's clients is owed positions 1..missed,
        // each of realtime-1's nothing.
        long lost = onTwo.Sum(c => Math.Max(0, missed - (c.Received - c.Duplicates)));
        long duplicated = crowdClients.Sum(c => (long)c.Duplicates);
        long outOfOrder = crowdClients.Sum(c => (long)c.Gaps);
        long unexpected = onOne.Sum(c => (long)c.Received);
        var stormSamples = timeline.Where(t => t.Seconds <= secondsToCaughtUp + 2).ToList();
        return new StormResult(requested, clients, killedShare, missed, onTwo.Count, secondsToSetUp, secondsToInsert, allReconnected,
            secondsToCaughtUp, complete, lost, duplicated, outOfOrder, unexpected, failedBefore,
            crowdClients.Sum(c => (long)c.Refused),
            closesBefore, stormSamples.Count == 0 ? 0 : stormSamples.Max(s => s.PgTransactionsPerSecond),
            stormSamples.Count == 0 ? 0 : stormSamples.Max(s => s.PgRowsPerSecond), stormSamples.Count == 0 ? 0 : stormSamples.Max(s => s.PgActive),
            cpuMs, restarted.TotalMilliseconds, onSurvivor, onRestarted, secondsToBalanced, rebalanceNotices,
            crowdClients.Sum(c => (long)c.FailedAttempts) - failedBefore, rebalanceCpuMs, timeline);
    }

    /// <summary>Clients on the crowd's replica that measure live latency while the crowd idles.</summary>
    private const int MeasuringClients = 4;

    /// <summary>How far above its share a replica may stay (the product's <c>ReplicaBalancer.Tolerance</c>).</summary>
    private const double RebalanceTolerance = 0.1;

    /// <summary><paramref name="missed"/> push events per user, 100 users (2,000 deliveries) per call of the ingest function.</summary>
    private static async Task InsertMissedAsync(NpgsqlDataSource database, IReadOnlyList<(Guid UserId, CreatedRepo Repo)> users, int missed)
    {
        var payload = "{\"storm\":true}"u8.ToArray();
        await Parallel.ForEachAsync(users.Chunk(100), new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (chunk, ct) =>
        {
            var rows = chunk.SelectMany(u => Enumerable.Range(1, missed).Select(n => (u.UserId, u.Repo, n))).ToList();
            await using var command = database.CreateCommand(
                "select count(*) filter (where o_outcome = 'stored') from ingest_github_events($1, $2, $3, $4, $5, $6, $7, $8, $9)");
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => r.Repo.Id).ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => r.UserId).ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(_ => Guid.NewGuid().ToString("N")).ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(_ => "push").ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(_ => (string?)null).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(_ => "octocat").ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => $"storm event {r.n}").ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => $"https://github.com/{r.Repo.FullName}").ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = rows.Select(_ => payload).ToArray() });
            var stored = (long)(await command.ExecuteScalarAsync(ct))!;
            if (stored != rows.Count)
            {
                throw new InvalidOperationException($"storm: {stored} of {rows.Count} missed events stored");
            }
        });
    }

    private static async Task SampleAsync(NpgsqlDataSource database, long started, List<StormSample> timeline,
        Func<(int Connected, int CaughtUp, int OnOne, int OnTwo)> clients, CancellationToken cancellationToken)
    {
        const string Sql = """
            select (select xact_commit + xact_rollback from pg_stat_database where datname = 'cotexdb'),
                   (select tup_returned + tup_fetched from pg_stat_database where datname = 'cotexdb'),
                   (select count(*) filter (where state = 'active') - 1 from pg_stat_activity where datname = 'cotexdb'),
                   (select count(*) - 1 from pg_stat_activity where datname = 'cotexdb')
            """;
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        (long Xacts, long Rows, double At)? previous = null;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            do
            {
                var at = Stopwatch.GetElapsedTime(started).TotalSeconds;
                var (connected, caughtUp, onOne, onTwo) = clients();
                await using var command = new NpgsqlCommand(Sql, connection);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                var (xacts, rows, active, backends) = (reader.GetInt64(0), reader.GetInt64(1), (int)reader.GetInt64(2), (int)reader.GetInt64(3));
                var elapsed = previous is { } p ? at - p.At : 1;
                timeline.Add(new StormSample(Math.Round(at, 2), connected, caughtUp, onOne, onTwo,
                    previous is { } q ? (xacts - q.Xacts) / elapsed : 0, previous is { } r ? (rows - r.Rows) / elapsed : 0, active, backends));
                previous = (xacts, rows, at);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed record RedisFigures(long UsedBytes, long Channels, long Clients);

    private static async Task<RedisFigures> RedisAsync(Topology topology)
    {
        async Task<string> Cli(params string[] command) =>
            await ChildProcess.RunAsync("redis-cli", ["-p", topology.RedisPort.ToString(CultureInfo.InvariantCulture), .. command]);
        long Field(string info, string name) => long.Parse(info.Split('\n').First(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Split(':')[1].Trim(), CultureInfo.InvariantCulture);
        var memory = await Cli("INFO", "memory");
        var clients = await Cli("INFO", "clients");
        var stats = await Cli("INFO", "stats");
        return new RedisFigures(Field(memory, "used_memory"), Field(stats, "pubsub_channels"), Field(clients, "connected_clients"));
    }

    /// <summary>
    /// The open files a replica keeps for itself: it holds at most its open-file limit less these as connections
    /// (<c>Realtime:MaxConnections</c>' default, RealtimeOptions.ReservedFiles), refusing upgrades past it.
    /// </summary>
    private const int ReplicaReservedFiles = 2048;

    private static int OpenFileLimit(int pid) =>
        int.Parse(File.ReadLines($"/proc/{pid}/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], CultureInfo.InvariantCulture);

    private static int OpenFiles(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;
}
