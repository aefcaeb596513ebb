using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using CoTeX.Client;
using CoTeX.Contracts;

namespace CoTeX.Benchmarks;

/// <summary>
/// The system under test: the same topology as eng/run-local.sh start (Release), on its own ports and data folder so it
/// never collides with a developer's running system.
/// </summary>
public sealed class Topology : IAsyncDisposable
{
    public const string DevSecret = "cotex-local-development-secret-change-me-0123456789";
    private readonly string _repoRoot;
    private readonly Dictionary<string, string> _environment;

    private Topology(string repoRoot, int basePort, Dictionary<string, string> environment)
    {
        _repoRoot = repoRoot;
        _environment = environment;
        ApiUrl = new($"http://127.0.0.1:{basePort}");
        RealtimeUrls = [new($"http://127.0.0.1:{basePort + 1}"), new($"http://127.0.0.1:{basePort + 2}")];
        PostgresPort = basePort + 100;
    }

    public Uri ApiUrl { get; }
    public Uri[] RealtimeUrls { get; }
    public int PostgresPort { get; }
    public string DataDir => _environment["COTEX_DATA_DIR"];

    /// <summary>
    /// Services on <paramref name="basePort"/> (Api) to +3, Postgres on +100, Redis on +101; everything in
    /// <paramref name="dataDir"/>, emptied first so every run starts from an empty database.
    /// </summary>
    public static async Task<Topology> StartAsync(string repoRoot, string dataDir, int basePort)
    {
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
        var topology = new Topology(repoRoot, basePort, new Dictionary<string, string>
        {
            ["COTEX_DATA_DIR"] = dataDir,
            ["COTEX_CONFIGURATION"] = "Release",
            ["COTEX_API_PORT"] = $"{basePort}",
            ["COTEX_REALTIME1_PORT"] = $"{basePort + 1}",
            ["COTEX_REALTIME2_PORT"] = $"{basePort + 2}",
            ["COTEX_WORKER_PORT"] = $"{basePort + 3}",
            ["COTEX_PG_PORT"] = $"{basePort + 100}",
            ["COTEX_REDIS_PORT"] = $"{basePort + 101}",
            // Throughput is what is measured here; the limiter has its own tests.
            ["RateLimiting__Enabled"] = "false",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Serilog__MinimumLevel__Default"] = "Warning",
        });
        await topology.RunScriptAsync("start");
        // The build leaves compiler servers running, and they would take CPU from the system under test.
        using (var shutdown = Process.Start(new ProcessStartInfo("dotnet", ["build-server", "shutdown"]) { RedirectStandardOutput = true }))
        {
            await shutdown!.WaitForExitAsync();
        }
        return topology;
    }

    public string PostgresConnectionString => $"host=127.0.0.1 port={PostgresPort} user=postgres dbname=cotexdb";

    public int RealtimePid(int replica) => ServicePids().Single(s => s.Name == $"realtime-{replica}").Pid;

    /// <summary>The services eng/run-local.sh started, by name (api, realtime-1, realtime-2, worker, redis).</summary>
    public IEnumerable<(string Name, int Pid)> ServicePids()
    {
        foreach (var name in new[] { "api", "realtime-1", "realtime-2", "worker", "redis" })
        {
            var file = Path.Combine(DataDir, "pids", $"{name}.pid");
            if (File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), out var pid))
            {
                yield return (name, pid);
            }
        }
    }

    /// <summary>Postgres' main process (first line of postmaster.pid).</summary>
    public int? PostmasterPid()
    {
        var file = Path.Combine(DataDir, "postgres", "postmaster.pid");
        return File.Exists(file) && int.TryParse(File.ReadLines(file).First(), out var pid) ? pid : null;
    }

    public static string Token(Guid userId)
    {
        static string Encode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Encode(Encoding.UTF8.GetBytes("""{"alg":"HS256","typ":"JWT"}"""));
        var payload = Encode(Encoding.UTF8.GetBytes(
            $$"""{"sub":"{{userId}}","aud":"authenticated","role":"authenticated","iat":{{now}},"exp":{{now + 86400}}}"""));
        var signature = Encode(HMACSHA256.HashData(Encoding.UTF8.GetBytes(DevSecret), Encoding.UTF8.GetBytes($"{header}.{payload}")));
        return $"{header}.{payload}.{signature}";
    }

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

    private async Task RunScriptAsync(string command)
    {
        var start = new ProcessStartInfo("bash", [Path.Combine(_repoRoot, "eng", "run-local.sh"), command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in _environment)
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"run-local.sh {command} failed: {await error}{await output}");
        }
    }

    public async ValueTask DisposeAsync() => await RunScriptAsync("stop");
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
        request.Headers.Add("X-Hub-Signature-256",
            "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(repo.WebhookSecret), body)));
        using var response = await http.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            return (false, null);
        }
        var ack = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        return (true, ack.TryGetProperty("id", out var id) && id.ValueKind == System.Text.Json.JsonValueKind.Number ? id.GetInt64() : null);
    }
}
