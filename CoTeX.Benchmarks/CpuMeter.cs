using System.Globalization;

namespace CoTeX.Benchmarks;

/// <summary>
/// CPU time used by each part of the topology over a measured window, from /proc (Linux only; empty elsewhere). On a
/// box where the load generator and the system share the cores, CPU per request is a steadier figure than throughput.
/// <para>
/// Besides the parts, it accounts for the whole machine's busy time (/proc/stat): kernel time spent in interrupts and
/// softirqs (loopback TCP is delivered there, and without CONFIG_IRQ_TIME_ACCOUNTING that time is charged to no
/// process), every other process that ran in the window (the largest by name), and what remains unaccounted.
/// </para>
/// </summary>
public sealed class CpuMeter
{
    private const double TicksPerSecond = 100; // USER_HZ, 100 on every Linux the tool runs on
    private readonly Topology _topology;
    private readonly Snapshot _start;

    /// <param name="Started">Start time since boot, which tells a reused pid from the process that had it.</param>
    /// <param name="SystemSeconds">The part of <paramref name="Seconds"/> spent in the kernel on the process's behalf.</param>
    private sealed record Process(int Pid, int Parent, string Name, long Started, double Seconds, double SystemSeconds, double ChildrenSeconds);

    private sealed record Snapshot(Dictionary<int, Process> Processes, double[] Machine);

    private CpuMeter(Topology topology)
    {
        _topology = topology;
        _start = Take();
    }

    public static CpuMeter Start(Topology topology) => new(topology);

