using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using CoTeX.Client;
using CoTeX.Contracts;
using CoTeX.DevTools;

namespace CoTeX.Benchmarks;

/// <summary>
/// The system under test, started by this tool rather than by the AppHost: the orchestrator's proxies would sit on
/// every request and change what is measured (through DCP's proxy a plain GET took twice as long at the median and
/// cost as much CPU in the proxy as in the Api; README, "Benchmarks"). Postgres and Redis come from the same
/// <c>eng/local-infra.sh</c> the AppHost's local mode runs; the migration step and the services are the Release
/// builds, started the way the AppHost starts them (same settings, project folder as working directory), on their own
/// ports and data folder so a run never collides with a developer's system.
/// </summary>
public sealed class Topology : IAsyncDisposable
{
    public const string DevSecret = "cotex-benchmark-jwt-secret-0123456789abcdef";
    private const string Configuration = "Release";
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(120);

    /// <summary>The services, by name, and their projects.</summary>
    private static readonly (string Name, string Project)[] Services =
        [("api", "CoTeX.Api"), ("realtime-1", "CoTeX.Realtime"), ("realtime-2", "CoTeX.Realtime"), ("worker", "CoTeX.Worker")];

    private readonly string _repoRoot;
    private readonly string _logs;
    private readonly List<(string Name, Process Process)> _services = [];
    private readonly List<(string Name, Process Process)> _servers = [];
    private readonly IReadOnlyDictionary<string, string> _settings;

    private Topology(string repoRoot, string dataDir, int basePort, IReadOnlyDictionary<string, string> settings)
    {
        _repoRoot = repoRoot;
        _settings = settings;
        DataDir = dataDir;
        _logs = Path.Combine(dataDir, "logs");
        ApiUrl = new($"http://127.0.0.1:{basePort}");
        RealtimeUrls = [new($"http://127.0.0.1:{basePort + 1}"), new($"http://127.0.0.1:{basePort + 2}")];
        WorkerUrl = new($"http://127.0.0.1:{basePort + 3}");
        PostgresPort = basePort + 100;
        RedisPort = basePort + 101;
    }

    public Uri ApiUrl { get; }

    /// <summary>The settings given with <c>--set</c>.</summary>
    public IReadOnlyDictionary<string, string> Settings => _settings;
    public Uri[] RealtimeUrls { get; }
    public Uri WorkerUrl { get; }
    public int PostgresPort { get; }
    public int RedisPort { get; }
    public string DataDir { get; }

    /// <summary>
    /// Services on <paramref name="basePort"/> (Api) to +3, Postgres on +100, Redis on +101; everything in
    /// <paramref name="dataDir"/>, emptied first so every run starts from an empty database.
    /// </summary>
    /// <param name="settings">Configuration for every service on top of the defaults (environment variable names,
    /// e.g. <c>GitHub__IngestWriters</c>): how a change is compared with the code as it is, in one run.</param>
    public static async Task<Topology> StartAsync(string repoRoot, string dataDir, int basePort, IReadOnlyDictionary<string, string> settings)
    {
        var topology = new Topology(repoRoot, dataDir, basePort, settings);
        // A run that died (killed, crashed) leaves its services and servers behind on these ports; measuring them
        // instead of a fresh topology would be silently wrong.
        foreach (var port in new[] { topology.ApiUrl.Port, topology.RealtimeUrls[0].Port, topology.RealtimeUrls[1].Port,
                     topology.WorkerUrl.Port, topology.PostgresPort, topology.RedisPort })
        {
            try
            {
                var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
                listener.Start();
                listener.Stop();
            }
            catch (System.Net.Sockets.SocketException)
            {
                throw new InvalidOperationException(
                    $"Port {port} is in use: is an earlier run's topology still running? (pgrep -fa 'CoTeX|redis-server|postgres -D')");
            }
        }
        // The folder itself stays (it may have been made reachable for the 'postgres' user); its contents go.
        var folder = Directory.CreateDirectory(dataDir);
        foreach (var directory in folder.EnumerateDirectories())
        {
            directory.Delete(recursive: true);
        }
        foreach (var file in folder.EnumerateFiles())
        {
            file.Delete();
        }
        Directory.CreateDirectory(topology._logs);
        try
        {
            await topology.StartAsync();
        }
        catch
        {
            await topology.DisposeAsync(); // a failed start leaves nothing behind
            throw;
        }
        return topology;
    }

