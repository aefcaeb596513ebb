using System.Diagnostics;
using Aspire.Hosting.Testing;
using CoTeX.AppHost.Infrastructure;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;
using StackExchange.Redis;

namespace CoTeX.Tests.AppHost;

/// <summary>
/// Stopping the AppHost (what Ctrl-C or SIGTERM does to <c>dotnet run --project CoTeX.AppHost</c>) stops everything it
/// started, in order: nothing outlives it, Postgres ends with a clean shutdown (the next start recovers nothing) and
/// Redis keeps its data. Its own AppHost, since the test stops it.
/// </summary>
public sealed class AppHostShutdownTests
{
    /// <summary>The services' own shutdown budget (Shutdown:TimeoutSeconds); the issue's bound on lingering.</summary>
    private static readonly TimeSpan ServiceShutdownTimeout = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task Stopping_the_AppHost_leaves_no_process_behind_Postgres_shut_down_cleanly_and_Redis_data_kept()
    {
        await using var app = new AppHostFixture();
        await app.InitializeAsync();
        var processes = ProcessesStartedFor(app);
        processes.Should().Contain(pid => ProcessTree.CommandLine(pid).Contains("postgres -D"))
            .And.Contain(pid => ProcessTree.CommandLine(pid).StartsWith("redis-server"))
            .And.Contain(pid => ProcessTree.CommandLine(pid).Contains("dcp"));
        var redisConnection = await app.App.GetConnectionStringAsync("redis");
        await using (var redis = await ConnectionMultiplexer.ConnectAsync(redisConnection!))
        {
            await redis.GetDatabase().StringSetAsync("cotex:test:kept", "across a stop");
        }

        var stopwatch = Stopwatch.StartNew();
        await app.StopAsync();
        var stopped = stopwatch.Elapsed;
        await Eventually.SucceedsAsync(() =>
        {
            processes.Where(ProcessTree.IsRunning).Select(pid => $"{pid}: {ProcessTree.CommandLine(pid)}")
                .Should().BeEmpty("nothing the AppHost started outlives it");
            return Task.CompletedTask;
        }, ServiceShutdownTimeout);
        stopped.Should().BeLessThan(ServiceShutdownTimeout + TimeSpan.FromSeconds(15));

        var control = await ChildProcess.RunAsync(Path.Combine(PostgresServer.BinDirectory, "pg_controldata"),
            [Path.Combine(app.DataDirectory, "postgres")]);
        control.Should().MatchRegex(@"Database cluster state:\s+shut down\n");

        // Started again from the same folder, as the next `dotnet run` would: no recovery, the data still there.
        await using var servers = await LocalServers.StartAsync(new LocalInfrastructureOptions
        {
            DataDirectory = app.DataDirectory,
            PostgresPort = TestMachine.FreePort(),
            RedisPort = TestMachine.FreePort(),
        });
        await Eventually.SucceedsAsync(() => // the orchestrator streams a server's output a moment after it is written
        {
            servers.LogsOf(LocalInfrastructure.Postgres).Should().Contain(line => line.Contains("database system is ready to accept connections"));
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(15));
        servers.LogsOf(LocalInfrastructure.Postgres).Should().Contain(line => line.Contains("database system was shut down at"))
            .And.NotContain(line => line.Contains("automatic recovery") || line.Contains("not properly shut down"));
        await using (var connection = await ConnectionMultiplexer.ConnectAsync(servers.RedisConnectionString))
        {
            ((string?)await connection.GetDatabase().StringGetAsync("cotex:test:kept")).Should().Be("across a stop");
        }
        foreach (var server in new[] { LocalInfrastructure.Postgres, LocalInfrastructure.Redis })
        {
            await servers.StopAsync(server);
            await Eventually.SucceedsAsync(() => // the exit code may be reported just after the state
            {
                servers.ExitCodeOf(server).Should().Be(0, $"{server} stops cleanly on the orchestrator's SIGTERM");
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(10));
        }
        await Eventually.SucceedsAsync(() =>
        {
            servers.LogsOf(LocalInfrastructure.Postgres).Should().Contain(line => line.Contains("received fast shutdown request"))
                .And.Contain(line => line.Contains("database system is shut down"));
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// Every process of the running application: each resource's process and what it started, and the orchestrator
    /// processes above them (below the test process itself).
    /// </summary>
    private static HashSet<int> ProcessesStartedFor(AppHostFixture app)
    {
        var self = Environment.ProcessId;
        var processes = new HashSet<int>();
        foreach (var pid in app.ResourceProcesses.Values)
        {
            processes.Add(pid);
            processes.UnionWith(ProcessTree.DescendantsOf(pid));
            for (var parent = ProcessTree.ParentOf(pid); parent is > 1 && parent != self; parent = ProcessTree.ParentOf(parent.Value))
            {
                processes.Add(parent.Value);
            }
        }
        return processes;
    }
}
