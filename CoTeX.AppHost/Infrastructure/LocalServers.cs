using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CoTeX.AppHost.Infrastructure;

/// <summary>
/// Postgres and Redis alone, as the AppHost runs them on a machine without a container runtime (the same resources,
/// the same <c>eng/local-infra.sh</c>), in a small distributed application of their own: for the tests and the
/// benchmark tool, which start the services themselves. Built the way dotnet/eShop's functional tests build theirs
/// (<c>DistributedApplication.CreateBuilder</c> without a dashboard); the orchestrator (DCP) is the AppHost's.
/// What a test does to a server goes through the orchestrator (<see cref="StopAsync"/>, <see cref="StartAsync(string)"/>)
/// or, for what it cannot do (freeze, crash), to the process it reports (<see cref="ProcessIdOf"/>).
/// </summary>
public sealed class LocalServers : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(2);
    private readonly DistributedApplication _app;
    private readonly ConcurrentDictionary<string, ConcurrentQueue<string>> _logs = new();

    private LocalServers(DistributedApplication app, LocalInfrastructureOptions options)
    {
        _app = app;
        Options = options;
    }

    public LocalInfrastructureOptions Options { get; }

    /// <summary>Postgres' superuser connection string to <paramref name="database"/>.</summary>
    public string PostgresConnectionString(string database = "postgres") => string.Create(CultureInfo.InvariantCulture,
        $"Host=127.0.0.1;Port={Options.PostgresPort};Username=postgres;Database={database};Timeout=5;Command Timeout=30");

    public string RedisConnectionString => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Options.RedisPort}");

    /// <summary>Starts both servers and returns when each answers (Postgres a query, Redis a PING).</summary>
    public static async Task<LocalServers> StartAsync(LocalInfrastructureOptions options, CancellationToken cancellationToken = default)
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions
        {
            // The AppHost's assembly says where the orchestrator is (and the repository, for eng/local-infra.sh).
            AssemblyName = typeof(LocalServers).Assembly.GetName().Name,
            DisableDashboard = true,
            Args = ["--environment=Development"],
        });
        builder.Services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        builder.AddLocalInfrastructure(options);
        var app = builder.Build();
        var servers = new LocalServers(app, options);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StartTimeout);
            await app.StartAsync(timeout.Token);
            servers.KeepLogs(LocalInfrastructure.Postgres);
            servers.KeepLogs(LocalInfrastructure.Redis);
            await servers.WaitUntilHealthyAsync(timeout.Token);
        }
        catch
        {
            await servers.DisposeAsync(); // what did start must not outlive a failed start
            throw;
        }
        return servers;
    }

    /// <summary>Stops a server (<see cref="LocalInfrastructure.Postgres"/> or <see cref="LocalInfrastructure.Redis"/>)
    /// cleanly, as the dashboard's Stop does (Postgres with a fast shutdown), and returns once it has exited.</summary>
    public async Task StopAsync(string server)
    {
        await CommandAsync(server, KnownResourceCommands.StopCommand);
        // The command returns once the stop is asked for; the server is stopped when the orchestrator says it exited.
        using var timeout = new CancellationTokenSource(StartTimeout);
        await _app.ResourceNotifications.WaitForResourceAsync(server, KnownResourceStates.TerminalStates, timeout.Token);
    }

    /// <summary>Starts a stopped (or crashed) server again, on the same port and data, and waits until it answers.</summary>
    public async Task StartAsync(string server)
    {
        await CommandAsync(server, KnownResourceCommands.StartCommand);
        using var timeout = new CancellationTokenSource(StartTimeout);
        await _app.ResourceNotifications.WaitForResourceHealthyAsync(server, timeout.Token);
    }

    /// <summary>
    /// The server's own process (<c>eng/local-infra.sh</c> execs redis-server; for Postgres it is the script, which
    /// turns SIGTERM into Postgres' fast shutdown).
    /// </summary>
    public int ProcessIdOf(string server) =>
        _app.ResourceNotifications.TryGetCurrentState(server, out var state)
        && state.Snapshot.Properties.FirstOrDefault(p => p.Name == "executable.pid")?.Value is int pid
            ? pid
            : throw new InvalidOperationException($"{server} has no process now");

    /// <summary>The server's exit code once it has stopped (null while it runs).</summary>
    public int? ExitCodeOf(string server) =>
        _app.ResourceNotifications.TryGetCurrentState(server, out var state) ? state.Snapshot.ExitCode : null;

    /// <summary>Everything the server (and <c>eng/local-infra.sh</c>) has written so far, from every start.</summary>
    public IReadOnlyList<string> LogsOf(string server) => _logs.TryGetValue(server, out var lines) ? lines.ToArray() : [];

    /// <summary>
    /// Collects the server's output from its first line on. Once the orchestrator has started it: its logs are kept
    /// under the instance's id (name-suffix), and the orchestrator streams them from the start to a new watcher.
    /// </summary>
    private void KeepLogs(string server)
    {
        var lines = _logs.GetOrAdd(server, _ => new ConcurrentQueue<string>());
        var loggers = _app.Services.GetRequiredService<ResourceLoggerService>();
        var id = _app.ResourceNotifications.TryGetCurrentState(server, out var state) ? state.ResourceId : server;
        _ = Task.Run(async () =>
        {
            await foreach (var batch in loggers.WatchAsync(id))
            {
                foreach (var line in batch)
                {
                    lines.Enqueue(line.Content);
                }
            }
        });
    }

    private async Task WaitUntilHealthyAsync(CancellationToken cancellationToken) =>
        await Task.WhenAll(
            _app.ResourceNotifications.WaitForResourceHealthyAsync(LocalInfrastructure.Postgres, cancellationToken),
            _app.ResourceNotifications.WaitForResourceHealthyAsync(LocalInfrastructure.Redis, cancellationToken));

    private async Task CommandAsync(string server, string command)
    {
        var result = await _app.Services.GetRequiredService<ResourceCommandService>().ExecuteCommandAsync(server, command);
        if (!result.Success)
        {
            throw new InvalidOperationException($"{command} {server}: {result.Message}");
        }
    }

    /// <summary>Stops both servers (cleanly where they still run) and the orchestrator.</summary>
    public async ValueTask DisposeAsync()
    {
        // Each server first, until it has exited (Postgres writes its shutdown checkpoint), so that nothing still
        // writes to the data folder when this returns; then the orchestrator.
        foreach (var server in new[] { LocalInfrastructure.Postgres, LocalInfrastructure.Redis })
        {
            try
            {
                await StopAsync(server);
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                // Stopped already (a test stopped or killed it), or it would not stop: the orchestrator kills it below.
            }
        }
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _app.StopAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // The orchestrator kills what is left when it is disposed.
        }
        await _app.DisposeAsync();
    }
}
