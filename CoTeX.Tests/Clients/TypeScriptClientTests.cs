using System.Text.RegularExpressions;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Clients;

/// <summary>
/// The TypeScript client (<c>clients/typescript</c>, <c>@cotex/client</c>) against the real system: its own vitest
/// suite (<c>npm run test:integration</c>) runs against the Api and two Realtime replicas as processes, on a migrated
/// database of the shared Postgres and the shared Redis, and drives them as a desktop app would: live delivery, resume,
/// token expiry, refusals, a 10,000-event catch-up, a real Chromium through the CORS allowlist, and one replica killed
/// mid-stream (by its pid). The suite's environment is described in clients/typescript/test/integration/system.ts.
/// </summary>
public sealed partial class TypeScriptClientTests(TestInfrastructure infra)
{
    private static readonly string Package = Repository.PathOf("clients/typescript");

    /// <summary>
    /// The package's fast layer, so the README's test command runs it too: the type check, the unit tests (backoff,
    /// ordering, the iterator, REST errors), and the check that the generated types are what the checked-in documents
    /// give (ClientSchemaTests keeps the documents equal to the services).
    /// </summary>
    [Fact]
    public async Task The_typescript_clients_unit_suite_and_generated_types_check_pass()
    {
        await RequireNodeAsync();
        await EnsurePackagesAsync();

        await using var suite = ChildProcess.Start("npm", ["test"], new Dictionary<string, string> { ["NO_COLOR"] = "1", ["CI"] = "1" }, Package);
        var exitCode = await suite.WaitForExitAsync(TimeSpan.FromMinutes(5));

        TestContext.Current.TestOutputHelper?.WriteLine($"npm test (exit {exitCode}):\n{Summary(suite)}");
        exitCode.Should().Be(0, $"npm test failed:\n{suite.Tail(80)}");
        TestsLine().Match(string.Join('\n', suite.Output)).Groups["failed"].Success.Should().BeFalse();
    }

