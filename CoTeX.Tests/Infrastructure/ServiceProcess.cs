using CoTeX.DevTools;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A CoTeX service as a real OS process (the built dll next to the tests, a <see cref="ChildProcess"/>), for behaviour
/// that depends on being one: SIGTERM, exit time, refusing to start. Configured through environment variables, as the
/// AppHost does.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly ChildProcess _process;

    private ServiceProcess(ChildProcess process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }
    public bool HasExited => _process.HasExited;

    /// <summary>The process id (for a test that hands it to another program, which kills it).</summary>
    public int Id => _process.Id;

    /// <summary>Every line the process wrote to stdout and stderr so far (its JSON logs).</summary>
    public IReadOnlyList<string> Output => _process.Output;

    /// <param name="environment">On top of <see cref="TestSettings"/> (connection strings included: tests give them).</param>
    /// <param name="readyPath">What must answer 2xx before the process counts as started: /health, or /alive for a
    /// service expected to report itself unhealthy.</param>
    public static async Task<ServiceProcess> StartAsync(string assemblyName, Dictionary<string, string> environment,
        string readyPath = "/health")
    {
        var settings = TestSettings.For(TestSettings.ServiceOf(assemblyName));
        settings["ASPNETCORE_ENVIRONMENT"] = "Development";
        foreach (var (key, value) in environment)
        {
            settings[key] = value;
        }
        var (process, url) = Start(assemblyName, settings);
        var service = new ServiceProcess(process, url);
        try
        {
            await process.WaitUntilAnswersAsync(new Uri(url, readyPath), TimeSpan.FromSeconds(60));
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
        return service;
    }

    /// <summary>
    /// Runs a service that is expected to refuse to start, with exactly <paramref name="environment"/> (no defaults:
    /// the test leaves out what it means to be missing); returns its exit code and everything it wrote.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(string assemblyName, Dictionary<string, string> environment,
        TimeSpan within)
    {
        var (process, _) = Start(assemblyName, environment);
        await using (process)
        {
            var exitCode = await process.WaitForExitAsync(within);
            return (exitCode, string.Join('\n', process.Output));
        }
    }

    /// <summary>`dotnet &lt;assembly&gt;.dll` from the test output folder, on a free loopback port.</summary>
    private static (ChildProcess Process, Uri Url) Start(string assemblyName, Dictionary<string, string> environment)
    {
        var url = new Uri($"http://127.0.0.1:{TestMachine.FreePort()}");
        var process = ChildProcess.Start("dotnet", [Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll")],
            new Dictionary<string, string>(environment) { ["ASPNETCORE_URLS"] = url.ToString().TrimEnd('/') },
            workingDirectory: AppContext.BaseDirectory);
        return (process, url);
    }

    /// <summary>Sends SIGTERM, as a container orchestrator does, and returns how long the process took to exit.</summary>
    public Task<TimeSpan> TerminateAsync(TimeSpan within) => _process.TerminateAsync(within);

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}
