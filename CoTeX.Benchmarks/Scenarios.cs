using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using CoTeX.Client;
using CoTeX.DevTools;

namespace CoTeX.Benchmarks;

public sealed record Percentiles(double P50, double P95, double P99, double Max)
{
    public static Percentiles Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            return new Percentiles(0, 0, 0, 0);
        }
        var sorted = values.Order().ToArray();
        double At(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return new Percentiles(At(0.50), At(0.95), At(0.99), sorted[^1]);
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"p50 {P50:F2} ms, p95 {P95:F2} ms, p99 {P99:F2} ms, max {Max:F2} ms");
}

/// <param name="Wrk">The same load driven by wrk, when it is installed.</param>
public sealed record IngestResult(int Senders, double Seconds, long Acked, long Failed, double AckedPerSecond, Percentiles AckLatency,
    double PgbenchTps, double Ratio, double PgbenchBareTps, double RatioBare, string PayloadSizes,
    IReadOnlyDictionary<string, double> CpuMsPerWebhook, WrkIngestResult? Wrk, IReadOnlyDictionary<string, double> PgbenchCpuMsPerInsert)
{
    [JsonIgnore] public IReadOnlyList<double> AckMilliseconds { get; init; } = [];
}

public sealed record WrkIngestResult(double Seconds, long Requests, long Errors, double AckedPerSecond, Percentiles AckLatency, double Ratio,
    IReadOnlyDictionary<string, double> CpuMsPerWebhook)
{
    /// <summary>wrk reports percentiles, not samples: 0.1%..100%, which draw the same curve.</summary>
    [JsonIgnore] public IReadOnlyList<double> AckMilliseconds { get; init; } = [];
}

public sealed record EndToEndResult(int Clients, int ClientsPerUser, int TargetRate, double Seconds, long Sent, long Expected, long Delivered,
    double AchievedRate, Percentiles Latency, Percentiles AckLatency, IReadOnlyDictionary<string, double> CpuMsPerWebhook)
{
    [JsonIgnore] public IReadOnlyList<double> LatencyMilliseconds { get; init; } = [];
    [JsonIgnore] public IReadOnlyList<double> AckMilliseconds { get; init; } = [];
}

/// <param name="LiveKbPerConnection">Managed objects reachable per connection (heap walks before and after connecting).</param>
/// <param name="LiveBytesPerConnection">The same by type, largest first.</param>
/// <param name="GarbageKbPerConnection">Objects on the heap that nothing reaches any more (not yet collected).</param>
/// <param name="GarbageBytesPerConnection">The same by type, largest first.</param>
/// <param name="GcFreeKbPerConnection">Memory the GC has committed for the heap beyond all its objects.</param>
/// <param name="OutsideGcHeapKbPerConnection">The rest of the RSS: native memory (the runtime's, sockets' user-space
/// state, ...), less any committed heap memory never touched.</param>
public sealed record ConnectionsResult(int Connections, long RssBeforeKb, long RssAfterKb, double KbPerConnection, double SecondsToConnect,
    double? LiveKbPerConnection, IReadOnlyList<HeapShare>? LiveBytesPerConnection,
    double? GarbageKbPerConnection, IReadOnlyList<HeapShare>? GarbageBytesPerConnection, double? GcFreeKbPerConnection,
    double? OutsideGcHeapKbPerConnection);

public sealed record HeapShare(string Type, double Bytes, double Count);

/// <param name="MsToFirstEvent">From opening the feed to the first event: connecting, authenticating and the first page.</param>
/// <param name="CpuMs">CPU milliseconds by part while the client caught up (the client is the load generator).</param>
public sealed record CatchUpResult(int Missed, double SecondsToHoldAll, long Received, double MsToFirstEvent, IReadOnlyDictionary<string, double> CpuMs);

/// <summary>
/// The unsigned flood: <paramref name="Flooders"/> strangers (127.0.0.3, outside the sender ranges) post 25 MB bodies
/// with a made-up signature as fast as they are answered, while GitHub (127.0.0.1, inside) delivers
/// <paramref name="GenuinePerSecond"/> signed pushes a second.
/// </summary>
/// <param name="FloodAnswers">The flood's answers by status ("closed": the Api answered and closed mid-upload).</param>
/// <param name="RssQuietMb">The Api's RSS after the quiet phase; <paramref name="RssPeakMb"/> its peak under the flood.</param>
/// <param name="GenuineQuiet">Genuine ack latency without the flood; <paramref name="GenuineFlood"/> during it.</param>
public sealed record UnsignedFloodResult(int Flooders, double Seconds, int BodyMb, long BudgetMb, long BudgetOutsideMb,
    IReadOnlyDictionary<string, long> FloodAnswers, double FloodMbOffered, long RssQuietMb, long RssPeakMb,
    int GenuinePerSecond, Percentiles GenuineQuiet, Percentiles GenuineFlood, long GenuineAcked, long GenuineFailed);

