using System.Diagnostics;
using System.Globalization;

namespace CoTeX.Benchmarks;

/// <summary>
/// Live managed objects of a process by type, from <c>dotnet-gcdump</c> (a heap snapshot taken after a full GC), when
/// the tool is installed (<c>dotnet tool install -g dotnet-gcdump</c>).
/// </summary>
public static class HeapSnapshots
{
    public static string? Tool()
    {
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Append(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools"));
        return candidates.Select(d => Path.Combine(d, "dotnet-gcdump")).FirstOrDefault(File.Exists);
    }

    /// <summary>Type name → (bytes, objects) of the live objects.</summary>
    public static async Task<Dictionary<string, (long Bytes, long Count)>> ByTypeAsync(string tool, int pid)
    {
        var file = Path.Combine(Path.GetTempPath(), $"cotex-{pid}-{Guid.NewGuid():N}.gcdump");
        try
        {
            await RunAsync(tool, ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", file]);
            var report = await RunAsync(tool, ["report", file]);
            // Lines: "  1,234,567  12,345  Type.Name (Bytes > 1K)  [module]"
            var result = new Dictionary<string, (long, long)>();
            foreach (var line in report.Split('\n'))
            {
                var parts = line.Trim().Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 3
                    && long.TryParse(parts[0], NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out var bytes)
                    && long.TryParse(parts[1], NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out var count))
                {
                    var type = parts[2].Split("  ", 2)[0].Trim();
                    var (b, c) = result.GetValueOrDefault(type);
                    result[type] = (b + bytes, c + count);
                }
            }
            return result;
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static async Task<string> RunAsync(string file, string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0 ? output : throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed: {error}{output}");
    }
}