    private async Task StartAsync()
    {
        var build = Start("build", "dotnet", ["build", Path.Combine(_repoRoot, "CoTeX.Services.slnf"), "-c", Configuration, "-nologo", "-v", "quiet"],
            _repoRoot, []);
        _servers.Add(("postgres", StartServer("postgres", "COTEX_PG_PORT", PostgresPort)));
        _servers.Add(("redis", StartServer("redis", "COTEX_REDIS_PORT", RedisPort)));
        await ExpectSuccessAsync(build, "build");
        await StopBuildServersAsync();
        await WaitForPortAsync(RedisPort, "redis");
        await ExpectSuccessAsync(StartService("migrations", "CoTeX.MigrationService", port: null), "migrations");

        foreach (var (name, project) in Services)
        {
            _services.Add((name, StartService(name, project, UrlOf(name))));
        }
        foreach (var (name, process) in _services)
        {
            await WaitUntilHealthyAsync(name, process, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>
    /// Polls the service's /health until it answers 200; fails if it exits or <see cref="HealthTimeout"/> passes after
    /// <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).
    /// </summary>
    private async Task WaitUntilHealthyAsync(string name, Process process, long started)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        while (!await IsHealthyAsync(http, UrlOf(name)))
        {
            if (process.HasExited || Stopwatch.GetElapsedTime(started) > HealthTimeout)
            {
                throw new InvalidOperationException($"{name} did not become healthy: {Tail(name)}");
            }
            await Task.Delay(20);
        }
    }

    // The build leaves compiler servers running, and they would take CPU from the system under test.
    private async Task StopBuildServersAsync() =>
        await ExpectSuccessAsync(Start("build-server", "dotnet", ["build-server", "shutdown"], _repoRoot, []), "build-server");

    private static async Task<bool> IsHealthyAsync(HttpClient http, Uri url)
    {
        try
        {
            return (await http.GetAsync(new Uri(url, "/health"))).IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private Process StartServer(string which, string portVariable, int port) =>
        Start(which, "bash", [Path.Combine(_repoRoot, "eng", "local-infra.sh"), which], _repoRoot, new()
        {
            ["COTEX_DATA_DIR"] = DataDir,
            [portVariable] = port.ToString(CultureInfo.InvariantCulture),
        });

    /// <summary>
    /// Stops a service and starts it again (optionally from another build, with more settings): what a deploy or a
    /// scale-out does to a replica. Returns the time from starting the process to its first healthy answer.
    /// </summary>
    public async Task<TimeSpan> RestartAsync(string name, string? dll = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        var index = _services.FindIndex(s => s.Name == name);
        await StopAsync([_services[index]]);
        var started = Stopwatch.GetTimestamp();
        var process = StartService(name, Services.Single(s => s.Name == name).Project, UrlOf(name), dll, settings);
        _services[index] = (name, process);
        await WaitUntilHealthyAsync(name, process, started);
        return Stopwatch.GetElapsedTime(started);
    }

    /// <summary>
    /// A ReadyToRun build of a project (<c>dotnet publish -r linux-x64 -p:PublishReadyToRun=true</c>, as a deploy
    /// builds it), for comparing start-up with the JIT-only build; returns its dll.
    /// </summary>
    public async Task<string> PublishReadyToRunAsync(string project)
    {
        var output = Path.Combine(DataDir, "publish", project);
        await ExpectSuccessAsync(Start("publish-" + project, "dotnet",
            ["publish", Path.Combine(_repoRoot, project), "-c", Configuration, "-r", "linux-x64", "--self-contained", "false",
             "-p:PublishReadyToRun=true", "-o", output, "-nologo", "-v", "quiet"], _repoRoot, []), "publish-" + project);
        await StopBuildServersAsync();
        return Path.Combine(output, project + ".dll");
    }

    private Uri UrlOf(string name) => name switch { "api" => ApiUrl, "worker" => WorkerUrl, _ => RealtimeUrls[name[^1] - '1'] };

    /// <summary>A Release build of a service, configured as the AppHost configures it.</summary>
    private Process StartService(string name, string project, Uri? port, string? dll = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__cotexdb"] = $"Host=127.0.0.1;Port={PostgresPort};Username=postgres;Database=cotexdb",
            ["ConnectionStrings__redis"] = $"127.0.0.1:{RedisPort}",
            ["Auth__JwtSecret"] = DevSecret,
            ["DataProtection__KeyEncryptionKey"] = "H9JyG7MvFFMjtujPNpFGFczOZ4u4w7nAjy1+SgTzLIg=",
            ["Api__PublicBaseUrl"] = ApiUrl.ToString().TrimEnd('/'),
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["OTEL_SERVICE_NAME"] = name,
            // The limiter runs as in production (one Redis round trip per webhook and per API request), with limits
            // no benchmark reaches: its cost is measured, its refusals are not.
            ["RateLimiting__PerRepoWebhooks"] = "10000000",
            ["RateLimiting__PerUser"] = "1000000",
            ["RateLimiting__PerIp"] = "1000000",
            ["RateLimiting__PerWebhookSender"] = "1000000",
            // The load tools play GitHub from 127.0.0.1, inside the sender ranges as GitHub is; the unsigned flood's
            // strangers send from 127.0.0.3, outside them.
            ["Webhooks__SenderRanges__0"] = "127.0.0.1/32",
            ["Webhooks__SenderRanges__1"] = "::1/128",
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };
        foreach (var (key, value) in _settings.Concat(settings ?? new Dictionary<string, string>()))
        {
            environment[key] = value;
        }
        if (port is not null)
        {
            environment["ASPNETCORE_URLS"] = port.ToString().TrimEnd('/');
        }
        var projectDir = Path.Combine(_repoRoot, project);
        return Start(name, "dotnet", [dll ?? Path.Combine(projectDir, "bin", Configuration, "net10.0", project + ".dll")], projectDir, environment);
    }

    /// <summary>Starts a process whose output goes to logs/&lt;name&gt;.log.</summary>
    private Process Start(string name, string fileName, string[] arguments, string workingDirectory, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        var process = Process.Start(start)!;
        var log = new StreamWriter(Path.Combine(_logs, name + ".log")) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                log.WriteLine(line);
            }
        }
    }

    private async Task ExpectSuccessAsync(Process process, string name)
    {
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{name} failed ({process.ExitCode}): {Tail(name)}");
        }
    }