    /// <summary>
    /// CPU milliseconds per unit of work (e.g. per webhook) since <see cref="Start"/>: each part (api, realtime-1,
    /// realtime-2, worker, redis, postgres, load generator), then <c>kernel irq+softirq</c>, <c>other processes</c>
    /// with the largest of them as <c>other: name</c>, <c>unaccounted</c> and <c>whole machine</c>. Postgres is also split
    /// by process kind (<c>postgres: backends</c>, <c>postgres: walwriter</c>, …, and the backends' kernel time). A key
    /// with <c>": "</c> is a breakdown of the part it names, not a part of its own.
    /// </summary>
    public IReadOnlyDictionary<string, double> MillisecondsPer(long units)
    {
        var end = Take();
        var result = new Dictionary<string, double>();
        if (end.Machine.Length == 0)
        {
            return result;
        }
        double Used(int pid) => UsedOf(pid, p => p.Seconds);
        double UsedOf(int pid, Func<Process, double> time) => end.Processes.TryGetValue(pid, out var p)
            ? time(p) - (_start.Processes.TryGetValue(pid, out var s) && s.Started == p.Started ? time(s) : 0)
            : 0;

        var counted = new HashSet<int>();
        foreach (var (name, pid) in _topology.ServicePids())
        {
            result[name] = Used(pid);
            counted.Add(pid);
        }
        if (_topology.PostmasterPid() is { } postmaster)
        {
            // The postmaster and its backends (connections are pooled, so the backends live through the window).
            var postgres = end.Processes.Values.Where(p => p.Pid == postmaster || p.Parent == postmaster).Select(p => p.Pid).ToList();
            // Backends that exited in the window were reaped by the postmaster: their time is in its children's.
            var exited = end.Processes[postmaster].ChildrenSeconds
                - (_start.Processes.TryGetValue(postmaster, out var before) ? before.ChildrenSeconds : 0);
            result["postgres"] = postgres.Sum(Used) + exited;
            counted.UnionWith(postgres);
            var kinds = postgres.ToLookup(PostgresKind); // each title read once
            foreach (var kind in kinds)
            {
                result[$"postgres: {kind.Key}"] = kind.Sum(Used);
            }
            result["postgres: backends in the kernel"] = kinds["backends"].Sum(p => UsedOf(p, q => q.SystemSeconds));
            // Added to, not set: a backend that exited between the snapshot and reading its title is counted there too.
            result["postgres: exited backends"] = result.GetValueOrDefault("postgres: exited backends") + exited;
        }
        // This process, plus its children that exited in the window (wrk, pgbench): their time is added to ours when reaped.
        var self = Environment.ProcessId;
        result["load generator"] = Used(self) + end.Processes[self].ChildrenSeconds - _start.Processes[self].ChildrenSeconds;
        counted.Add(self);

        // /proc/stat: user nice system idle iowait irq softirq steal ...
        var machine = end.Machine.Zip(_start.Machine, (e, s) => (e - s) / TicksPerSecond).ToArray();
        result["kernel irq+softirq"] = machine[5] + machine[6];
        var others = end.Processes.Values.Where(p => !counted.Contains(p.Pid))
            .Select(p => (p.Name, Seconds: Used(p.Pid))).Where(p => p.Seconds > 0)
            .GroupBy(p => p.Name, p => p.Seconds).Select(g => (Name: g.Key, Seconds: g.Sum())).OrderByDescending(g => g.Seconds).ToList();
        result["other processes"] = others.Sum(o => o.Seconds);
        foreach (var (name, seconds) in others.Take(4))
        {
            result[$"other: {name}"] = seconds;
        }
        var busy = machine.Sum() - machine[3] - machine[4]; // minus idle and iowait
        result["whole machine"] = busy;
        result["unaccounted"] = busy - result.Where(kv => !IsBreakdown(kv.Key) && kv.Key != "whole machine").Sum(kv => kv.Value);
        return result.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value * 1000 / Math.Max(1, units), 3));
    }

    /// <summary>Whether a key is a breakdown of a part (<c>other: kworker</c>, <c>postgres: walwriter</c>).</summary>
    public static bool IsBreakdown(string key) => key.Contains(": ", StringComparison.Ordinal);

    /// <summary>
    /// What a Postgres process does, from the title it sets (<c>postgres: walwriter</c>,
    /// <c>postgres: postgres cotexdb 127.0.0.1(40312) idle</c>): a background process's name, or <c>backends</c>.
    /// </summary>
    private static string PostgresKind(int pid)
    {
        string title;
        try
        {
            title = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (IOException)
        {
            return "exited backends";
        }
        if (!title.StartsWith("postgres: ", StringComparison.Ordinal))
        {
            return "postmaster";
        }
        var kind = title["postgres: ".Length..];
        return kind.StartsWith("autovacuum", StringComparison.Ordinal) ? "autovacuum"
            : kind is "walwriter" or "checkpointer" or "background writer" or "logical replication launcher" or "archiver" ? kind
            : kind.Contains('(', StringComparison.Ordinal) || kind.Contains("[local]", StringComparison.Ordinal) ? "backends"
            : kind;
    }

    private static Snapshot Take()
    {
        if (!File.Exists("/proc/stat"))
        {
            return new Snapshot([], []);
        }
        var machine = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var processes = Directory.EnumerateDirectories("/proc").Select(Path.GetFileName)
            .Where(n => n!.All(char.IsAsciiDigit)).Select(n => Read(int.Parse(n!, CultureInfo.InvariantCulture)))
            .OfType<Process>().ToDictionary(p => p.Pid);
        return new Snapshot(processes, machine);
    }

    private static Process? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name is in parentheses and may contain spaces; the fields after it are fixed.
            var close = stat.LastIndexOf(')');
            var name = stat[(stat.IndexOf('(') + 1)..close];
            var fields = stat[(close + 2)..].Split(' ');
            double Field(int i) => double.Parse(fields[i], CultureInfo.InvariantCulture) / TicksPerSecond;
            // Kernel threads rename themselves with their work (kworker/0:1-events): grouped by what precedes the '/'.
            return new Process(pid, int.Parse(fields[1], CultureInfo.InvariantCulture), name.Split('/')[0],
                long.Parse(fields[19], CultureInfo.InvariantCulture), Field(11) + Field(12), Field(12), Field(13) + Field(14));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null; // the process exited while we looked
        }
    }
}
