using System.Diagnostics;
using Aspire.Hosting.Testing;
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

        var control = await ProcessRunner.RunAsync(Path.Combine(PostgresServer.BinDirectory, "pg_controldata"),
            [Path.Combine(app.DataDirectory, "postgres")]);
        control.Should().MatchRegex(@"Database cluster state:\s+shut down\n");

        // Started again from the same folder, as the next `dotnet run` would: no recovery, the data still there.
        await using (var postgres = await LocalServer.StartAsync("postgres", app.DataDirectory, "ready to accept connections"))
        {
            postgres.Output.Should().Contain("database system was shut down at")
                .And.NotContain("automatic recovery").And.NotContain("not properly shut down");
            (await postgres.StopAsync()).Should().Be(0);
            postgres.Output.Should().Contain("received fast shutdown request").And.Contain("database system is shut down");
        }
        await using (var redis = await LocalServer.StartAsync("redis", app.DataDirectory, readyLine: null))
        {
            await using var connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
            ((string?)await connection.GetDatabase().StringGetAsync("cotex:test:kept")).Should().Be("across a stop");
            (await redis.StopAsync()).Should().Be(0);
        }
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

    /// <summary><c>eng/local-infra.sh</c> run by hand on a data folder, as the AppHost runs it.</summary>
    private sealed class LocalServer : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilderWriter _output = new();

        private LocalServer(Process process, int port)
        {
            _process = process;
            Port = port;
        }

        public int Port { get; }
        public string Output => _output.ToString();

        /// <param name="readyLine">What the server prints once it serves; null to wait for its port instead.</param>
        public static async Task<LocalServer> StartAsync(string which, string dataDirectory, string? readyLine)
        {
            var port = ProcessRunner.FreePort();
            var start = new ProcessStartInfo("bash", [Repository.PathOf("eng/local-infra.sh"), which])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                Environment =
                {
                    ["COTEX_DATA_DIR"] = dataDirectory,
                    [which == "postgres" ? "COTEX_PG_PORT" : "COTEX_REDIS_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
            };
            var server = new LocalServer(Process.Start(start)!, port);
            server._process.OutputDataReceived += (_, e) => server._output.WriteLine(e.Data);
            server._process.ErrorDataReceived += (_, e) => server._output.WriteLine(e.Data);
            server._process.BeginOutputReadLine();
            server._process.BeginErrorReadLine();
            try
            {
                await server.WaitUntilReadyAsync(readyLine);
            }
            catch
            {
                await server.DisposeAsync(); // a server that did not come up must not outlive the test
                throw;
            }
            return server;
        }

        private Task WaitUntilReadyAsync(string? readyLine) =>
            Eventually.SucceedsAsync(async () =>
            {
                _process.HasExited.Should().BeFalse(Output);
                if (readyLine is null)
                {
                    using var client = new System.Net.Sockets.TcpClient();
                    await client.ConnectAsync(System.Net.IPAddress.Loopback, Port);
                }
                else
                {
                    Output.Should().Contain(readyLine);
                }
            }, TimeSpan.FromSeconds(30));

        /// <summary>SIGTERM, as the orchestrator sends it; returns the exit code.</summary>
        public async Task<int> StopAsync()
        {
            await ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await _process.WaitForExitAsync(timeout.Token);
            return _process.ExitCode;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }
    }

    /// <summary>A thread-safe text sink for a process's output lines.</summary>
    private sealed class StringBuilderWriter
    {
        private readonly System.Text.StringBuilder _text = new();

        public void WriteLine(string? line)
        {
            lock (_text)
            {
                _text.AppendLine(line);
            }
        }

        public override string ToString()
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }
}
