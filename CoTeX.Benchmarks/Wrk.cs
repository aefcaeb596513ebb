using System.Globalization;
using System.Text;
using CoTeX.DevTools;

namespace CoTeX.Benchmarks;

/// <summary>
/// Ingest driven by <c>wrk</c> (a C load generator, far cheaper per request than the .NET tool). GitHub's signature
/// covers only the body, so every (repo, payload) body is signed once, up front; a Lua script sends them round robin
/// with a fresh <c>X-GitHub-Delivery</c> per request, so none is a duplicate.
/// </summary>
public static class Wrk
{
    public sealed record Target(Guid RepoId, string EventType, byte[] Body, string Secret);

    public sealed record Run(long Requests, long Errors, double Seconds, Percentiles Latency, double[] LatencyMs);

    public static bool IsInstalled() =>
        Environment.GetEnvironmentVariable("PATH")?.Split(':').Any(d => File.Exists(Path.Combine(d, "wrk"))) == true;

    /// <param name="threads">wrk's threads; one keeps up with thousands of requests a second and costs the least CPU.</param>
    public static async Task<Run> RunAsync(Uri api, IReadOnlyList<Target> targets, int connections, TimeSpan duration, int threads = 1)
    {
        var folder = Directory.CreateTempSubdirectory("cotex-wrk").FullName;
        try
        {
            var manifest = new StringBuilder();
            for (var i = 0; i < targets.Count; i++)
            {
                var t = targets[i];
                var file = Path.Combine(folder, $"body{i}.json");
                await File.WriteAllBytesAsync(file, t.Body);
                var signature = WebhookSigning.Sign(t.Secret, t.Body);
                manifest.AppendLine(CultureInfo.InvariantCulture, $"/api/webhooks/github/{t.RepoId} {t.EventType} {signature} {file}");
            }
            var manifestFile = Path.Combine(folder, "targets.txt");
            await File.WriteAllTextAsync(manifestFile, manifest.ToString());
            var script = Path.Combine(folder, "ingest.lua");
            await File.WriteAllTextAsync(script, Script.Replace("MANIFEST", manifestFile, StringComparison.Ordinal)
                .Replace("RUN", Guid.NewGuid().ToString("N")[..8], StringComparison.Ordinal));

            return Parse(await Scenarios.RunAsync("wrk",
                [$"-t{threads}", $"-c{connections}", $"-d{Math.Max(1, (int)duration.TotalSeconds)}s", "--timeout", "10s", "-s", script, api.ToString()]));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Run Parse(string output)
    {
        var values = output.Split('\n').Where(l => l.StartsWith("cotex ", StringComparison.Ordinal))
            .Select(l => l.Split(' ', 3)).ToDictionary(p => p[1], p => p[2].Trim());
        double D(string key) => double.Parse(values[key], CultureInfo.InvariantCulture);
        // The distribution as wrk's percentiles 0.1..100 (it keeps a full histogram; the script prints one per 0.1%).
        var distribution = values["dist"].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture) / 1000).ToArray();
        return new Run((long)D("requests"), (long)D("errors"), D("seconds"),
            new Percentiles(D("p50") / 1000, D("p95") / 1000, D("p99") / 1000, D("max") / 1000), distribution);
    }

    // Each wrk thread has its own Lua state: setup() numbers them so delivery ids never collide. wrk counts answers
    // of 400 and up as errors.status.
    private const string Script = """
        local targets = {}
        for line in io.lines("MANIFEST") do
          local path, event, signature, file = line:match("^(%S+) (%S+) (%S+) (%S+)$")
          local f = io.open(file, "rb"); local body = f:read("*a"); f:close()
          targets[#targets + 1] = { path = path, event = event, signature = signature, body = body }
        end

        local thread_count = 0
        function setup(thread)
          thread_count = thread_count + 1
          thread:set("thread_id", thread_count)
        end

        local n = 0
        function request()
          n = n + 1
          local t = targets[n % #targets + 1]
          return wrk.format("POST", t.path, {
            ["Content-Type"] = "application/json",
            ["X-GitHub-Event"] = t.event,
            ["X-GitHub-Delivery"] = "wrk-RUN-" .. thread_id .. "-" .. n,
            ["X-Hub-Signature-256"] = t.signature,
          }, t.body)
        end

        function done(summary, latency, requests)
          local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status
          io.write(string.format("cotex requests %d\n", summary.requests))
          io.write(string.format("cotex errors %d\n", errors))
          io.write(string.format("cotex seconds %f\n", summary.duration / 1e6))
          io.write(string.format("cotex p50 %f\n", latency:percentile(50)))
          io.write(string.format("cotex p95 %f\n", latency:percentile(95)))
          io.write(string.format("cotex p99 %f\n", latency:percentile(99)))
          io.write(string.format("cotex max %f\n", latency.max))
          local points = {}
          for p = 1, 1000 do points[#points + 1] = string.format("%f", latency:percentile(p / 10)) end
          io.write("cotex dist " .. table.concat(points, ",") .. "\n")
        end
        """;
}