    private async Task WaitForPortAsync(int port, string name)
    {
        var deadline = DateTime.UtcNow + HealthTimeout;
        while (true)
        {
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
        throw new InvalidOperationException($"{name} does not listen on {port}: {Tail(name)}");
    }

    private string Tail(string name)
    {
        var file = Path.Combine(_logs, name + ".log");
        return File.Exists(file) ? string.Join('\n', File.ReadLines(file).TakeLast(20)) : "(no log)";
    }

    public string PostgresConnectionString => $"host=127.0.0.1 port={PostgresPort} user=postgres dbname=cotexdb";

    public int RealtimePid(int replica) => ServicePids().Single(s => s.Name == $"realtime-{replica}").Pid;

    /// <summary>The services and Redis, by name (api, realtime-1, realtime-2, worker, redis).</summary>
    public IEnumerable<(string Name, int Pid)> ServicePids() =>
        _services.Concat(_servers.Where(s => s.Name == "redis")) // local-infra.sh execs redis-server
            .Where(s => !s.Process.HasExited).Select(s => (s.Name, s.Process.Id));

    /// <summary>Postgres' main process (first line of postmaster.pid).</summary>
    public int? PostmasterPid()
    {
        var file = Path.Combine(DataDir, "postgres", "postmaster.pid");
        return File.Exists(file) && int.TryParse(File.ReadLines(file).First(), out var pid) ? pid : null;
    }

    public static string Token(Guid userId) => DevTokens.Mint(DevSecret, userId);

    public CoTeXClient ClientFor(Guid userId, params Uri[] realtime) => new(new CoTeXClientOptions
    {
        ApiUrl = ApiUrl,
        RealtimeUrls = realtime.Length > 0 ? realtime : RealtimeUrls,
        AccessTokenProvider = _ => ValueTask.FromResult(Token(userId)),
    });

    public async Task<(Guid UserId, CreatedRepo Repo)> NewUserWithRepoAsync(string fullName)
    {
        var userId = Guid.NewGuid();
        using var client = ClientFor(userId);
        return (userId, await client.AddRepoAsync(fullName));
    }

    /// <summary>The services first (they finish their work while Postgres and Redis are up), then the servers.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(_services);
        await StopAsync(_servers);
    }

