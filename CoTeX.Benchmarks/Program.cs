using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CoTeX.Benchmarks;

// Benchmarks for CoTeX on a topology of its own (Topology.cs: Release builds, no orchestrator proxies). Writes a
// Markdown and a JSON report.
//   dotnet run -c Release --project CoTeX.Benchmarks -- [--quick] [--scenarios ingest,e2e,connections,catchup,coldstart,unsigned-flood,busy-repo,fanout,storm] ...
// connections-100k (idle connections on one replica in steps up to --scale-connections) runs only when named.

// The connections scenario walks a replica's heap in a child process (HeapSnapshots): this is that child.
if (args is [HeapSnapshots.Verb, var walkPid])
{
    return HeapSnapshots.Walk(int.Parse(walkPid, CultureInfo.InvariantCulture));
}

var quick = new Option<bool>("--quick") { Description = "Run every scenario briefly (proves the tool works; numbers mean little)." };
var scenarios = new Option<string>("--scenarios") { DefaultValueFactory = _ => "ingest,e2e,connections,catchup,coldstart,unsigned-flood,busy-repo,fanout,storm", Description = "Comma-separated; connections-100k runs only when named." };
var flooders = new Option<int>("--flooders") { DefaultValueFactory = _ => 16, Description = "Unsigned flood: concurrent strangers posting 25 MB bodies." };
var senders = new Option<int>("--senders") { DefaultValueFactory = _ => 32, Description = "Ingest: concurrent webhook senders (and pgbench clients)." };
var seconds = new Option<int>("--seconds") { DefaultValueFactory = _ => 20, Description = "Ingest and end-to-end: duration." };
var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 30, Description = "Ingest and end-to-end: seconds of the same load before measuring (the services JIT-compile their hot paths for ~25 s after start)." };
var repos = new Option<int>("--repos") { DefaultValueFactory = _ => 16, Description = "Ingest: repos (each with its own user) the load is spread over." };
var clients = new Option<int>("--clients") { DefaultValueFactory = _ => 1000, Description = "End-to-end: connected clients over both replicas." };
var clientsPerUser = new Option<int>("--clients-per-user") { DefaultValueFactory = _ => 2, Description = "End-to-end: desktop clients of each user (each user tracks one repo); --clients-per-user equal to --clients sends every event to every client." };
var rate = new Option<int>("--rate") { DefaultValueFactory = _ => 1000, Description = "End-to-end: webhooks per second." };
var connections = new Option<int>("--connections") { DefaultValueFactory = _ => 10_000, Description = "Connections: idle clients on one replica." };
var scaleConnections = new Option<int>("--scale-connections") { DefaultValueFactory = _ => 100_000, Description = "connections-100k: idle clients on one replica, in steps of 10k, 25k, 50k, 100k up to this." };
var stormClients = new Option<int>("--storm-clients") { DefaultValueFactory = _ => 50_000, Description = "Storm: clients over both replicas, one per user (at most what one replica may hold here; keep well below it, the survivor also takes the connects under way)." };
var stormMissed = new Option<int>("--storm-missed") { DefaultValueFactory = _ => 20, Description = "Storm: events each client of the killed replica missed." };
var stormKilledShare = new Option<double>("--storm-killed-share") { DefaultValueFactory = _ => 0.5, Description = "Storm: share of the clients on the replica that is killed (1: all of them reconnect)." };
var missed = new Option<int>("--missed") { DefaultValueFactory = _ => 10_000, Description = "Catch-up: events the client missed." };
var busySenders = new Option<int>("--busy-senders") { DefaultValueFactory = _ => 16, Description = "Busy repo: wrk connections, all on one repo of one user, then over as many repos of as many users." };
var busyRounds = new Option<int>("--busy-rounds") { DefaultValueFactory = _ => 3, Description = "Busy repo: rounds of --seconds per shape, which shape goes first alternating." };
var teams = new Option<string>("--teams") { DefaultValueFactory = _ => "10,100,1000", Description = "Fan-out: team sizes (users following one repository through the GitHub App), comma-separated." };
var fanOutDeliveries = new Option<int>("--fanout-deliveries") { DefaultValueFactory = _ => 20, Description = "Fan-out: measured deliveries per team size, one at a time (after 3 unmeasured)." };
var basePort = new Option<int>("--base-port") { DefaultValueFactory = _ => 6180, Description = "Ports of the topology: Api, Realtime ×2, Worker from here; Postgres +100, Redis +101." };
var dataDir = new Option<DirectoryInfo?>("--data") { Description = "Folder for the topology's Postgres, Redis and logs, emptied first (default .data/bench in the repo)." };
var set = new Option<string[]>("--set") { AllowMultipleArgumentsPerToken = true, Description = "Service settings as NAME=VALUE environment variables (e.g. GitHub__IngestWriters=2), for every service." };
var output = new Option<DirectoryInfo?>("--out") { Description = "Report folder (default docs/benchmarks in the repo, artifacts/benchmarks with --quick): report.md, report.json and the charts." };