/// <param name="Complete">Both clients received every missed event.</param>
public sealed record ColdStartResult(string Build, int Missed, double MsToHealthy, double MsFirstCatchUp, double MsSecondCatchUp, bool Complete);

/// <summary>
/// One busy repository: the same wrk senders all on one repository of one user (<paramref name="OneRepo"/>), then
/// spread over as many repositories, each of its own user (<paramref name="Spread"/>), in the same run. The machine is
/// shared, so <paramref name="Ratio"/> (one repo's acks per second over the spread's) is the figure to compare.
/// </summary>
/// <param name="RoundRatios">The ratio in each round (the shapes alternate which goes first), to show the noise.</param>
public sealed record BusyRepoResult(int Senders, int Repos, int Rounds, BusyRepoRun OneRepo, BusyRepoRun Spread, double Ratio,
    IReadOnlyList<double> RoundRatios);

/// <param name="Seconds">Summed over the rounds, as are the requests, errors and CPU; the latency percentiles are
/// those of wrk's distributions of every round pooled.</param>
/// <param name="DeliveriesPerBatch">Stored events per ingest transaction (events over distinct <c>received_at</c>,
/// which is the transaction's start time): how well group commit batches this shape.</param>
public sealed record BusyRepoRun(double Seconds, long Requests, long Errors, double AckedPerSecond, Percentiles AckLatency,
    double DeliveriesPerBatch, IReadOnlyDictionary<string, double> CpuMsPerWebhook)
{
    [JsonIgnore] public IReadOnlyList<double> AckMilliseconds { get; init; } = [];
}

