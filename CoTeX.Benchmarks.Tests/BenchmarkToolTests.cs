using System.Text.Json;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Benchmarks;

/// <summary>
/// Proves in CI that the benchmark tool works end to end: <c>--quick</c> runs every scenario for a moment against the
/// real topology the tool starts (Release builds of the services, local Postgres and Redis). Numbers are not asserted,
/// only that each scenario did its work.
/// </summary>
public sealed class BenchmarkToolTests
{
    [Fact]
    public async Task Quick_run_completes_every_scenario_and_writes_the_report()
    {
        var repoRoot = Repository.Root;
        var data = await TestMachine.CreateTempFolderAsync("cotex-bench");
        var output = Path.Combine(Path.GetTempPath(), $"cotex-bench-report-{Guid.NewGuid():N}");
        try
        {
            // Fails with the tool's output if it exits with an error; killed if it runs past 10 minutes.
            var log = await ChildProcess.RunAsync("dotnet",
                ["run", "-c", "Release", "--project", Path.Combine(repoRoot, "CoTeX.Benchmarks"), "--",
                 "--quick", "--base-port", "16180", "--data", data, "--out", output],
                timeout: TimeSpan.FromMinutes(10));

            using var report = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "report.json")));
            var results = report.RootElement.GetProperty("results");
            var ingest = results.GetProperty("ingest");
            ingest.GetProperty("acked").GetInt64().Should().BePositive(log);
            ingest.GetProperty("failed").GetInt64().Should().Be(0, log);
            ingest.GetProperty("pgbenchTps").GetDouble().Should().BePositive(log);
            var e2e = results.GetProperty("e2e");
            e2e.GetProperty("delivered").GetInt64().Should().Be(e2e.GetProperty("expected").GetInt64(), log);
            e2e.GetProperty("expected").GetInt64().Should().BePositive(log);
            var cpu = e2e.GetProperty("cpuMsPerWebhook");
            foreach (var part in new[] { "api", "realtime-1", "realtime-2", "postgres", "whole machine" })
            {
                cpu.GetProperty(part).GetDouble().Should().BeGreaterThanOrEqualTo(0, part);
            }
            cpu.GetProperty("api").GetDouble().Should().BePositive(log);
            if (ingest.GetProperty("wrk").ValueKind != JsonValueKind.Null) // wrk is installed (CI installs it)
            {
                ingest.GetProperty("wrk").GetProperty("requests").GetInt64().Should().BePositive(log);
                ingest.GetProperty("wrk").GetProperty("errors").GetInt64().Should().Be(0, log);
            }
            ingest.GetProperty("pgbenchCpuMsPerInsert").GetProperty("postgres").GetDouble().Should().BePositive(log);
            if (results.TryGetProperty("busyRepo", out var busy)) // wrk is installed
            {
                foreach (var shape in new[] { "oneRepo", "spread" })
                {
                    busy.GetProperty(shape).GetProperty("requests").GetInt64().Should().BePositive(log);
                    busy.GetProperty(shape).GetProperty("errors").GetInt64().Should().Be(0, log);
                    busy.GetProperty(shape).GetProperty("deliveriesPerBatch").GetDouble().Should().BePositive(log);
                }
            }
            else
            {
                log.Should().Contain("busy repo: skipped");
            }
            var connections = results.GetProperty("connections");
            connections.GetProperty("connections").GetInt32().Should().Be(100, log);
            if (connections.GetProperty("liveKbPerConnection").ValueKind != JsonValueKind.Null) // the heap walk worked
            {
                connections.GetProperty("liveKbPerConnection").GetDouble().Should().BePositive(log);
                foreach (var part in new[] { "garbageKbPerConnection", "gcFreeKbPerConnection", "outsideGcHeapKbPerConnection" })
                {
                    connections.GetProperty(part).ValueKind.Should().Be(JsonValueKind.Number, part);
                }
            }
            var catchUp = results.GetProperty("catchup");
            catchUp.GetProperty("received").GetInt64().Should().Be(catchUp.GetProperty("missed").GetInt32(), log);
            foreach (var cold in results.GetProperty("coldstart").EnumerateArray())
            {
                cold.GetProperty("complete").GetBoolean().Should().BeTrue(log);
                cold.GetProperty("msToHealthy").GetDouble().Should().BePositive(log);
            }
            var flood = results.GetProperty("unsignedFlood");
            flood.GetProperty("genuineAcked").GetInt64().Should().BePositive(log);
            flood.GetProperty("genuineFailed").GetInt64().Should().Be(0, log);
            flood.GetProperty("floodMbOffered").GetDouble().Should().BePositive(log);
            flood.GetProperty("rssPeakMb").GetInt64().Should().BePositive(log);
            foreach (var team in results.GetProperty("fanout").EnumerateArray())
            {
                team.GetProperty("expected").GetInt64().Should().BePositive(log);
                team.GetProperty("delivered").GetInt64().Should().Be(team.GetProperty("expected").GetInt64(), log);
                team.GetProperty("eventRowsPerDelivery").GetDouble().Should().Be(team.GetProperty("followers").GetInt32(), log);
                team.GetProperty("walBytesPerDelivery").GetDouble().Should().BePositive(log);
            }
            // The storm (last: it kills and restarts realtime-2): every client of the killed replica caught up, each
            // event exactly once and in order, also across the moves back.
            var storm = results.GetProperty("storm");
            storm.GetProperty("complete").GetBoolean().Should().BeTrue(log);
            storm.GetProperty("reconnecting").GetInt32().Should().BePositive(log);
            foreach (var count in new[] { "lost", "duplicated", "outOfOrder", "unexpected" })
            {
                storm.GetProperty(count).GetInt64().Should().Be(0, count + "\n" + log);
            }
            storm.GetProperty("timeline").GetArrayLength().Should().BePositive(log);
            // Then realtime-2 is back and takes clients: realtime-1 moves the excess until it holds about its share.
            storm.GetProperty("secondsToBalanced").ValueKind.Should().Be(JsonValueKind.Number, "realtime-1 moved clients to the restarted realtime-2\n" + log);
            storm.GetProperty("rebalanceNotices").GetInt32().Should().BePositive(log);
            File.ReadAllText(Path.Combine(output, "report.md")).Should().Contain("Ingest / pgbench").And.Contain("Catch-up")
                .And.Contain("ReadyToRun").And.Contain("Unsigned flood").And.Contain("Fan-out");
            foreach (var chart in new[] { "ingest-latency.png", "e2e-latency.png", "fanout-latency.png", "cpu.png", "storm-timeline.png" })
            {
                new FileInfo(Path.Combine(output, chart)).Length.Should().BeGreaterThan(10_000, chart);
            }
        }
        finally
        {
            Directory.Delete(data, recursive: true);
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }
}
