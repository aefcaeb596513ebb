using System.Globalization;

namespace CoTeX.Tests.Infrastructure;

/// <summary>Linux processes as /proc shows them: parents, descendants, and whether one still runs.</summary>
public static class ProcessTree
{
    /// <summary>Running, as opposed to gone or a zombie waiting to be reaped.</summary>
    public static bool IsRunning(int pid) => Stat(pid) is { State: not 'Z' };

    public static int? ParentOf(int pid) => Stat(pid)?.Parent;

    /// <summary>Every process below <paramref name="pid"/> now.</summary>
    public static IReadOnlyList<int> DescendantsOf(int pid)
    {
        var children = Directory.EnumerateDirectories("/proc")
            .Select(dir => int.TryParse(Path.GetFileName(dir), out var id) ? id : 0)
            .Where(id => id > 0)
            .Select(id => (Id: id, Stat: Stat(id)))
            .Where(p => p.Stat is not null)
            .ToLookup(p => p.Stat!.Value.Parent, p => p.Id);
        var result = new List<int>();
        var pending = new Stack<int>([pid]);
        while (pending.TryPop(out var current))
        {
            foreach (var child in children[current])
            {
                result.Add(child);
                pending.Push(child);
            }
        }
        return result;
    }

    public static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static (char State, int Parent)? Stat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (fields[0][0], int.Parse(fields[1], CultureInfo.InvariantCulture));
    }
}
