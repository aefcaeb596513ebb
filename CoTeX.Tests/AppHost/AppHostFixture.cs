using System.Collections.Concurrent;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using CoTeX.Client;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CoTeX.Tests.AppHost;

/// <summary>
/// The real AppHost, started with Aspire.Hosting.Testing the way <c>dotnet run --project CoTeX.AppHost</c> runs it on a
/// machine without a container runtime: Postgres and Redis from local binaries, on free ports, in a data folder of
/// its own; the migration step, the Api, two Realtime replicas and the Worker. Every service exports its telemetry to
/// <see cref="Telemetry"/> instead of a dashboard. Shared by the tests of a class (a start costs tens of seconds).
/// </summary>
public sealed class AppHostFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(4);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<string>> _logs = new();
    private readonly ConcurrentDictionary<string, int> _processIds = new();

    public DistributedApplication App { get; private set; } = null!;
    public OtlpReceiver Telemetry { get; private set; } = null!;
    public string DataDirectory { get; private set; } = null!;

    /// <summary>Each Realtime replica's own address (not the proxy in front of them).</summary>
    public IReadOnlyList<Uri> RealtimeReplicas { get; private set; } = [];

    public async ValueTask InitializeAsync()
    {
        Telemetry = await OtlpReceiver.StartAsync();
        DataDirectory = await TestMachine.CreateTempFolderAsync("cotex-apphost");
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.CoTeX_AppHost>(
        [
            "--CoTeX:Infrastructure=LocalBinaries",
            $"--CoTeX:DataDirectory={DataDirectory}",
            $"--CoTeX:PostgresPort={TestMachine.FreePort()}",
            $"--CoTeX:RedisPort={TestMachine.FreePort()}",
            $"--Parameters:jwt-secret={TestTokens.Secret}",
            $"--Parameters:key-encryption-key={TestTokens.KeyEncryptionKey}",
        ]);
        foreach (var project in builder.Resources.OfType<ProjectResource>())
        {
            builder.CreateResourceBuilder(project)
                .WithEnvironment("OTEL_EXPORTER_OTLP_ENDPOINT", Telemetry.Endpoint)
                .WithEnvironment("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
                .WithEnvironment("OTEL_BSP_SCHEDULE_DELAY", "500")
                .WithEnvironment("OTEL_BLRP_SCHEDULE_DELAY", "500")
                .WithEnvironment("OTEL_METRIC_EXPORT_INTERVAL", "1000");
        }

        App = await builder.BuildAsync();
        KeepResourceLogs();
        try
        {
            using var timeout = new CancellationTokenSource(StartTimeout);
            await App.StartAsync(timeout.Token);
            var notifications = App.ResourceNotifications;
            await notifications.WaitForResourceAsync("migrations", KnownResourceStates.Finished, timeout.Token);
            await notifications.WaitForResourceHealthyAsync("api", timeout.Token);
            await notifications.WaitForResourceHealthyAsync("worker", timeout.Token);
            RealtimeReplicas = await WaitForHealthyReplicasAsync("realtime", 2, timeout.Token);
        }
        catch
        {
            await StopAsync(); // what did start must not outlive a failed start
            throw;
        }
    }

    /// <summary>Waits until <paramref name="count"/> replicas of a resource are healthy; returns their own URLs.</summary>
    private async Task<IReadOnlyList<Uri>> WaitForHealthyReplicasAsync(string name, int count, CancellationToken cancellationToken)
    {
        var healthy = new Dictionary<string, Uri>();
        await foreach (var e in App.ResourceNotifications.WatchAsync(cancellationToken))
        {
            if (e.Resource.Name == name && e.Snapshot.HealthStatus == HealthStatus.Healthy
                && e.Snapshot.EnvironmentVariables.FirstOrDefault(v => v.Name == "ASPNETCORE_URLS")?.Value is { } urls)
            {
                healthy[e.ResourceId] = new Uri(urls.Split(';')[0]);
                if (healthy.Count == count)
                {
                    break;
                }
            }
        }
        return healthy.Values.ToList();
    }

    private void KeepResourceLogs()
    {
        var loggers = App.Services.GetRequiredService<ResourceLoggerService>();
        _ = Task.Run(async () =>
        {
            await foreach (var e in App.ResourceNotifications.WatchAsync())
            {
                if (e.Snapshot.Properties.FirstOrDefault(p => p.Name == "executable.pid")?.Value is int pid)
                {
                    _processIds[e.ResourceId] = pid;
                }
                if (_logs.TryAdd(e.ResourceId, new ConcurrentQueue<string>()))
                {
                    var lines = _logs[e.ResourceId];
                    _ = Task.Run(async () =>
                    {
                        await foreach (var batch in loggers.WatchAsync(e.ResourceId))
                        {
                            foreach (var line in batch)
                            {
                                lines.Enqueue(line.Content);
                            }
                        }
                    });
                }
            }
        });
    }

    /// <summary>The process the orchestrator started for each resource instance (for a project, `dotnet run`).</summary>
    public IReadOnlyDictionary<string, int> ResourceProcesses => _processIds;

    /// <summary>What a resource (every replica of it) has written to its console so far.</summary>
    public IReadOnlyList<string> LogsOf(string resourceName) =>
        _logs.Where(entry => entry.Key == resourceName || entry.Key.StartsWith(resourceName + "-", StringComparison.Ordinal))
            .SelectMany(entry => entry.Value).ToList();

    public HttpClient ApiClientFor(Guid userId) => App.CreateHttpClient("api").WithToken(TestTokens.For(userId));

    /// <summary>An SDK client of <paramref name="userId"/> whose feed connects to one given Realtime replica.</summary>
    public CoTeXClient ClientFor(Guid userId, Uri realtimeReplica) => new(new CoTeXClientOptions
    {
        ApiUrl = App.GetEndpoint("api", "http"),
        RealtimeUrls = [realtimeReplica],
        AccessTokenProvider = _ => ValueTask.FromResult(TestTokens.For(userId)),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
    });

    /// <summary>Stops the AppHost as Ctrl-C does (the host stops, then the orchestrator cleans up); the data stays.</summary>
    public async Task StopAsync()
    {
        if (App is not null)
        {
            await App.DisposeAsync();
            App = null!;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await Telemetry.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A server still flushing; the temp folder goes with the machine.
        }
    }
}
