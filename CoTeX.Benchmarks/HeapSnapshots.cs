using System.Globalization;
using System.Text.Json;
using CoTeX.DevTools;
using Microsoft.Diagnostics.Runtime;

namespace CoTeX.Benchmarks;

/// <summary>
/// The managed heap of another .NET process (ClrMD): the live objects by type (walked from the GC roots, so only what
/// is reachable counts), the size of every object on the heap (live or garbage not yet collected), and the memory the
/// GC has committed for the heap (objects plus the free space it keeps).
/// <para>
/// The target is stopped (SIGSTOP) for the walk, and the walk runs in a child process (this tool with
/// <c>walk-heap &lt;pid&gt;</c>): ClrMD's native DAC reading a heap that moves under it crashed the tool, and ClrMD's
/// own suspension (ptrace on every thread) hung on a replica holding 10,000 connections.
/// </para>
/// </summary>
public static class HeapSnapshots
{
    public const string Verb = "walk-heap";

    /// <summary>Null when the walk fails or takes over two minutes.</summary>
    public static async Task<HeapSnapshot?> TakeAsync(int pid)
    {
        // This tool again: its apphost, or 'dotnet CoTeX.Benchmarks.dll' when it was started that way.
        var self = Environment.ProcessPath!;
        string[] arguments = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? [typeof(HeapSnapshots).Assembly.Location, Verb, pid.ToString(CultureInfo.InvariantCulture)]
            : [Verb, pid.ToString(CultureInfo.InvariantCulture)];
        ChildProcess.Signal(pid, Signals.Stop);
        try
        {
            await using var walker = ChildProcess.Start(self, arguments);
            int exitCode;
            try
            {
                exitCode = await walker.WaitForExitAsync(TimeSpan.FromMinutes(2));
            }
            catch (TimeoutException)
            {
                Console.WriteLine($"(the heap walk of {pid} took too long; the report goes without it)");
                return null;
            }
            if (exitCode != 0)
            {
                Console.WriteLine($"(the heap walk of {pid} failed, exit {exitCode}: {walker.Tail()})");
                return null;
            }
            // The walk is one line of JSON on stdout.
            var walk = JsonSerializer.Deserialize<Walked>(walker.Output.Last(line => line.StartsWith('{')))!;
            return new HeapSnapshot(ByType(walk.Live), ByType(walk.All), walk.Committed);
        }
        finally
        {
            ChildProcess.Signal(pid, Signals.Continue);
        }
    }

    /// <summary>The child's side: walks the (stopped) process and prints a <see cref="Walked"/> as JSON.</summary>
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
        var all = new Dictionary<string, long[]>();
        foreach (var obj in heap.EnumerateObjects())
        {
            var name = obj.Type?.Name ?? "?";
            if (!all.TryGetValue(name, out var totals))
            {
                all[name] = totals = new long[2];
            }
            totals[0] += (long)obj.Size;
            totals[1]++;
        }
        var committed = heap.Segments.Sum(segment => (long)segment.CommittedMemory.Length);
        Console.Out.Write(JsonSerializer.Serialize(new Walked(result, all, committed)));
        return 0;
    }

    /// <param name="Live">Type name → [bytes, objects] reachable from the roots.</param>
    /// <param name="All">The same for every object on the heap, reachable or not ("Free" is the GC's gaps).</param>
    private sealed record Walked(Dictionary<string, long[]> Live, Dictionary<string, long[]> All, long Committed);

    private static Dictionary<string, (long Bytes, long Count)> ByType(Dictionary<string, long[]> walked) =>
        walked.ToDictionary(kv => kv.Key, kv => (kv.Value[0], kv.Value[1]));

}

/// <param name="LiveByType">Type name → (bytes, objects) reachable from the GC roots.</param>
/// <param name="AllByType">The same for every object on the heap, reachable or not.</param>
/// <param name="CommittedBytes">The GC's committed memory for the heap's segments (regions).</param>
public sealed record HeapSnapshot(
    Dictionary<string, (long Bytes, long Count)> LiveByType, Dictionary<string, (long Bytes, long Count)> AllByType, long CommittedBytes)
{
    public long LiveBytes => LiveByType.Values.Sum(v => v.Bytes);

    public long AllObjectBytes => AllByType.Values.Sum(v => v.Bytes);

    /// <summary>Objects on the heap that nothing reaches (and the GC's gaps, as "Free"), by type.</summary>
    public Dictionary<string, (long Bytes, long Count)> GarbageByType() => AllByType.ToDictionary(kv => kv.Key, kv =>
        (kv.Value.Bytes - LiveByType.GetValueOrDefault(kv.Key).Bytes, kv.Value.Count - LiveByType.GetValueOrDefault(kv.Key).Count));
}