public static class Scenarios
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 256 });

    /// <summary>
    /// Concurrent senders post signed webhooks as fast as they are acked, first from this process, then from wrk (a
    /// native client, so that the ratio is not the .NET client's cost); then pgbench inserts the same rows.
    /// </summary>
    public static async Task<IngestResult> IngestAsync(Topology topology, int senders, TimeSpan duration, TimeSpan warmup, int repos)
    {
        var payloads = Payloads.Load();
        var targets = new List<(CoTeX.Contracts.CreatedRepo Repo, byte[][] Bodies)>();
        for (var i = 0; i < repos; i++)
        {
            var (_, repo) = await topology.NewUserWithRepoAsync($"bench/ingest-{i}");
            targets.Add((repo, payloads.Select(p => Payloads.For(p.Template, repo.FullName)).ToArray()));
        }
        Http.BaseAddress ??= topology.ApiUrl;

        var latencies = new ConcurrentBag<double>();
        long acked = 0, failed = 0;
        async Task SendAsync(TimeSpan length, bool record)
        {
            var stopAt = Stopwatch.GetTimestamp() + (long)(length.TotalSeconds * Stopwatch.Frequency);
            await Task.WhenAll(Enumerable.Range(0, senders).Select(sender => Task.Run(async () =>
            {
                var n = 0;
                while (Stopwatch.GetTimestamp() < stopAt)
                {
                    var (repo, bodies) = targets[(sender + n) % targets.Count];
                    var kind = n % payloads.Count;
                    var begin = Stopwatch.GetTimestamp();
                    var (ok, _) = await Webhooks.SendAsync(Http, repo, payloads[kind].EventType, bodies[kind], $"s{sender}-{n++}-{Guid.NewGuid():N}");
                    if (record)
                    {
                        latencies.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
                        Interlocked.Increment(ref ok ? ref acked : ref failed);
                    }
                }
            })));
        }
        await SendAsync(warmup, record: false); // JIT, connection pools and caches warm up outside the measurement
        var started = Stopwatch.GetTimestamp();
        var cpu = CpuMeter.Start(topology);
        await SendAsync(duration, record: true);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpuPerWebhook = cpu.MillisecondsPer(acked);

        Wrk.Run? wrk = null;
        IReadOnlyDictionary<string, double> wrkCpu = new Dictionary<string, double>();
        if (Wrk.IsInstalled())
        {
            var wrkTargets = targets.SelectMany(t => payloads.Select((p, k) => new Wrk.Target(t.Repo.Id, p.EventType, t.Bodies[k], t.Repo.WebhookSecret!))).ToList();
            await Wrk.RunAsync(topology.ApiUrl, wrkTargets, senders, TimeSpan.FromSeconds(Math.Min(5, warmup.TotalSeconds))); // the services are warm already
            var wrkCpuMeter = CpuMeter.Start(topology);
            wrk = await Wrk.RunAsync(topology.ApiUrl, wrkTargets, senders, duration);
            wrkCpu = wrkCpuMeter.MillisecondsPer(wrk.Requests - wrk.Errors);
        }

        var pgbench = await PgbenchAsync(topology, senders, duration, targets[0].Bodies.Select(b => Encoding.UTF8.GetString(b)).ToArray());
        var ackedPerSecond = acked / seconds;
        double Ratio(double perSecond) => pgbench.SameTable > 0 ? perSecond / pgbench.SameTable : 0;
        var wrkResult = wrk is null ? null : new WrkIngestResult(wrk.Seconds, wrk.Requests, wrk.Errors, (wrk.Requests - wrk.Errors) / wrk.Seconds,
            wrk.Latency, Ratio((wrk.Requests - wrk.Errors) / wrk.Seconds), wrkCpu) { AckMilliseconds = wrk.LatencyMs };
        var sizes = string.Join(", ", payloads.Select(p => $"{p.EventType} {Payloads.For(p.Template, "bench/ingest-0").Length / 1024.0:F1} KB"));
        var ackLatencies = latencies.ToArray();
        return new IngestResult(senders, seconds, acked, failed, ackedPerSecond, Percentiles.Of(ackLatencies),
            pgbench.SameTable, Ratio(ackedPerSecond), pgbench.Bare,
            pgbench.Bare > 0 ? ackedPerSecond / pgbench.Bare : 0, sizes, cpuPerWebhook, wrkResult, pgbench.Cpu) { AckMilliseconds = ackLatencies };
    }

    /// <summary>
    /// One busy repository (issue 27, item 6): <paramref name="senders"/> wrk connections post signed webhooks as fast
    /// as they are acked, all to one repository of one user, then the same connections over
    /// <paramref name="senders"/> repositories of as many users. Warmed up on both shapes first, then
    /// <paramref name="rounds"/> rounds of <paramref name="duration"/> per shape, the first shape alternating, so that
    /// neither is always measured while the other's checkpoint or a neighbour's build runs. Null without wrk.
    /// </summary>
    public static async Task<BusyRepoResult?> BusyRepoAsync(Topology topology, int senders, TimeSpan duration, TimeSpan warmup, int rounds)
    {
        if (!Wrk.IsInstalled())
        {
            return null;
        }
        var payloads = Payloads.Load();
        List<Wrk.Target> TargetsOf(CoTeX.Contracts.CreatedRepo repo) =>
            payloads.Select(p => new Wrk.Target(repo.Id, p.EventType, Payloads.For(p.Template, repo.FullName), repo.WebhookSecret!)).ToList();
        var (_, busy) = await topology.NewUserWithRepoAsync("bench/busy-repo");
        var spread = new List<CoTeX.Contracts.CreatedRepo>();
        for (var i = 0; i < senders; i++)
        {
            spread.Add((await topology.NewUserWithRepoAsync($"bench/busy-spread-{i}")).Repo);
        }
        var oneTargets = TargetsOf(busy);
        var spreadTargets = spread.SelectMany(TargetsOf).ToList();

        var half = TimeSpan.FromSeconds(Math.Max(1, warmup.TotalSeconds / 2));
        await Wrk.RunAsync(topology.ApiUrl, oneTargets, senders, half);
        await Wrk.RunAsync(topology.ApiUrl, spreadTargets, senders, half);

        async Task<(Wrk.Run Run, long Events, long Batches, IReadOnlyDictionary<string, double> Cpu)> MeasureAsync(IReadOnlyList<Wrk.Target> targets)
        {
            var since = (await RunAsync("psql", [.. Psql(topology), "-At", "-c", "select now()"])).Trim();
            var cpu = CpuMeter.Start(topology);
            var run = await Wrk.RunAsync(topology.ApiUrl, targets, senders, duration);
            var acked = run.Requests - run.Errors;
            var cpuPerWebhook = cpu.MillisecondsPer(acked);
            var repoIds = string.Join(",", targets.Select(t => t.RepoId).Distinct());
            var counts = (await RunAsync("psql", [.. Psql(topology), "-At", "-F", " ", "-c",
                $"select count(*), count(distinct received_at) from github_events where repo_id = any('{{{repoIds}}}') and received_at >= '{since}'"]))
                .Trim().Split(' ');
            return (run, long.Parse(counts[0], CultureInfo.InvariantCulture), long.Parse(counts[1], CultureInfo.InvariantCulture), cpuPerWebhook);
        }
        var oneRuns = new List<(Wrk.Run Run, long Events, long Batches, IReadOnlyDictionary<string, double> Cpu)>();
        var spreadRuns = new List<(Wrk.Run Run, long Events, long Batches, IReadOnlyDictionary<string, double> Cpu)>();
        var roundRatios = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            if (round % 2 == 0)
            {
                oneRuns.Add(await MeasureAsync(oneTargets));
                spreadRuns.Add(await MeasureAsync(spreadTargets));
            }
            else
            {
                spreadRuns.Add(await MeasureAsync(spreadTargets));
                oneRuns.Add(await MeasureAsync(oneTargets));
            }
            roundRatios.Add(Math.Round(Rate(oneRuns[^1].Run) / Math.Max(1, Rate(spreadRuns[^1].Run)), 2));
        }
        var one = Combine(oneRuns);
        var wide = Combine(spreadRuns);
        return new BusyRepoResult(senders, senders, rounds, one, wide,
            wide.AckedPerSecond > 0 ? Math.Round(one.AckedPerSecond / wide.AckedPerSecond, 2) : 0, roundRatios);

        static double Rate(Wrk.Run run) => (run.Requests - run.Errors) / run.Seconds;

        static BusyRepoRun Combine(List<(Wrk.Run Run, long Events, long Batches, IReadOnlyDictionary<string, double> Cpu)> runs)
        {
            var seconds = runs.Sum(r => r.Run.Seconds);
            var acked = runs.Sum(r => r.Run.Requests - r.Run.Errors);
            var pooled = runs.SelectMany(r => r.Run.LatencyMs).ToArray();
            var latency = runs.Count == 1 ? runs[0].Run.Latency : Percentiles.Of(pooled) with { Max = runs.Max(r => r.Run.Latency.Max) };
            var events = runs.Sum(r => r.Events);
            var batches = runs.Sum(r => r.Batches);
            // CPU per webhook of each round, weighted by its acks.
            var cpu = runs.SelectMany(r => r.Cpu.Select(kv => (kv.Key, Ms: kv.Value * (r.Run.Requests - r.Run.Errors))))
                .GroupBy(x => x.Key).ToDictionary(g => g.Key, g => Math.Round(g.Sum(x => x.Ms) / Math.Max(1, acked), 3));
            return new BusyRepoRun(seconds, runs.Sum(r => r.Run.Requests), runs.Sum(r => r.Run.Errors), acked / seconds, latency,
                batches > 0 ? Math.Round((double)events / batches, 1) : 0, cpu) { AckMilliseconds = runs.Count == 1 ? runs[0].Run.LatencyMs : [.. pooled.Order()] };
        }
    }

    /// <summary>
    /// pgbench, same Postgres, same client count: one single-row insert per transaction, with the same columns and the
    /// same payload mix as the ingest run (as bytes, as the ingest stores them). pgbench is a C client and its payloads
    /// are in the database already, so it measures Postgres alone. Twice: into a table with github_events' indexes and payload compression
    /// (the baseline the ratio uses), and into a bare table with neither (the most a single-row insert can do).
    /// </summary>
    private static async Task<(double SameTable, double Bare, IReadOnlyDictionary<string, double> Cpu)> PgbenchAsync(Topology topology, int clients, TimeSpan duration,
        IReadOnlyList<string> payloads)
    {
        var folder = Directory.CreateTempSubdirectory("cotex-pgbench").FullName;
        var setup = new StringBuilder("""
            drop table if exists bench_events, bench_events_bare, bench_payload;
            create table bench_events (like github_events including defaults including indexes including compression);
            create table bench_events_bare (like github_events including defaults);
            create table bench_payload (k int primary key, body bytea);

            """);
        for (var k = 0; k < payloads.Count; k++)
        {
            var file = Path.Combine(folder, $"payload{k}.json");
            await File.WriteAllTextAsync(file, payloads[k]);
            // pgbench and psql treat ':' as variables, so the payloads go in through a file.
            setup.AppendLine(CultureInfo.InvariantCulture, $"\\set content{k} `cat {file}`");
            setup.AppendLine(CultureInfo.InvariantCulture, $"insert into bench_payload values ({k}, convert_to(:'content{k}', 'UTF8'));");
        }
        var setupFile = Path.Combine(folder, "setup.sql");
        await File.WriteAllTextAsync(setupFile, setup.ToString());
        await RunAsync("psql", [.. Psql(topology), "-q", "-v", "ON_ERROR_STOP=1", "-f", setupFile]);

        async Task<(double Tps, long Transactions)> RunPgbenchAsync(string table)
        {
            var script = Path.Combine(folder, $"{table}.sql");
            await File.WriteAllTextAsync(script,
                $"\\set k random(0, {payloads.Count - 1})\n" +
                $"insert into {table} (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, body) " +
                "select gen_random_uuid(), gen_random_uuid(), :client_id, md5(random()::text), 'push', null, 'octocat', " +
                "'Pushed 1 commit to main', 'https://github.com/x/y', body from bench_payload where k = :k;\n");
            var output = await RunAsync("pgbench",
                ["-n", "-h", "127.0.0.1", "-p", $"{topology.PostgresPort}", "-U", "postgres", "-c", $"{clients}", "-j", "2",
                 "-T", $"{Math.Max(1, (int)duration.TotalSeconds)}", "-f", script, "cotexdb"]);
            var lines = output.Split('\n');
            var tps = lines.FirstOrDefault(l => l.StartsWith("tps = ", StringComparison.Ordinal));
            var processed = lines.FirstOrDefault(l => l.StartsWith("number of transactions actually processed: ", StringComparison.Ordinal));
            return (tps is null ? 0 : double.Parse(tps.Split(' ')[2], CultureInfo.InvariantCulture),
                processed is null ? 0 : long.Parse(processed.Split(' ')[^1], CultureInfo.InvariantCulture));
        }
        // CPU per insert, by part, on the same meter as the ingest runs: the baseline's own cost.
        var cpu = CpuMeter.Start(topology);
        var sameTable = await RunPgbenchAsync("bench_events");
        await Task.Delay(1000); // pgbench's backends exit with it: their time counts once the postmaster has reaped them
        var cpuPerInsert = cpu.MillisecondsPer(sameTable.Transactions);
        var bare = await RunPgbenchAsync("bench_events_bare");
        await RunAsync("psql", [.. Psql(topology), "-q", "-c", "drop table bench_events, bench_events_bare, bench_payload"]);
        Directory.Delete(folder, recursive: true);
        return (sameTable.Tps, bare.Tps, cpuPerInsert);
    }

    /// <summary>
    /// Connected clients over both replicas, <paramref name="clientsPerUser"/> per user (a user's clients alternate
    /// between the replicas, so every event also crosses the Redis backplane); webhooks at a fixed rate, spread round
    /// robin over the users' repos; latency from send to receipt at each of that user's clients.
    /// </summary>
    public static async Task<EndToEndResult> EndToEndAsync(Topology topology, int clients, int clientsPerUser, int rate,
        TimeSpan duration, TimeSpan warmup)
    {
        var payloads = Payloads.Load();
        var users = (clients + clientsPerUser - 1) / clientsPerUser;
        var targets = new (Guid UserId, CoTeX.Contracts.CreatedRepo Repo, byte[][] Bodies)[users];
        await Parallel.ForAsync(0, users, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (u, _) =>
        {
            var (userId, repo) = await topology.NewUserWithRepoAsync($"bench/e2e-{u}");
            targets[u] = (userId, repo, payloads.Select(p => Payloads.For(p.Template, repo.FullName)).ToArray());
        });
        var clientsOfUser = Enumerable.Range(0, users)
            .Select(u => Math.Min(clientsPerUser, clients - u * clientsPerUser)).ToArray();
        Http.BaseAddress ??= topology.ApiUrl;

        var sentAt = new ConcurrentDictionary<long, (long At, int User)>();
        var acks = new ConcurrentBag<double>();
        var received = new ConcurrentBag<(long Id, long At)>();
        var feeds = new List<CoTeXFeed>();
        using var ready = new CountdownEvent(clients);
        for (var i = 0; i < clients; i++)
        {
            var client = topology.ClientFor(targets[i / clientsPerUser].UserId, topology.RealtimeUrls[i % 2]);
            var feed = client.Watch();
            feed.CaughtUp += _ => ready.Signal();
            feeds.Add(feed);
            _ = Task.Run(async () =>
            {
                await foreach (var e in feed.ReadAllAsync())
                {
                    received.Add((e.Id, Stopwatch.GetTimestamp()));
                }
            });
            if (i % 200 == 199)
            {
                await Task.Delay(50); // let the replicas keep up with the handshakes
            }
        }
        ready.Wait(TimeSpan.FromSeconds(120));

        // Paced in 10 ms ticks (a spinning loop would steal the cores the system under test needs).
        async Task<double> SendPacedAsync(int total, bool record)
        {
            var start = Stopwatch.GetTimestamp();
            var sends = new List<Task>(total);
            using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
            var n = 0;
            while (n < total && await ticker.WaitForNextTickAsync())
            {
                var due = Math.Min(total, (int)(Stopwatch.GetElapsedTime(start).TotalSeconds * rate));
                for (; n < due; n++)
                {
                    var index = n;
                    var user = index % users;
                    var (_, repo, bodies) = targets[user];
                    var kind = index / users % payloads.Count;
                    sends.Add(Task.Run(async () =>
                    {
                        var begin = Stopwatch.GetTimestamp();
                        var (_, id) = await Webhooks.SendAsync(Http, repo, payloads[kind].EventType, bodies[kind], $"e2e-{index}-{Guid.NewGuid():N}");
                        if (record && id is { } eventId)
                        {
                            sentAt[eventId] = (begin, user);
                            acks.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
                        }
                    }));
                }
            }
            await Task.WhenAll(sends);
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        async Task AwaitDeliveriesAsync(long expected, Func<long> delivered)
        {
            var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
            while (delivered() < expected && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(50);
            }
        }

        // Warm-up outside the measurement (JIT, pools, caches), then the measured run.
        var warmupTotal = (int)(rate * warmup.TotalSeconds);
        await SendPacedAsync(warmupTotal, record: false);
        var warmupExpected = Enumerable.Range(0, warmupTotal).Sum(n => (long)clientsOfUser[n % users]);
        await AwaitDeliveriesAsync(warmupExpected, () => received.Count);
        received.Clear();
        var cpu = CpuMeter.Start(topology);
        var sendSeconds = await SendPacedAsync((int)(rate * duration.TotalSeconds), record: true);
        var expected = sentAt.Values.Sum(s => (long)clientsOfUser[s.User]);
        await AwaitDeliveriesAsync(expected, () => received.Count(r => sentAt.ContainsKey(r.Id)));
        var cpuPerWebhook = cpu.MillisecondsPer(sentAt.Count);

        var latencies = received.Where(r => sentAt.ContainsKey(r.Id))
            .Select(r => (r.At - sentAt[r.Id].At) * 1000.0 / Stopwatch.Frequency).ToArray();
        await Task.WhenAll(feeds.Select(f => f.DisposeAsync().AsTask()));
        var ackLatencies = acks.ToArray();
        return new EndToEndResult(clients, clientsPerUser, rate, sendSeconds, sentAt.Count, expected, latencies.Length,
            sentAt.Count / sendSeconds, Percentiles.Of(latencies), Percentiles.Of(ackLatencies), cpuPerWebhook)
        {
            LatencyMilliseconds = latencies,
            AckMilliseconds = ackLatencies,
        };
    }

    /// <summary>Idle clients on one replica: resident memory per connection.</summary>
    public static async Task<ConnectionsResult> ConnectionsAsync(Topology topology, int connections)
    {
        var (userId, _) = await topology.NewUserWithRepoAsync("bench/connections");
        var pid = topology.RealtimePid(1);
        GC.Collect();
        await Task.Delay(1000);
        var before = RssKb(pid);
        var heapBefore = await HeapSnapshots.TakeAsync(pid);
        var feeds = new List<CoTeXFeed>(connections);
        using var connected = new CountdownEvent(connections);
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < connections; i++)
        {
            var feed = topology.ClientFor(userId, topology.RealtimeUrls[0]).Watch();
            feed.CaughtUp += _ => connected.Signal();
            feed.Start();
            feeds.Add(feed);
            if (i % 200 == 199)
            {
                await Task.Delay(50); // let the server keep up with the handshakes
            }
        }
        connected.Wait(TimeSpan.FromSeconds(300));
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await Task.Delay(3000);
        var after = RssKb(pid);
        var open = Math.Max(1, connections - connected.CurrentCount);
        double? liveKb = null, garbageKb = null, gcFreeKb = null, outsideKb = null;
        List<HeapShare>? shares = null, garbage = null;
        if (heapBefore is not null && await HeapSnapshots.TakeAsync(pid) is { } heapAfter)
        {
            // What each connection keeps alive, and what connecting left behind, by type.
            shares = PerConnection(heapBefore.LiveByType, heapAfter.LiveByType, open, 25);
            garbage = PerConnection(heapBefore.GarbageByType(), heapAfter.GarbageByType(), open, 8);
            // The RSS grown, split: live objects, garbage, the GC's free space, and what is outside the GC heap.
            double Kb(long bytes) => bytes / 1024.0 / open;
            liveKb = Kb(heapAfter.LiveBytes - heapBefore.LiveBytes);
            garbageKb = Kb(heapAfter.AllObjectBytes - heapAfter.LiveBytes - (heapBefore.AllObjectBytes - heapBefore.LiveBytes));
            gcFreeKb = Kb(heapAfter.CommittedBytes - heapAfter.AllObjectBytes - (heapBefore.CommittedBytes - heapBefore.AllObjectBytes));
            outsideKb = Kb((after - before) * 1024 - (heapAfter.CommittedBytes - heapBefore.CommittedBytes));
        }
        await Task.WhenAll(feeds.Select(f => f.DisposeAsync().AsTask()));
        return new ConnectionsResult(connections - (int)connected.CurrentCount, before, after, (after - before) / (double)open, seconds,
            liveKb, shares, garbageKb, garbage, gcFreeKb, outsideKb);
    }

    /// <summary>The types that grew most between two heap snapshots, per connection.</summary>
    private static List<HeapShare> PerConnection(
        Dictionary<string, (long Bytes, long Count)> before, Dictionary<string, (long Bytes, long Count)> after, long open, int top) =>
        after.Select(kv => (Type: kv.Key, Bytes: kv.Value.Bytes - before.GetValueOrDefault(kv.Key).Bytes,
                Count: kv.Value.Count - before.GetValueOrDefault(kv.Key).Count))
            .Where(g => g.Bytes > 0).OrderByDescending(g => g.Bytes).Take(top)
            .Select(g => new HeapShare(g.Type, Math.Round(g.Bytes / (double)open), Math.Round(g.Count / (double)open, 2))).ToList();

    /// <summary>
    /// A client that missed events reconnects from its position: time until it holds all. A smaller catch-up by another
    /// user runs first, so the replica's catch-up path is warm, as it is on a replica that has been up for a while (the
    /// cold-start scenario measures a replica that just started). On realtime-2: realtime-1 may still be closing the
    /// connections scenario's 10,000 connections, which doubled the time.
    /// </summary>
    public static async Task<CatchUpResult> CatchUpAsync(Topology topology, int missed)
    {
        var warming = Math.Max(1, missed / 10);
        await CatchUpOnAsync(topology, await UserWhoMissedAsync(topology, warming), topology.RealtimeUrls[1], warming);
        var userId = await UserWhoMissedAsync(topology, missed);
        var cpu = CpuMeter.Start(topology);
        var (seconds, received, first) = await CatchUpOnAsync(topology, userId, topology.RealtimeUrls[1], missed);
        return new CatchUpResult(missed, seconds, received, first * 1000, cpu.MillisecondsPer(1));
    }

    /// <summary>A new user with <paramref name="missed"/> stored events and no client connected.</summary>
    private static async Task<Guid> UserWhoMissedAsync(Topology topology, int missed)
    {
        var payloads = Payloads.Load();
        var (userId, repo) = await topology.NewUserWithRepoAsync($"bench/catchup-{Guid.NewGuid():N}");
        Http.BaseAddress ??= topology.ApiUrl;
        var body = Payloads.For(payloads[0].Template, repo.FullName);
        var sent = 0;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref sent) <= missed)
            {
                await Webhooks.SendAsync(Http, repo, "push", body, Guid.NewGuid().ToString("N"));
            }
        })));
        return userId;
    }

    /// <summary>The user's client connects to <paramref name="realtime"/> from position 0: time until it holds all.</summary>
    private static async Task<(double Seconds, long Received, double FirstEventSeconds)> CatchUpOnAsync(Topology topology, Guid userId, Uri realtime, int missed)
    {
        await using var feed = topology.ClientFor(userId, realtime).Watch(fromPosition: 0);
        var started = Stopwatch.GetTimestamp();
        long count = 0;
        var first = 0.0;
        await foreach (var _ in feed.ReadAllAsync())
        {
            if (count == 0)
            {
                first = Stopwatch.GetElapsedTime(started).TotalSeconds;
            }
            if (++count >= missed)
            {
                break;
            }
        }
        return (Stopwatch.GetElapsedTime(started).TotalSeconds, count, first);
    }

    /// <summary>
    /// A replica that just started (a deploy, a scale-out) is what reconnecting clients meet first. For each build of
    /// Realtime (the JIT-only build, and the ReadyToRun build a deploy publishes), realtime-2 is restarted and then
    /// serves two catch-ups of <paramref name="missed"/> events, each for a user who missed them: time to healthy,
    /// the first catch-up, the second.
    /// </summary>
    public static async Task<IReadOnlyList<ColdStartResult>> ColdStartAsync(Topology topology, int missed)
    {
        var builds = new List<(string Name, string? Dll, Dictionary<string, string>? Settings)> { ("JIT (dotnet build)", null, null) };
        var readyToRun = await topology.PublishReadyToRunAsync("CoTeX.Realtime");
        builds.Add(("ReadyToRun (dotnet publish)", readyToRun, null));
        builds.Add(("ReadyToRun, TieredPGO off", readyToRun, new() { ["DOTNET_TieredPGO"] = "0" }));

        var results = new List<ColdStartResult>();
        foreach (var (name, dll, settings) in builds)
        {
            var first = await UserWhoMissedAsync(topology, missed);
            var second = await UserWhoMissedAsync(topology, missed);
            var healthy = await topology.RestartAsync("realtime-2", dll, settings);
            var (firstSeconds, firstReceived, _) = await CatchUpOnAsync(topology, first, topology.RealtimeUrls[1], missed);
            var (secondSeconds, secondReceived, _) = await CatchUpOnAsync(topology, second, topology.RealtimeUrls[1], missed);
            results.Add(new ColdStartResult(name, missed, healthy.TotalMilliseconds, firstSeconds * 1000, secondSeconds * 1000,
                firstReceived + secondReceived == 2L * missed));
        }
        await topology.RestartAsync("realtime-2"); // as the other scenarios expect it
        return results;
    }

    /// <summary>
    /// Strangers flood the per-repo receiver with unsigned 25 MB bodies while GitHub delivers from its own range: the
    /// Api's RSS (sampled every 50 ms) and the genuine deliveries' ack latency, first without the flood, then during
    /// it. The topology puts 127.0.0.1 (every other scenario's sender) inside the sender ranges and so 127.0.0.3 outside
    /// (Topology.cs); run with
    /// <c>--set Webhooks__MaxUnverifiedBytes=...</c> to compare budgets.
    /// </summary>
    public static async Task<UnsignedFloodResult> UnsignedFloodAsync(Topology topology, int flooders, TimeSpan duration)
    {
        const int bodyBytes = 25 * 1024 * 1024;
        const int genuinePerSecond = 20;
        var (_, repo) = await topology.NewUserWithRepoAsync("bench/flood");
        var push = Payloads.For(Payloads.Load().First(p => p.EventType == "push").Template, repo.FullName);
        using var gitHub = FromAddress(topology.ApiUrl, "127.0.0.1");
        using var stranger = FromAddress(topology.ApiUrl, "127.0.0.3");
        var pid = topology.ServicePids().Single(s => s.Name == "api").Pid;

        async Task<(List<double> Latencies, long Failed)> GenuineAsync(TimeSpan length)
        {
            var latencies = new List<double>();
            long failed = 0;
            var stopAt = Stopwatch.GetTimestamp() + (long)(length.TotalSeconds * Stopwatch.Frequency);
            for (var n = 0; Stopwatch.GetTimestamp() < stopAt; n++)
            {
                var begin = Stopwatch.GetTimestamp();
                var (ok, _) = await Webhooks.SendAsync(gitHub, repo, "push", push, $"genuine-{Guid.NewGuid():N}");
                latencies.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
                failed += ok ? 0 : 1;
                var next = begin + (long)(Stopwatch.Frequency / (double)genuinePerSecond);
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait);
                }
            }
            return (latencies, failed);
        }

        await GenuineAsync(TimeSpan.FromSeconds(2)); // warm-up: JIT, the repo's key in the cache, connections
        var (quiet, quietFailed) = await GenuineAsync(duration);
        var rssQuiet = RssKb(pid);

        var body = new byte[bodyBytes];
        Array.Fill(body, (byte)'a');
        var answers = new ConcurrentDictionary<string, long>();
        long offered = 0;
        using var stop = new CancellationTokenSource();
        var peakRss = rssQuiet;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peakRss = Math.Max(peakRss, RssKb(pid));
                await Task.Delay(50);
            }
        });
        var flood = Enumerable.Range(0, flooders).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repo.Id}")
                {
                    Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
                };
                request.Headers.Add("X-GitHub-Event", "push");
                request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
                request.Headers.Add("X-Hub-Signature-256", "sha256=" + new string('0', 64));
                Interlocked.Add(ref offered, bodyBytes);
                string outcome;
                try
                {
                    using var response = await stranger.SendAsync(request, stop.Token);
                    outcome = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    outcome = "closed";
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                answers.AddOrUpdate(outcome, 1, (_, n) => n + 1);
            }
        })).ToList();
        await Task.Delay(1000); // the flood is under way before GitHub's deliveries are timed
        var started = Stopwatch.GetTimestamp();
        var (during, duringFailed) = await GenuineAsync(duration);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(flood);
        await sampler;

        var settings = topology.Settings;
        long Setting(string name, long fallback) => settings.TryGetValue(name, out var value) ? long.Parse(value, CultureInfo.InvariantCulture) : fallback;
        return new UnsignedFloodResult(flooders, seconds, bodyBytes / 1048576,
            Setting("Webhooks__MaxUnverifiedBytes", 96L << 20) / 1048576, Setting("Webhooks__MaxUnverifiedBytesOutsideRanges", 64L << 20) / 1048576,
            new SortedDictionary<string, long>(answers), Interlocked.Read(ref offered) / 1048576.0, rssQuiet / 1024, peakRss / 1024,
            genuinePerSecond, Percentiles.Of(quiet), Percentiles.Of(during), during.Count - duringFailed, duringFailed + quietFailed);
    }

    /// <summary>A client whose connections leave from <paramref name="source"/> (all of 127.0.0.0/8 is loopback on Linux).</summary>
    private static HttpClient FromAddress(Uri baseAddress, string source) =>
        new(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 256,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
                    System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(source), 0));
                    var host = context.DnsEndPoint.Host is "localhost" ? "127.0.0.1" : context.DnsEndPoint.Host;
                    await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(host), context.DnsEndPoint.Port), cancellationToken);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(60) };

    internal static long RssKb(int pid) =>
        long.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    internal static string[] Psql(Topology topology) =>
        ["-h", "127.0.0.1", "-p", topology.PostgresPort.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", "cotexdb"];

    /// <summary>Runs a command-line tool (psql, pgbench, wrk) to the end; its output, or an exception with its errors.</summary>
    internal static Task<string> RunAsync(string file, IEnumerable<string> arguments) =>
        ChildProcess.RunAsync(file, arguments, timeout: TimeSpan.FromHours(1), environment: new Dictionary<string, string> { ["PGCONNECT_TIMEOUT"] = "10" });
}