var root = new RootCommand("CoTeX benchmarks") { quick, scenarios, senders, seconds, warmup, repos, clients, clientsPerUser, rate, connections, scaleConnections, stormClients, stormMissed, stormKilledShare, missed, flooders, busySenders, busyRounds, teams, fanOutDeliveries, basePort, dataDir, set, output };
root.SetAction(async (parse, cancellationToken) =>
{
    var isQuick = parse.GetValue(quick);
    var settings = new Dictionary<string, object>
    {
        ["quick"] = isQuick,
        ["senders"] = isQuick ? 4 : parse.GetValue(senders),
        ["seconds"] = isQuick ? 2 : parse.GetValue(seconds),
        ["warmup"] = isQuick ? 1 : parse.GetValue(warmup),
        ["repos"] = isQuick ? 2 : parse.GetValue(repos),
        ["clients"] = isQuick ? 20 : parse.GetValue(clients),
        ["clientsPerUser"] = parse.GetValue(clientsPerUser),
        ["rate"] = isQuick ? 50 : parse.GetValue(rate),
        ["connections"] = isQuick ? 100 : parse.GetValue(connections),
        ["missed"] = isQuick ? 200 : parse.GetValue(missed),
        ["scaleConnections"] = isQuick ? 200 : parse.GetValue(scaleConnections),
        ["stormClients"] = isQuick ? 100 : parse.GetValue(stormClients),
        ["stormMissed"] = parse.GetValue(stormMissed),
        ["stormKilledShare"] = parse.GetValue(stormKilledShare),
        ["flooders"] = isQuick ? 4 : parse.GetValue(flooders),
        ["busySenders"] = isQuick ? 4 : parse.GetValue(busySenders),
        ["busyRounds"] = isQuick ? 1 : parse.GetValue(busyRounds),
        ["teams"] = isQuick ? "3,10" : parse.GetValue(teams)!,
        ["fanoutDeliveries"] = isQuick ? 5 : parse.GetValue(fanOutDeliveries),
    };
    var serviceSettings = (parse.GetValue(set) ?? []).Select(s => s.Split('=', 2))
        .ToDictionary(p => p[0], p => p.Length == 2 ? p[1] : throw new ArgumentException($"--set takes NAME=VALUE, not '{p[0]}'"));
    if (serviceSettings.Count > 0)
    {
        settings["services"] = string.Join(" ", serviceSettings.Select(kv => $"{kv.Key}={kv.Value}"));
    }
    var selected = parse.GetValue(scenarios)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
    var repoRoot = FindRepoRoot();
    Console.WriteLine($"Starting the topology (Release) from {repoRoot} ...");
    var data = parse.GetValue(dataDir)?.FullName ?? Path.Combine(repoRoot, ".data", "bench");
    await using var topology = await Topology.StartAsync(repoRoot, data, parse.GetValue(basePort), serviceSettings);

    var results = new Dictionary<string, object>();
    if (selected.Contains("ingest"))
    {
        var r = await Scenarios.IngestAsync(topology, (int)settings["senders"], TimeSpan.FromSeconds((int)settings["seconds"]),
            TimeSpan.FromSeconds((int)settings["warmup"]), (int)settings["repos"]);
        Console.WriteLine($"ingest: {r.AckedPerSecond:F0} acked/s ({r.Acked} acked, {r.Failed} failed), ack {r.AckLatency}; " +
            $"pgbench {r.PgbenchTps:F0} tps (bare table {r.PgbenchBareTps:F0}); ratio {r.Ratio:F2} (bare {r.RatioBare:F2}); " +
            $"CPU ms per webhook: {Cpu(r.CpuMsPerWebhook)}");
        if (r.Wrk is { } w)
        {
            Console.WriteLine($"ingest (wrk): {w.AckedPerSecond:F0} acked/s ({w.Requests} requests, {w.Errors} errors), ack {w.AckLatency}; " +
                $"ratio {w.Ratio:F2}; CPU ms per webhook: {Cpu(w.CpuMsPerWebhook)}");
        }
        results["ingest"] = r;
    }
    if (selected.Contains("e2e"))
    {
        var r = await Scenarios.EndToEndAsync(topology, (int)settings["clients"], (int)settings["clientsPerUser"], (int)settings["rate"], TimeSpan.FromSeconds((int)settings["seconds"]),
            TimeSpan.FromSeconds((int)settings["warmup"]));
        Console.WriteLine($"e2e: {r.Delivered}/{r.Expected} delivered at {r.AchievedRate:F0}/s to {r.Clients} clients ({r.ClientsPerUser} per user), latency {r.Latency}; " +
            $"ack {r.AckLatency}; CPU ms per webhook: {Cpu(r.CpuMsPerWebhook)}");
        results["e2e"] = r;
    }
    if (selected.Contains("connections"))
    {
        var r = await Scenarios.ConnectionsAsync(topology, (int)settings["connections"]);
        Console.WriteLine($"connections: {r.Connections} connected in {r.SecondsToConnect:F1} s, {r.KbPerConnection:F1} KB RSS per connection" +
            (r.LiveKbPerConnection is { } live
                ? $": live objects {live:F1}, garbage {r.GarbageKbPerConnection:F1}, GC free space {r.GcFreeKbPerConnection:F1}, outside the GC heap {r.OutsideGcHeapKbPerConnection:F1} KB"
                : ""));
        results["connections"] = r;
    }
    if (selected.Contains("catchup"))
    {
        var r = await Scenarios.CatchUpAsync(topology, (int)settings["missed"]);
        Console.WriteLine($"catch-up: {r.Received}/{r.Missed} events in {r.SecondsToHoldAll * 1000:F0} ms (first after {r.MsToFirstEvent:F0} ms); CPU ms: {Cpu(r.CpuMs)}");
        results["catchup"] = r;
    }
    if (selected.Contains("coldstart"))
    {
        var runs = await Scenarios.ColdStartAsync(topology, (int)settings["missed"]);
        foreach (var r in runs)
        {
            Console.WriteLine($"cold start, {r.Build}: healthy in {r.MsToHealthy:F0} ms, first catch-up of {r.Missed} {r.MsFirstCatchUp:F0} ms, " +
                $"second {r.MsSecondCatchUp:F0} ms{(r.Complete ? "" : " (INCOMPLETE)")}");
        }
        results["coldstart"] = runs;
    }
    if (selected.Contains("unsigned-flood"))
    {
        var r = await Scenarios.UnsignedFloodAsync(topology, (int)settings["flooders"], TimeSpan.FromSeconds((int)settings["seconds"]));
        Console.WriteLine($"unsigned flood: {r.Flooders} strangers x {r.BodyMb} MB ({r.FloodMbOffered:F0} MB offered; answers " +
            $"{string.Join(", ", r.FloodAnswers.Select(a => $"{a.Key} {a.Value}"))}); budget {r.BudgetMb} MB ({r.BudgetOutsideMb} MB outside the ranges); " +
            $"Api RSS {r.RssQuietMb} MB quiet, {r.RssPeakMb} MB peak; genuine ack quiet {r.GenuineQuiet}; during the flood {r.GenuineFlood} " +
            $"({r.GenuineAcked} acked, {r.GenuineFailed} failed)");
        results["unsignedFlood"] = r;
    }
    if (selected.Contains("busy-repo"))
    {
        if (await Scenarios.BusyRepoAsync(topology, (int)settings["busySenders"], TimeSpan.FromSeconds((int)settings["seconds"]),
                TimeSpan.FromSeconds((int)settings["warmup"]), (int)settings["busyRounds"]) is { } r)
        {
            foreach (var (shape, run) in new[] { ("one repo", r.OneRepo), ($"{r.Repos} repos", r.Spread) })
            {
                Console.WriteLine($"busy repo, {r.Senders} senders on {shape}: {run.AckedPerSecond:F0} acked/s ({run.Requests} requests, {run.Errors} errors), " +
                    $"ack {run.AckLatency}; {run.DeliveriesPerBatch:F1} events per batch; CPU ms per webhook: {Cpu(run.CpuMsPerWebhook)}");
            }
            Console.WriteLine($"busy repo: one repo / {r.Repos} repos {r.Ratio:F2} (rounds: {string.Join(", ", r.RoundRatios.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))})");
            results["busyRepo"] = r;
        }
        else
        {
            Console.WriteLine("busy repo: skipped (wrk is not installed)");
        }
    }
    if (selected.Contains("fanout"))
    {
        var sizes = ((string)settings["teams"]).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        var runs = await FanOut.RunAsync(topology, sizes, (int)settings["fanoutDeliveries"], warmup: 3);
        foreach (var r in runs)
        {
            Console.WriteLine($"fan-out, {r.Followers} followers: ack {r.AckLatency}; delivery {r.DeliveryLatency} ({r.Delivered}/{r.Expected}); " +
                $"last follower p50 {r.LastFollowerLatency.P50:F1} ms, p99 {r.LastFollowerLatency.P99:F1} ms; " +
                $"WAL {r.WalBytesPerDelivery / 1024:F1} KB per delivery, tables +{r.TableBytesPerDelivery / 1024:F1} KB per delivery; " +
                $"rows per delivery: {r.EventRowsPerDelivery:F0} events, {r.PayloadRowsPerDelivery:F0} payloads ({r.PayloadBytes / 1024.0:F1} KB payload)");
        }
        results["fanout"] = runs;
    }
    // Last: the storm kills and restarts realtime-2.
    if (selected.Contains("connections-100k"))
    {
        var r = await ScaleScenarios.ConnectionsAtScaleAsync(topology, (int)settings["scaleConnections"], isQuick);
        ScaleReport.Console(r);
        results["connections100k"] = r;
    }
    if (selected.Contains("storm"))
    {
        var r = await ScaleScenarios.StormAsync(topology, (int)settings["stormClients"], (int)settings["stormMissed"], (double)settings["stormKilledShare"], isQuick);
        ScaleReport.Console(r);
        results["storm"] = r;
    }

    var machine = new Dictionary<string, object>
    {
        ["cores"] = Environment.ProcessorCount,
        ["memoryGiB"] = Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1024.0 / 1024 / 1024, 1),
        ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        ["dotnet"] = Environment.Version.ToString(),
        ["cpu"] = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?" : "?",
    };
    var report = new Dictionary<string, object> { ["date"] = DateTimeOffset.UtcNow, ["machine"] = machine, ["settings"] = settings, ["results"] = results };
    var folder = parse.GetValue(output) ?? new DirectoryInfo(Path.Combine(repoRoot, isQuick ? "artifacts" : "docs", "benchmarks"));
    folder.Create();
    DrawCharts(folder.FullName, results);
    ScaleReport.Charts(folder.FullName, results);
    var json = JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
    await File.WriteAllTextAsync(Path.Combine(folder.FullName, "report.json"), json, cancellationToken);
    await File.WriteAllTextAsync(Path.Combine(folder.FullName, "report.md"), Markdown(report, results, folder.FullName), cancellationToken);
    Console.WriteLine($"Report: {Path.Combine(folder.FullName, "report.md")}");
    return 0;
});
return await root.Parse(args).InvokeAsync();

