using System.Diagnostics;

namespace CoTeX.Tests.Infrastructure;

/// <summary>Runs a command line tool to completion (as the 'postgres' user where Postgres needs it) and fails loudly.</summary>
internal static class ProcessRunner
{
    public static bool IsRoot => Environment.UserName == "root";

    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, bool asPostgres = false,
        TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo
        {
            FileName = asPostgres && IsRoot ? "runuser" : fileName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asPostgres && IsRoot)
        {
            foreach (var prefix in new[] { "-u", "postgres", "--", fileName })
            {
                start.ArgumentList.Add(prefix);
            }
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true); // a hung tool must not outlive the test run
            throw;
        }
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{fileName} {string.Join(' ', start.ArgumentList)} exited with {process.ExitCode}: {await stderr}{await stdout}");
        }
        return await stdout;
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A fresh folder under the temp directory that the 'postgres' user can use too.</summary>
    public static async Task<string> CreateTempFolderAsync(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        if (IsRoot)
        {
            await RunAsync("chown", ["postgres:postgres", path]);
        }
        return path;
    }
}
