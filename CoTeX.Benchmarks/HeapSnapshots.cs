using Microsoft.Diagnostics.Runtime;

namespace CoTeX.Benchmarks;

/// <summary>
/// The live managed objects of another .NET process, by type (ClrMD): its heap is walked from the GC roots, so only
/// what is reachable counts, not garbage the GC has yet to collect.
/// </summary>
public static class HeapSnapshots
{
    /// <summary>
    /// Type name → (bytes, objects) of the objects reachable from the roots; null when the walk fails or takes over two
    /// minutes.
    /// </summary>
    public static async Task<Dictionary<string, (long Bytes, long Count)>?> LiveByTypeAsync(int pid)
    {
        var walk = Task.Run(() => LiveByType(pid));
        try
        {
            return await walk.WaitAsync(TimeSpan.FromMinutes(2));
        }
        catch (TimeoutException)
        {
            Console.WriteLine($"(the heap walk of {pid} took too long; the report goes without it)");
            return null;
        }
    }

    private static Dictionary<string, (long Bytes, long Count)>? LiveByType(int pid)
    {
        try
        {
            // Not suspended: attaching to every thread of a replica holding 10,000 connections hung in ClrMD
            // (LoadThreadsAndAttach). The replica is idle while it is walked, so its heap holds still.
            using var target = DataTarget.AttachToProcess(pid, suspend: false);
            // The DAC ships beside the target's runtime (ClrMD does not download one on Linux).
            var clr = target.ClrVersions[0];
            var dac = Path.Combine(Path.GetDirectoryName(clr.ModuleInfo.FileName)!, "libmscordaccore.so");
            // ClrMD 4.2 reads no version off a .NET 10 runtime (it expects 0.0), so the version check is skipped.
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
            var result = new Dictionary<string, (long, long)>();
            while (pending.TryPop(out var address))
            {
                var obj = heap.GetObject(address);
                if (!obj.IsValid || obj.Type is null)
                {
                    continue;
                }
                var name = obj.Type.Name ?? "?";
                var (bytes, count) = result.GetValueOrDefault(name);
                result[name] = (bytes + (long)obj.Size, count + 1);
                foreach (var reference in obj.EnumerateReferenceAddresses(carefully: false, considerDependantHandles: true))
                {
                    if (reference != 0 && seen.Add(reference))
                    {
                        pending.Push(reference);
                    }
                }
            }
            return result;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A missing DAC, ptrace refused, a runtime ClrMD does not know: the report goes without the split.
            Console.WriteLine($"(no heap walk of {pid}: {e.Message})");
            return null;
        }
    }
}