    private static async Task StopAsync(List<(string Name, Process Process)> processes)
    {
        await Task.WhenAll(processes.Select(async p =>
        {
            if (!p.Process.HasExited)
            {
                using (var kill = Process.Start("kill", ["-TERM", p.Process.Id.ToString(CultureInfo.InvariantCulture)]))
                {
                    await kill.WaitForExitAsync();
                }
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)); // services get 25 s
                try
                {
                    await p.Process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    p.Process.Kill(entireProcessTree: true);
                }
            }
            p.Process.Dispose();
        }));
        processes.Clear();
    }
}

/// <summary>Realistic GitHub payloads (2–8 KB): real octokit examples with the bulky repository/sender objects trimmed.</summary>
public static class Payloads
{
    public static IReadOnlyList<(string EventType, string Template)> Load()
    {
        var result = new List<(string, string)>();
        foreach (var type in new[] { "push", "issues", "pull_request" })
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Payloads", type + ".json")))!.AsObject();
            json["repository"] = new System.Text.Json.Nodes.JsonObject
            {
                ["id"] = 1, ["name"] = "NAME", ["full_name"] = "FULL_NAME", ["private"] = false,
                ["html_url"] = "https://github.com/FULL_NAME", ["owner"] = new System.Text.Json.Nodes.JsonObject { ["login"] = "octocat", ["id"] = 1 },
            };
            json["sender"] = new System.Text.Json.Nodes.JsonObject { ["login"] = "octocat", ["id"] = 1, ["type"] = "User" };
            json.Remove("installation");
            json.Remove("organization");
            if (json["pull_request"] is System.Text.Json.Nodes.JsonObject pr)
            {
                foreach (var side in new[] { "head", "base" })
                {
                    if (pr[side] is System.Text.Json.Nodes.JsonObject s)
                    {
                        s.Remove("repo");
                    }
                }
                pr.Remove("_links");
            }
            result.Add((type, json.ToJsonString()));
        }
        return result;
    }

    public static byte[] For(string template, string fullName) =>
        Encoding.UTF8.GetBytes(template.Replace("FULL_NAME", fullName, StringComparison.Ordinal)
            .Replace("\"NAME\"", $"\"{fullName.Split('/')[1]}\"", StringComparison.Ordinal));
}

public static class Webhooks
{
    public static async Task<(bool Ok, long? Id)> SendAsync(HttpClient http, CreatedRepo repo, string eventType, byte[] body, string deliveryId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repo.Id}")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
        };
        request.Headers.Add("X-GitHub-Event", eventType);
        request.Headers.Add("X-GitHub-Delivery", deliveryId);
        request.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(repo.WebhookSecret!, body));
        using var response = await http.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            return (false, null);
        }
        var ack = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        return (true, ack.TryGetProperty("id", out var id) && id.ValueKind == System.Text.Json.JsonValueKind.Number ? id.GetInt64() : null);
    }
}