static string FindRepoRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "CoTeX.sln")))
        {
            return dir.FullName;
        }
    }
    throw new InvalidOperationException("Run the benchmarks from inside the CoTeX repository (CoTeX.sln not found).");
}

// Every part, and the breakdowns ("postgres: walwriter", "other: kworker") that are not zero.
static string Cpu(IReadOnlyDictionary<string, double> perWebhook) =>
    perWebhook.Count == 0 ? "n/a" : string.Join(", ", perWebhook.Where(kv => !CpuMeter.IsBreakdown(kv.Key) || Math.Round(kv.Value, 2) != 0)
        .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F2}")));

// Charts the report links to (ingest-latency.png, e2e-latency.png, busy-repo-latency.png, fanout-latency.png, cpu.png), for the scenarios that ran.
static void DrawCharts(string folder, Dictionary<string, object> results)
{
    var ingest = results.GetValueOrDefault("ingest") as IngestResult;
    var e2e = results.GetValueOrDefault("e2e") as EndToEndResult;
    if (ingest is not null)
    {
        var series = new List<(string, IReadOnlyList<double>)> { ($"ack, .NET load tool ({ingest.AckedPerSecond:F0}/s)", ingest.AckMilliseconds) };
        if (ingest.Wrk is { } w)
        {
            series.Add(($"ack, wrk ({w.AckedPerSecond:F0}/s)", w.AckMilliseconds));
        }
        Charts.Latency(Path.Combine(folder, "ingest-latency.png"), $"Ingest: webhook ack latency, {ingest.Senders} senders as fast as acked", series);
    }
    if (e2e is not null)
    {
        Charts.Latency(Path.Combine(folder, "e2e-latency.png"),
            $"End-to-end: {e2e.Clients} clients ({e2e.ClientsPerUser} per user), {e2e.AchievedRate:F0} webhooks/s",
            [("webhook sent → client received", e2e.LatencyMilliseconds), ("webhook ack", e2e.AckMilliseconds)]);
    }
    if (results.GetValueOrDefault("busyRepo") is BusyRepoResult busy)
    {
        Charts.Latency(Path.Combine(folder, "busy-repo-latency.png"), $"One busy repository: ack latency, {busy.Senders} wrk senders as fast as acked",
            [($"one repo of one user ({busy.OneRepo.AckedPerSecond:F0}/s)", busy.OneRepo.AckMilliseconds),
             ($"{busy.Repos} repos of {busy.Repos} users ({busy.Spread.AckedPerSecond:F0}/s)", busy.Spread.AckMilliseconds)]);
    }
    if (results.GetValueOrDefault("fanout") is IReadOnlyList<FanOutRun> fanOut)
    {
        Charts.BySize(Path.Combine(folder, "fanout-latency.png"), "Team fan-out: one GitHub App delivery, latency by team size",
            "followers of the repository", fanOut.Select(r => r.Followers).ToList(),
            [("ack p50", fanOut.Select(r => r.AckLatency.P50).ToList()), ("ack p99", fanOut.Select(r => r.AckLatency.P99).ToList()),
             ("delivery to each follower p50", fanOut.Select(r => r.DeliveryLatency.P50).ToList()),
             ("delivery to each follower p99", fanOut.Select(r => r.DeliveryLatency.P99).ToList())]);
    }
    var cpu = new List<(string, IReadOnlyDictionary<string, double>)>();
    if (ingest is not null)
    {
        cpu.Add(("pgbench insert", ingest.PgbenchCpuMsPerInsert));
        cpu.Add(("ingest, .NET tool", ingest.CpuMsPerWebhook));
        if (ingest.Wrk is { } w)
        {
            cpu.Add(("ingest, wrk", w.CpuMsPerWebhook));
        }
    }
    if (e2e is not null)
    {
        cpu.Add(($"end-to-end {e2e.AchievedRate:F0}/s", e2e.CpuMsPerWebhook));
    }
    if (results.GetValueOrDefault("busyRepo") is BusyRepoResult b)
    {
        cpu.Add(("busy repo: one repo", b.OneRepo.CpuMsPerWebhook));
        cpu.Add(($"busy repo: {b.Repos} repos", b.Spread.CpuMsPerWebhook));
    }
    if (cpu.Count > 0)
    {
        Charts.Cpu(Path.Combine(folder, "cpu.png"), "CPU per webhook (per insert for pgbench), by part (2 shared cores)", cpu);
    }
}