    [Fact]
    public async Task The_typescript_clients_integration_suite_passes_against_the_api_and_two_realtime_replicas()
    {
        var chromium = Environment.GetEnvironmentVariable("COTEX_CHROMIUM") ?? "/usr/bin/chromium";
        await RequireNodeAsync();
        File.Exists(chromium).Should().BeTrue(
            $"the browser scenario runs Chromium ({chromium}): install it with `apt-get install -y chromium` (.ci/run does), or set COTEX_CHROMIUM");
        await EnsurePackagesAsync();

        var db = await infra.CreateMigratedDatabaseAsync();
        var browserOrigin = $"http://127.0.0.1:{TestMachine.FreePort()}";
        var services = new Dictionary<string, string>
        {
            ["ConnectionStrings__cotexdb"] = db,
            ["ConnectionStrings__redis"] = infra.Redis.ConnectionString,
            // The page the browser scenario serves is allowed on the REST API and the hub's WebSocket.
            ["Cors__AllowedOrigins"] = browserOrigin,
            // 10,000 signed webhooks from loopback in seconds, and a dozen users from one address.
            ["RateLimiting__Enabled"] = "false",
        };
        var realtime = new Dictionary<string, string>(services) { ["Realtime__SweepSeconds"] = "1" };
        await using var api = await ServiceProcess.StartAsync("CoTeX.Api", services);
        await using var realtime1 = await ServiceProcess.StartAsync("CoTeX.Realtime", realtime);
        await using var realtime2 = await ServiceProcess.StartAsync("CoTeX.Realtime", realtime);

        var environment = new Dictionary<string, string>
        {
            ["COTEX_API_URL"] = Base(api.Url),
            ["COTEX_REALTIME_URLS"] = $"{Base(realtime1.Url)},{Base(realtime2.Url)}",
            ["COTEX_REALTIME_PIDS"] = $"{realtime1.Id},{realtime2.Id}",
            ["COTEX_DEVTOOLS"] = Path.Combine(AppContext.BaseDirectory, "CoTeX.DevTools.dll"),
            ["Auth__JwtSecret"] = TestTokens.Secret,
            ["COTEX_BROWSER_ORIGIN"] = browserOrigin,
            ["COTEX_CHROMIUM"] = chromium,
            ["COTEX_GITHUB_PAYLOADS"] = GitHubPayloads.Root,
            ["NO_COLOR"] = "1",
            ["CI"] = "1",
        };
        await using var suite = ChildProcess.Start("npm", ["run", "test:integration"], environment, Package);
        var exitCode = await suite.WaitForExitAsync(TimeSpan.FromMinutes(10));

        var output = string.Join('\n', suite.Output);
        var summary = Summary(suite);
        TestContext.Current.TestOutputHelper?.WriteLine($"npm run test:integration (exit {exitCode}):\n{summary}");
        // As the hostile-input suites do: a summary file CI prints (.ci/run).
        await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "typescript-client-summary.txt"),
            $"TypeScript client, npm run test:integration (exit {exitCode}):\n{summary}\n");
        exitCode.Should().Be(0, $"the vitest run failed:\n{suite.Tail(120)}");
        var tests = TestsLine().Match(output);
        tests.Success.Should().BeTrue($"vitest prints a Tests line:\n{suite.Tail(40)}");
        tests.Groups["failed"].Success.Should().BeFalse(output);
        tests.Groups["skipped"].Success.Should().BeFalse("every scenario runs (none skipped)");
        int.Parse(tests.Groups["passed"].Value).Should().BeGreaterThanOrEqualTo(10, "each scenario of test/integration/system.test.ts");
    }

    /// <summary>Node 20+ and npm on the PATH, or a failure that says how to get them (never a silent skip).</summary>
    private static async Task RequireNodeAsync()
    {
        const string Install = "the TypeScript client's suites need Node.js 20+ and npm: `apt-get install -y nodejs npm` " +
                               "where the distribution's Node is 20+ (.ci/run does), otherwise https://nodejs.org/en/download";
        string version;
        try
        {
            version = (await ChildProcess.RunAsync("node", ["--version"])).Trim();
            await ChildProcess.RunAsync("npm", ["--version"]);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException($"{Install} ({ex.Message})", ex);
        }
        var major = int.Parse(Regex.Match(version, @"^v(\d+)").Groups[1].Value);
        major.Should().BeGreaterThanOrEqualTo(20, $"{Install}; found {version}");
    }

    /// <summary>The packages from the lockfile (npm ci), unless node_modules is there already.</summary>
    private static async Task EnsurePackagesAsync()
    {
        if (!Directory.Exists(Path.Combine(Package, "node_modules")))
        {
            await ChildProcess.RunAsync("npm", ["ci", "--no-audit", "--no-fund"], TimeSpan.FromMinutes(5), workingDirectory: Package);
        }
    }

    /// <summary>vitest's totals and the figures the scenarios print.</summary>
    private static string Summary(ChildProcess suite) =>
        string.Join('\n', suite.Output.Select(l => l.Trim()).Where(l => SummaryLine().IsMatch(l) || l.StartsWith("catch-up:", StringComparison.Ordinal)
                                                                      || l.StartsWith("replica loss:", StringComparison.Ordinal)
                                                                      || l.StartsWith("token expiry:", StringComparison.Ordinal)));

    private static string Base(Uri url) => url.ToString().TrimEnd('/');

    [GeneratedRegex(@"^\s*(Test Files|Tests|Duration)\s")]
    private static partial Regex SummaryLine();

    // vitest: "      Tests  9 passed (9)" or "      Tests  1 failed | 8 passed (9)", "... | 2 skipped ..."
    [GeneratedRegex(@"^\s*Tests\s+(?:(?<failed>\d+) failed \| )?(?<passed>\d+) passed(?: \| (?<skipped>\d+) skipped)?", RegexOptions.Multiline)]
    private static partial Regex TestsLine();
}
