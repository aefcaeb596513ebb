using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace CoTeX.AppHost.Infrastructure;

/// <summary>
/// Whether a container runtime answers: its CLI is installed and its engine replies to <c>info</c>. The runtime is
/// the one Aspire itself would use (<c>ASPIRE_CONTAINER_RUNTIME</c>), else docker, else podman.
/// </summary>
internal sealed record ContainerRuntime(bool Answers, string Description)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static ContainerRuntime Probe(IConfiguration configuration)
    {
        var configured = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"];
        var candidates = configured is { Length: > 0 } ? [configured] : new[] { "docker", "podman" };
        var answers = new List<string>();
        foreach (var runtime in candidates)
        {
            var (answered, detail) = Ask(runtime);
            if (answered)
            {
                return new ContainerRuntime(true, $"{runtime} {detail} answers");
            }
            answers.Add($"{runtime}: {detail}");
        }
        return new ContainerRuntime(false, "no container runtime answers: " + string.Join("; ", answers));
    }

    private static (bool Answered, string Detail) Ask(string runtime)
    {
        var start = new ProcessStartInfo(runtime, ["info", "--format", "{{.ServerVersion}}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return (false, "not installed");
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                return (false, string.Create(CultureInfo.InvariantCulture, $"no answer within {Timeout.TotalSeconds:0} s"));
            }
            var version = output.Result.Trim();
            if (process.ExitCode == 0 && version.Length > 0)
            {
                return (true, version);
            }
            var firstError = error.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .FirstOrDefault(line => line.Length > 0 && !line.StartsWith("Server:", StringComparison.Ordinal));
            return (false, firstError ?? $"exit code {process.ExitCode}");
        }
    }
}
