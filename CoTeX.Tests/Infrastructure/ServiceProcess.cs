using System.Collections.Concurrent;
using System.Diagnostics;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A CoTeX service as a real OS process (the built dll next to the tests), for behaviour that depends on being one:
/// SIGTERM, exit time. Configured through environment variables, as the AppHost does.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ServiceProcess(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }
    public bool HasExited => _process.HasExited;

    /// <summary>Every line the process wrote to stdout and stderr so far (its JSON logs).</summary>
    public IReadOnlyList<string> Output => _output.ToArray();

    /// <param name="readyPath">What must answer 2xx before the process counts as started: /health, or /alive for a
    /// service expected to report itself unhealthy.</param>
    public static async Task<ServiceProcess> StartAsync(string assemblyName, Dictionary<string, string> environment,
        string readyPath = "/health")
    {
        var port = ProcessRunner.FreePort();
        var settings = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Auth__JwtSecret"] = TestTokens.Secret,
            ["DataProtection__KeyEncryptionKey"] = TestTokens.KeyEncryptionKey,
            // As in ServiceHost: tests play GitHub and Stripe from loopback, inside the sender ranges.
            ["Webhooks__SenderRanges__0"] = "127.0.0.0/8",
            ["Webhooks__SenderRanges__1"] = "::1/128",
        };
        foreach (var (key, value) in environment)
        {
            settings[key] = value;
        }
        var process = Process.Start(StartInfo(assemblyName, port, settings))!;
        var service = new ServiceProcess(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) service._output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) service._output.Enqueue(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var client = new HttpClient { BaseAddress = service.Url };
        await Eventually.SucceedsAsync(async () =>
        {
            process.HasExited.Should().BeFalse($"{assemblyName} should keep running");
            (await client.GetAsync(readyPath)).IsSuccessStatusCode.Should().BeTrue();
        }, TimeSpan.FromSeconds(60));
        return service;
    }

    /// <summary>Runs a service that is expected to refuse to start; returns its exit code and everything it wrote.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(string assemblyName, Dictionary<string, string> environment,
        TimeSpan within)
    {
        using var process = Process.Start(StartInfo(assemblyName, ProcessRunner.FreePort(), environment))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>`dotnet &lt;assembly&gt;.dll` from the test output folder, on a loopback port, with the given environment.</summary>
    private static ProcessStartInfo StartInfo(string assemblyName, int port, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll"))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        return start;
    }

    /// <summary>Sends SIGTERM, as a container orchestrator does, and returns how long the process took to exit.</summary>
    public async Task<TimeSpan> TerminateAsync(TimeSpan within)
    {
        var stopwatch = Stopwatch.StartNew();
        await ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        using var timeout = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(timeout.Token);
        return stopwatch.Elapsed;
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
