using System.Diagnostics;

namespace CoTeX.Tests.Infrastructure;

/// <summary>What a run of the <c>cotex</c> CLI printed, and its exit code.</summary>
public sealed record CliRun(int ExitCode, string Output, string Error)
{
    /// <summary>Asserts stderr is a single line (no stack trace) and returns it.</summary>
    public string ShouldBeOneErrorLine()
    {
        var lines = Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().ContainSingle(ToString());
        lines[0].Should().NotContain("Exception").And.StartWith("cotex: ");
        return lines[0];
    }

    public override string ToString() => $"exit {ExitCode}; stdout: {Output}; stderr: {Error}";
}

/// <summary>
/// Runs the built <c>cotex</c> CLI as a user would, against an Api URL: from the copy of its own build output in the
/// tests' cotex-cli/ folder (CoTeX.Tests.csproj), whose assemblies are all its own.
/// </summary>
public static class CotexCli
{
    /// <param name="environment">More variables (COTEX_REALTIME_URLS, COTEX_TOKEN_FILE, ...); a null value unsets one.</param>
    public static Process Start(string? apiUrl, string? token, string[] arguments,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "cotex-cli", "cotex.dll"), .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            Environment =
            {
                ["COTEX_API_URL"] = apiUrl ?? "http://127.0.0.1:1",
                ["COTEX_REALTIME_URLS"] = "http://127.0.0.1:1",
                ["COTEX_TOKEN"] = token,
            },
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[name] = value;
        }
        return Process.Start(start)!;
    }

    public static async Task<CliRun> RunAsync(string? apiUrl, string? token, string[] arguments) =>
        await WaitAsync(Start(apiUrl, token, arguments), arguments);

    /// <summary>Waits (a minute at most) for a started run to end, reading what it printed.</summary>
    public static async Task<CliRun> WaitAsync(Process process, string[] arguments, Task<string>? output = null)
    {
        using (process)
        {
            output ??= process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"cotex {string.Join(' ', arguments)} did not finish: {await error}");
            }
            return new CliRun(process.ExitCode, await output, await error);
        }
    }
}
