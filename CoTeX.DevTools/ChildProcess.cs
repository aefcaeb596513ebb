using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace CoTeX.DevTools;

/// <summary>
/// The one way the tests and the benchmark tool run a process of their own: a service started by hand (to SIGTERM it,
/// kill it mid-stream, restart it from another build), the <c>cotex</c> CLI, or a tool run to completion (pgbench,
/// psql, wrk, <c>dotnet publish</c>). Postgres and Redis are not among them: they come from the AppHost's own
/// resources (<c>LocalServers</c>). Everything the process writes is kept as lines (and copied to a log file when one
/// is given).
/// </summary>
public sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly StreamWriter? _log;

    private ChildProcess(Process process, StreamWriter? log)
    {
        _process = process;
        _log = log;
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>Every line the process wrote to stdout and stderr so far.</summary>
    public IReadOnlyList<string> Output => _output.ToArray();

    /// <summary>The last lines it wrote, for an error message.</summary>
    public string Tail(int lines = 20) => string.Join('\n', _output.ToArray().TakeLast(lines));

    /// <param name="logFile">Also write every line there (the benchmark tool keeps one log per process).</param>
    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null,
        string? workingDirectory = null, string? logFile = null)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{fileName} could not be started: {ex.Message}", ex);
        }
        var child = new ChildProcess(process, logFile is null ? null : new StreamWriter(logFile) { AutoFlush = true });
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Runs a tool to completion; returns its standard output and error, or throws with them if it fails.</summary>
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var argumentList = arguments.ToList();
        await using var child = Start(fileName, argumentList, environment, workingDirectory);
        var exitCode = await child.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', argumentList)} exited with {exitCode}: {child.Tail(40)}");
        }
        return string.Join('\n', child.Output);
    }

    /// <summary>Waits for the process to exit and returns its exit code; kills it (and fails) after <paramref name="within"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true); // a hung process must not outlive the run
            throw new TimeoutException($"{_process.StartInfo.FileName} did not exit within {within}: {Tail()}");
        }
        _process.WaitForExit(); // the last output lines are in
        return _process.ExitCode;
    }

    /// <summary>
    /// Polls <paramref name="url"/> until it answers 2xx; fails when the process exits first or
    /// <paramref name="within"/> passes. How a service counts as started (its /health, or /alive).
    /// </summary>
    public async Task WaitUntilAnswersAsync(Uri url, TimeSpan within)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{_process.StartInfo.FileName} exited ({_process.ExitCode}) before {url} answered: {Tail()}");
            }
            try
            {
                if ((await http.GetAsync(url)).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            if (Stopwatch.GetElapsedTime(started) > within)
            {
                throw new TimeoutException($"{url} did not answer within {within}: {Tail()}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Sends SIGTERM, as a container orchestrator does, and returns how long the process took to exit.</summary>
    public async Task<TimeSpan> TerminateAsync(TimeSpan within)
    {
        var stopwatch = Stopwatch.StartNew();
        Signal(_process.Id, Signals.Terminate);
        await WaitForExitAsync(within);
        return stopwatch.Elapsed;
    }

    /// <summary>Sends a POSIX signal to any process (SIGSTOP freezes one, SIGCONT resumes it).</summary>
    public static void Signal(int pid, Signals signal)
    {
        if (Kill(pid, (int)signal) != 0 && Marshal.GetLastPInvokeError() != 3 /* ESRCH: already gone */)
        {
            throw new InvalidOperationException($"kill -{signal} {pid} failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue(line);
        if (_log is not null)
        {
            lock (_log)
            {
                _log.WriteLine(line);
            }
        }
    }

    /// <summary>Kills the process (and its children) if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        if (_log is not null)
        {
            await _log.DisposeAsync();
        }
    }
}

/// <summary>The signals the tests and the benchmark tool send (Linux numbers).</summary>
public enum Signals
{
    Kill = 9,
    Terminate = 15,
    Continue = 18,
    Stop = 19,
}
