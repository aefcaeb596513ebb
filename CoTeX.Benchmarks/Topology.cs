using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using CoTeX.AppHost;
using CoTeX.AppHost.Infrastructure;
using CoTeX.Client;
using CoTeX.Contracts;
using CoTeX.DevTools;

namespace CoTeX.Benchmarks;

/// <summary>
/// The system under test, started by this tool rather than by the AppHost: the orchestrator's proxies would sit on
/// every request and change what is measured (through DCP's proxy a plain GET took twice as long at the median and
/// cost as much CPU in the proxy as in the Api; README, "Benchmarks"). Postgres and Redis are the AppHost's own local
/// servers (<see cref="LocalServers"/>: the same resources and <c>eng/local-infra.sh</c>, unproxied); the migration
/// step and the services are the Release builds, given the settings the AppHost gives them (the one map,
/// <see cref="ServiceSettings"/>), project folder as working directory, on their own ports and data folder so a run
/// never collides with a developer's system.
/// </summary>
public sealed class Topology : IAsyncDisposable
{
    private const string Configuration = "Release";
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30); // services get 25 s

    /// <summary>The services, by name, and their projects.</summary>
    private static readonly (string Name, string Project, CoTeXService Service)[] Services =
    [
        ("api", "CoTeX.Api", CoTeXService.Api), ("realtime-1", "CoTeX.Realtime", CoTeXService.Realtime),
        ("realtime-2", "CoTeX.Realtime", CoTeXService.Realtime), ("worker", "CoTeX.Worker", CoTeXService.Worker),
    ];

    private readonly string _repoRoot;
    private readonly string _logs;
    private readonly List<(string Name, ChildProcess Process)> _services = [];
    private readonly IReadOnlyDictionary<string, string> _settings;
    private LocalServers? _servers;

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
            _repoRoot, new Dictionary<string, string>());
        // Postgres as the AppHost runs it locally (fsync on: ingest is measured with durable commits).
        _servers = await LocalServers.StartAsync(new LocalInfrastructureOptions
        {
            DataDirectory = DataDir,
            PostgresPort = PostgresPort,
            RedisPort = RedisPort,
        });
        await ExpectSuccessAsync(build, "build");
        await StopBuildServersAsync();
        await ExpectSuccessAsync(StartService("migrations", "CoTeX.MigrationService", service: null, port: null), "migrations");

        foreach (var (name, project, service) in Services)
        {
            _services.Add((name, StartService(name, project, service, UrlOf(name))));
        }
        foreach (var (name, process) in _services)
        {
            await process.WaitUntilAnswersAsync(new Uri(UrlOf(name), "/health"), HealthTimeout);
        }
    }

    // The build leaves compiler servers running, and they would take CPU from the system under test.
    private async Task StopBuildServersAsync() =>
        await ExpectSuccessAsync(Start("build-server", "dotnet", ["build-server", "shutdown"], _repoRoot, new Dictionary<string, string>()), "build-server");

    /// <summary>
    /// Stops a service and starts it again (optionally from another build, with more settings): what a deploy or a
    /// scale-out does to a replica. Returns the time from starting the process to its first healthy answer.
    /// </summary>
    public async Task<TimeSpan> RestartAsync(string name, string? dll = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        var index = _services.FindIndex(s => s.Name == name);
        await StopAsync(_services[index].Process);
        var (_, project, service) = Services.Single(s => s.Name == name);
        var started = Stopwatch.GetTimestamp();
        var process = StartService(name, project, service, UrlOf(name), dll, settings);
        _services[index] = (name, process);
        await process.WaitUntilAnswersAsync(new Uri(UrlOf(name), "/health"), HealthTimeout);
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
             "-p:PublishReadyToRun=true", "-o", output, "-nologo", "-v", "quiet"], _repoRoot, new Dictionary<string, string>()), "publish-" + project);
        await StopBuildServersAsync();
        return Path.Combine(output, project + ".dll");
    }

    private Uri UrlOf(string name) => name switch { "api" => ApiUrl, "worker" => WorkerUrl, _ => RealtimeUrls[name[^1] - '1'] };

    /// <summary>
    /// A Release build of a service, configured as the AppHost configures it: the migration step (no
    /// <paramref name="service"/>) with its database only, a service with everything the map gives it.
    /// </summary>
    private ChildProcess StartService(string name, string project, CoTeXService? service, Uri? port, string? dll = null,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var database = _servers!.PostgresConnectionString(InfrastructureDatabase);
        var environment = service is { } s
            ? ServiceSettings.ForDevelopment(s, database, _servers.RedisConnectionString)
            : new Dictionary<string, string> { [ServiceSettings.DatabaseConnection] = database };
        foreach (var (key, value) in BenchmarkSettings.Concat(_settings).Concat(settings ?? new Dictionary<string, string>()))
        {
            environment[key] = value;
        }
        environment["OTEL_SERVICE_NAME"] = name;
        environment["Api__PublicBaseUrl"] = ApiUrl.ToString().TrimEnd('/');
        if (port is not null)
        {
            environment["ASPNETCORE_URLS"] = port.ToString().TrimEnd('/');
        }
        var projectDir = Path.Combine(_repoRoot, project);
        return Start(name, "dotnet", [dll ?? Path.Combine(projectDir, "bin", Configuration, "net10.0", project + ".dll")], projectDir, environment);
    }

    /// <summary>The database the services use (the AppHost's <c>cotexdb</c>), created by the migration step.</summary>
    private const string InfrastructureDatabase = "cotexdb";

    /// <summary>What a benchmark run changes from the services' defaults, before <c>--set</c>.</summary>
    private static readonly Dictionary<string, string> BenchmarkSettings = new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
        ["DOTNET_ENVIRONMENT"] = "Production",
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
        // Replicas move clients off a crowded replica (ReplicaBalancer), but several scenarios crowd realtime-1 on
        // purpose (the connections ones); the storm turns it on as the product ships it (Rebalancing).
        ["Realtime__RebalancePerSecond"] = "0",
        // GitHub App mode on, as in production, with an app of the benchmark's own: the fan-out scenario plays GitHub
        // delivering to its webhook URL (signed with this secret). GitHub's API is out of reach here, so it points at
        // a closed port (the Worker's installation check fails at once and is logged), and the Worker's re-checks and
        // redelivery look-ups wait a day (the scenario's connections are checked "until tomorrow").
        ["GitHubApp__AppId"] = "1",
        ["GitHubApp__ClientId"] = "Iv1.benchmark",
        ["GitHubApp__ClientSecret"] = "benchmark-client-secret",
        ["GitHubApp__PrivateKey"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(System.Security.Cryptography.RSA.Create(2048).ExportRSAPrivateKeyPem())),
        ["GitHubApp__WebhookSecret"] = GitHubAppWebhookSecret,
        ["GitHubApp__ApiBaseUrl"] = "http://127.0.0.1:9",
        ["GitHubApp__WebBaseUrl"] = "http://127.0.0.1:9",
        ["GitHubApp__RecheckSeconds"] = "86400",
        ["GitHubApp__RedeliverySeconds"] = "86400",
    };

    /// <summary>The product's default for moving clients between replicas, which the topology turns off.</summary>
    public static readonly IReadOnlyDictionary<string, string> Rebalancing = new Dictionary<string, string>
    {
        ["Realtime__RebalancePerSecond"] = "100",
    };

    /// <summary>The secret the benchmark's GitHub App signs its deliveries with.</summary>
    public const string GitHubAppWebhookSecret = "benchmark-app-webhook-secret";

    /// <summary>Starts a process whose output goes to logs/&lt;name&gt;.log.</summary>
    private ChildProcess Start(string name, string fileName, string[] arguments, string workingDirectory, IReadOnlyDictionary<string, string> environment) =>
        ChildProcess.Start(fileName, arguments, environment, workingDirectory, logFile: Path.Combine(_logs, name + ".log"));

    private static async Task ExpectSuccessAsync(ChildProcess process, string name)
    {
        await using (process)
        {
            var exitCode = await process.WaitForExitAsync(TimeSpan.FromMinutes(10));
            if (exitCode != 0)
            {
                throw new InvalidOperationException($"{name} failed ({exitCode}): {process.Tail()}");
            }
        }
    }

    public string PostgresConnectionString => $"host=127.0.0.1 port={PostgresPort} user=postgres dbname={InfrastructureDatabase}";

    public int RealtimePid(int replica) => ServicePids().Single(s => s.Name == $"realtime-{replica}").Pid;

    /// <summary>The services and Redis, by name (api, realtime-1, realtime-2, worker, redis).</summary>
    public IEnumerable<(string Name, int Pid)> ServicePids() =>
        _services.Where(s => !s.Process.HasExited).Select(s => (s.Name, s.Process.Id))
            .Append((LocalInfrastructure.Redis, _servers!.ProcessIdOf(LocalInfrastructure.Redis))); // local-infra.sh execs redis-server

    /// <summary>Postgres' main process (first line of postmaster.pid).</summary>
    public int? PostmasterPid()
    {
        var file = Path.Combine(DataDir, "postgres", "postmaster.pid");
        return File.Exists(file) && int.TryParse(File.ReadLines(file).First(), out var pid) ? pid : null;
    }

    /// <summary>A token for a benchmark user, signed with the development JWT secret the services are given.</summary>
    public static string Token(Guid userId) => DevTokens.Mint(ServiceSettings.JwtSecret.Development!, userId);

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
        await Task.WhenAll(_services.Select(s => StopAsync(s.Process)));
        _services.Clear();
        if (_servers is not null)
        {
            await _servers.DisposeAsync();
        }
    }

    /// <summary>SIGTERM, as a container orchestrator stops a replica; killed if it outlasts its shutdown timeout.</summary>
    private static async Task StopAsync(ChildProcess process)
    {
        await using (process)
        {
            if (!process.HasExited)
            {
                try
                {
                    await process.TerminateAsync(StopTimeout);
                }
                catch (TimeoutException)
                {
                    // Disposing kills it.
                }
            }
        }
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
