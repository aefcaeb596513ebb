using System.Globalization;

namespace CoTeX.Benchmarks;

/// <summary>
/// CPU time used by each part of the topology over a measured window, from /proc (Linux only; empty elsewhere). On a
/// box where the load generator and the system share the cores, CPU per request is a steadier figure than throughput.
/// </summary>
public sealed class CpuMeter
{
    private const double TicksPerSecond = 100; // USER_HZ, 100 on every Linux the tool runs on
    private readonly Topology _topology;
    private readonly Dictionary<string, double> _start;

    private CpuMeter(Topology topology)
    {
        _topology = topology;
        _start = Sample(topology);
    }

    public static CpuMeter Start(Topology topology) => new(topology);

    /// <summary>CPU milliseconds per unit of work (e.g. per webhook) for each part since <see cref="Start"/>.</summary>
    public IReadOnlyDictionary<string, double> MillisecondsPer(long units)
    {
        var end = Sample(_topology);
        return end.Where(kv => _start.ContainsKey(kv.Key))
            .ToDictionary(kv => kv.Key, kv => Math.Round((kv.Value - _start[kv.Key]) * 1000 / Math.Max(1, units), 3));
    }

    private static Dictionary<string, double> Sample(Topology topology)
    {
        var result = new Dictionary<string, double>();
        if (!File.Exists("/proc/stat"))
        {
            return result;
        }
        var pids = Directory.EnumerateDirectories("/proc").Select(d => Path.GetFileName(d))
            .Where(n => n.All(char.IsAsciiDigit)).Select(int.Parse).ToArray();
        var stats = pids.Select(ReadStat).OfType<(int Pid, int Parent, double Seconds)>().ToArray();
        double Of(int pid) => stats.Where(s => s.Pid == pid).Sum(s => s.Seconds);

        foreach (var (name, pid) in topology.ServicePids())
        {
            result[name] = Of(pid);
        }
        if (topology.PostmasterPid() is { } postmaster)
        {
            // The postmaster and its backends (connections are pooled, so the backends live through the window).
            result["postgres"] = Of(postmaster) + stats.Where(s => s.Parent == postmaster).Sum(s => s.Seconds);
        }
        result["load generator"] = Of(Environment.ProcessId);
        // Every core's busy time, whoever used it.
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        result["whole machine"] = (cpu.Sum() - cpu[3] - cpu[4]) / TicksPerSecond; // minus idle and iowait
        return result;
    }

    private static (int Pid, int Parent, double Seconds)? ReadStat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name is in parentheses and may contain spaces; the fields after it are fixed.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
            var ticks = double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture);
            return (pid, parent, ticks / TicksPerSecond);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null; // the process exited while we looked
        }
    }
}
