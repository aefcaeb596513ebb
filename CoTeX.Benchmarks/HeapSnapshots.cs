using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Diagnostics.Runtime;

namespace CoTeX.Benchmarks;

/// <summary>
/// The live managed objects of another .NET process, by type (ClrMD): its heap is walked from the GC roots, so only
/// what is reachable counts, not garbage the GC has yet to collect.
/// <para>
/// The target is stopped (SIGSTOP) for the walk, and the walk runs in a child process (this tool with
/// <c>walk-heap &lt;pid&gt;</c>): ClrMD's native DAC reading a heap that moves under it crashed the tool, and ClrMD's
/// own suspension (ptrace on every thread) hung on a replica holding 10,000 connections.
/// </para>
/// </summary>
public static class HeapSnapshots
{
    public const string Verb = "walk-heap";

    /// <summary>Type name → (bytes, objects); null when the walk fails or takes over two minutes.</summary>
    public static async Task<Dictionary<string, (long Bytes, long Count)>?> LiveByTypeAsync(int pid)
    {
        // This tool again: its apphost, or 'dotnet CoTeX.Benchmarks.dll' when it was started that way.
        var self = Environment.ProcessPath!;
        string[] arguments = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? [typeof(HeapSnapshots).Assembly.Location, Verb, pid.ToString(CultureInfo.InvariantCulture)]
            : [Verb, pid.ToString(CultureInfo.InvariantCulture)];
        var start = new ProcessStartInfo(self, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Signal("STOP", pid);
        try
        {
            using var walker = Process.Start(start)!;
            var output = walker.StandardOutput.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            try
            {
                await walker.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                walker.Kill();
                Console.WriteLine($"(the heap walk of {pid} took too long; the report goes without it)");
                return null;
            }
            if (walker.ExitCode != 0)
            {
                Console.WriteLine($"(the heap walk of {pid} failed, exit {walker.ExitCode}: {await walker.StandardError.ReadToEndAsync()})");
                return null;
            }
            return JsonSerializer.Deserialize<Dictionary<string, long[]>>(await output)!
                .ToDictionary(kv => kv.Key, kv => (kv.Value[0], kv.Value[1]));
        }
        finally
        {
            Signal("CONT", pid);
        }
    }

    /// <summary>The child's side: walks the (stopped) process and prints type → [bytes, objects] as JSON.</summary>
    public static int Walk(int pid)
    {
        using var target = DataTarget.AttachToProcess(pid, suspend: false);
        // The DAC ships beside the target's runtime (ClrMD does not download one on Linux), and ClrMD 4.2 reads no
        // version off a .NET 10 runtime (it expects 0.0), so the version check is skipped.
        var clr = target.ClrVersions[0];
        var dac = Path.Combine(Path.GetDirectoryName(clr.ModuleInfo.FileName)!, "libmscordaccore.so");
        using var runtime = File.Exists(dac) ? clr.CreateRuntime(dac, ignoreMismatch: true) : clr.CreateRuntime();
        var heap = runtime.Heap;
        var seen = new HashSet<ulong>();
        var pending = new Stack<ulong>();
        foreach (var root in heap.EnumerateRoots())
        {
            if (root.Object.Address != 0 && seen.Add(root.Object.Address))
            {
                pending.Push(root.Object.Address);
            }
        }
        var result = new Dictionary<string, long[]>();
        while (pending.TryPop(out var address))
        {
            var obj = heap.GetObject(address);
            if (!obj.IsValid || obj.Type is null)
            {
                continue;
            }
            var name = obj.Type.Name ?? "?";
            if (!result.TryGetValue(name, out var totals))
            {
                result[name] = totals = new long[2];
            }
            totals[0] += (long)obj.Size;
            totals[1]++;
            foreach (var reference in obj.EnumerateReferenceAddresses(carefully: false, considerDependantHandles: true))
            {
                if (reference != 0 && seen.Add(reference))
                {
                    pending.Push(reference);
                }
            }
        }
        Console.Out.Write(JsonSerializer.Serialize(result));
        return 0;
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }
}