static string Markdown(Dictionary<string, object> report, Dictionary<string, object> results, string folder)
{
    var md = new StringBuilder();
    var inv = CultureInfo.InvariantCulture;
    md.AppendLine(inv, $"# CoTeX benchmark report ({report["date"]:u})").AppendLine();
    md.AppendLine("Machine: " + string.Join(", ", ((Dictionary<string, object>)report["machine"]).Select(kv => $"{kv.Key} {kv.Value}")) + "  ");
    md.AppendLine("Settings: " + string.Join(", ", ((Dictionary<string, object>)report["settings"]).Select(kv => $"{kv.Key} {kv.Value}"))).AppendLine();
    md.AppendLine("Load generator, Postgres, Redis, the Api, both Realtime replicas and the Worker share the same cores.").AppendLine();
    md.AppendLine("| Scenario | Result | Target |").AppendLine("|---|---|---|");
    if (results.GetValueOrDefault("ingest") is IngestResult i)
    {
        md.AppendLine(inv, $"| Ingest ({i.Senders} senders, {i.Seconds:F0} s; {i.PayloadSizes}) | {i.AckedPerSecond:F0} acked/s, ack {i.AckLatency}; {i.Failed} failed | |");
        md.AppendLine(inv, $"| pgbench, single-row insert of the same rows into a table with github_events' indexes, {i.Senders} clients | {i.PgbenchTps:F0} tps | |");
        md.AppendLine(inv, $"| pgbench: CPU ms per insert | {Cpu(i.PgbenchCpuMsPerInsert)} | |");
        md.AppendLine(inv, $"| Ingest / pgbench | **{i.Ratio:F2}** | ≥ 1.0 |");
        md.AppendLine(inv, $"| Ingest: CPU ms per acked webhook | {Cpu(i.CpuMsPerWebhook)} | |");
        if (i.Wrk is { } w)
        {
            md.AppendLine(inv, $"| Ingest driven by wrk ({i.Senders} connections, pre-signed bodies, {w.Seconds:F0} s) | {w.AckedPerSecond:F0} acked/s, ack {w.AckLatency}; {w.Errors} errors | |");
            md.AppendLine(inv, $"| Ingest (wrk) / pgbench | **{w.Ratio:F2}** | ≥ 1.0 |");
            md.AppendLine(inv, $"| Ingest (wrk): CPU ms per acked webhook | {Cpu(w.CpuMsPerWebhook)} | |");
        }
        md.AppendLine(inv, $"| pgbench into a bare table (no indexes, default compression) | {i.PgbenchBareTps:F0} tps; ingest / bare {i.RatioBare:F2} | |");
    }
    if (results.GetValueOrDefault("e2e") is EndToEndResult e)
    {
        md.AppendLine(inv, $"| End-to-end ({e.Clients} clients, {e.ClientsPerUser} per user, {e.TargetRate}/s target, {e.AchievedRate:F0}/s achieved) | {e.Latency}; delivered {e.Delivered}/{e.Expected} | p50 < 5 ms, p99 < 25 ms |");
        md.AppendLine(inv, $"| End-to-end: webhook ack | {e.AckLatency} | |");
        md.AppendLine(inv, $"| End-to-end: CPU ms per webhook | {Cpu(e.CpuMsPerWebhook)} | |");
    }
    if (results.GetValueOrDefault("connections") is ConnectionsResult c)
    {
        md.AppendLine(inv, $"| Connections ({c.Connections} idle on one replica, {c.SecondsToConnect:F1} s to connect) | **{c.KbPerConnection:F1} KB** RSS per connection ({c.RssBeforeKb} → {c.RssAfterKb} KB) | ≤ 20 KB |");
        if (c.LiveKbPerConnection is { } live)
        {
            md.AppendLine(inv, $"| Connections: the RSS per connection, split | live managed objects {live:F1} KB (by type below), garbage not yet collected {c.GarbageKbPerConnection:F1} KB, the GC's free space {c.GcFreeKbPerConnection:F1} KB, outside the GC heap {c.OutsideGcHeapKbPerConnection:F1} KB | |");
        }
    }
    if (results.GetValueOrDefault("catchup") is CatchUpResult u)
    {
        md.AppendLine(inv, $"| Catch-up ({u.Missed} missed events, warm replica) | **{u.SecondsToHoldAll * 1000:F0} ms** until the client holds all ({u.Received}); the first after {u.MsToFirstEvent:F0} ms | < 250 ms |");
        md.AppendLine(inv, $"| Catch-up: CPU ms while the client caught up | {Cpu(u.CpuMs)} | |");
    }
    if (results.GetValueOrDefault("coldstart") is IReadOnlyList<ColdStartResult> cold)
    {
        foreach (var r in cold)
        {
            md.AppendLine(inv, $"| Replica just restarted, {r.Build}: healthy after; first catch-up of {r.Missed}; second | {r.MsToHealthy:F0} ms; **{r.MsFirstCatchUp:F0} ms**; {r.MsSecondCatchUp:F0} ms{(r.Complete ? "" : " (incomplete)")} | first < 1 s |");
        }
    }
    if (results.GetValueOrDefault("connections") is ConnectionsResult { LiveBytesPerConnection: { } shares } connectionsResult)
    {
        AppendShares("Live objects per idle connection, by type (reachable from the GC roots after connecting, minus before):", shares);
        if (connectionsResult.GarbageBytesPerConnection is { } garbage)
        {
            AppendShares("Garbage per connection, by type (on the heap after connecting but reachable from no root, minus before; \"Free\" is the GC's gaps between objects):", garbage);
        }
    }
    if (results.GetValueOrDefault("unsignedFlood") is UnsignedFloodResult f)
    {
        md.AppendLine(inv, $"| Unsigned flood ({f.Flooders} strangers x {f.BodyMb} MB, {f.FloodMbOffered:F0} MB offered in {f.Seconds:F0} s; answers {string.Join(", ", f.FloodAnswers.Select(a => $"{a.Key} {a.Value}"))}) | Api RSS {f.RssQuietMb} MB quiet, **{f.RssPeakMb} MB** peak; budget {f.BudgetMb} MB ({f.BudgetOutsideMb} MB outside the ranges) | peak ≤ 512 MB |");
        md.AppendLine(inv, $"| Unsigned flood: GitHub's signed deliveries, {f.GenuinePerSecond}/s, ack | quiet {f.GenuineQuiet}; **during the flood {f.GenuineFlood}**; {f.GenuineFailed} failed | < 10 s, none failed |");
    }
    if (results.GetValueOrDefault("busyRepo") is BusyRepoResult busy)
    {
        foreach (var (shape, run) in new[] { ("all on one repo of one user", busy.OneRepo), ($"over {busy.Repos} repos of {busy.Repos} users", busy.Spread) })
        {
            md.AppendLine(inv, $"| Busy repo: {busy.Senders} wrk senders {shape} ({run.Seconds:F0} s) | {run.AckedPerSecond:F0} acked/s, ack {run.AckLatency}; {run.Errors} errors; {run.DeliveriesPerBatch:F1} events per batch | |");
            md.AppendLine(inv, $"| Busy repo, {shape}: CPU ms per acked webhook | {Cpu(run.CpuMsPerWebhook)} | |");
        }
        md.AppendLine(inv, $"| Busy repo: one repo / {busy.Repos} repos ({busy.Rounds} rounds, each shape first in turn; by round {string.Join(", ", busy.RoundRatios.Select(x => x.ToString("F2", inv)))}) | **{busy.Ratio:F2}** | ≥ 0.9 |");
    }
    if (results.GetValueOrDefault("fanout") is IReadOnlyList<FanOutRun> fanOut)
    {
        foreach (var r in fanOut)
        {
            md.AppendLine(inv, $"| Fan-out: one GitHub App push ({r.PayloadBytes / 1024.0:F1} KB) to {r.Followers} followers, {r.Deliveries} deliveries one at a time | ack {r.AckLatency}; to each follower {r.DeliveryLatency}; to the last {r.LastFollowerLatency}; delivered {r.Delivered}/{r.Expected} | ack < 10 s |");
            md.AppendLine(inv, $"| Fan-out, {r.Followers} followers: Postgres per delivery | WAL **{r.WalBytesPerDelivery / 1024:F1} KB**; tables +{r.TableBytesPerDelivery / 1024:F1} KB; {r.EventRowsPerDelivery:F0} event rows, {r.PayloadRowsPerDelivery:F0} payload rows | |");
        }
    }
    ScaleReport.Markdown(md, results);
    md.AppendLine();
    foreach (var chart in new[] { "ingest-latency.png", "e2e-latency.png", "busy-repo-latency.png", "fanout-latency.png", "cpu.png", "connections-memory.png", "storm-timeline.png" }.Where(c => File.Exists(Path.Combine(folder, c))))
    {
        md.AppendLine(inv, $"![{chart}]({chart})");
    }
    return md.ToString();

    void AppendShares(string title, IReadOnlyList<HeapShare> rows)
    {
        md.AppendLine().AppendLine(title).AppendLine();
        md.AppendLine("| Type | Bytes | Objects |").AppendLine("|---|---|---|");
        foreach (var row in rows)
        {
            md.AppendLine(inv, $"| `{row.Type}` | {row.Bytes:F0} | {row.Count:F2} |");
        }
    }
}
