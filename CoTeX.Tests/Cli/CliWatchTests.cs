using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Cli;

/// <summary>
/// <c>cotex watch</c> across token expiries: with a token source that gives fresh tokens (COTEX_TOKEN_FILE,
/// COTEX_TOKEN_COMMAND) it reconnects and prints every event once, in order; with a fixed COTEX_TOKEN it stops with
/// exit code 3 when the token expires.
/// </summary>
public sealed partial class CliWatchTests(TestInfrastructure infra)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(4);

    [Theory]
    [InlineData("COTEX_TOKEN_FILE")]
    [InlineData("COTEX_TOKEN_COMMAND")]
    public async Task Watch_gets_a_fresh_token_at_each_expiry_and_prints_every_event_once_in_order(string source)
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, apiKestrel: true);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var folder = Directory.CreateTempSubdirectory("cotex-watch-");
        var tokenFile = Path.Combine(folder.FullName, "token");
        // Whatever keeps the user's session current: a fresh short-lived token in the file every second.
        using var stopMinting = new CancellationTokenSource();
        WriteToken(tokenFile, userId);
        var minting = Task.Run(async () =>
        {
            while (!stopMinting.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                WriteToken(tokenFile, userId);
            }
        });

        string[] arguments = ["watch", "--position-file", Path.Combine(folder.FullName, "position")];
        using var watch = new WatchRun(CotexCli.Start(ApiUrl(cluster), token: null, arguments, new Dictionary<string, string?>
        {
            ["COTEX_REALTIME_URLS"] = string.Join(',', cluster.ReplicaUrls),
            [source] = source == "COTEX_TOKEN_FILE" ? tokenFile : $"cat '{tokenFile}'",
        }));
        await watch.WaitForAsync(() => watch.Connections >= 1, "the first connection");

        // Webhooks all the while, until watch has been through at least three expiries.
        var sent = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (watch.Connections < 4 && DateTime.UtcNow < deadline)
        {
            sent += (await cluster.DeliverAsync(repo, 1)).Count;
            await Task.Delay(50);
        }
        sent += (await cluster.DeliverAsync(repo, 5)).Count;
        await watch.WaitForAsync(() => watch.Positions.Count >= sent, $"{sent} events printed");
        await Task.Delay(TimeSpan.FromSeconds(1)); // room for a duplicate to show up
        await stopMinting.CancelAsync();
        await minting;

        watch.Connections.Should().BeGreaterThanOrEqualTo(4, watch.ToString());
        watch.Error.Should().Contain("the token has expired; reconnecting with a fresh one");
        watch.Positions.Should().Equal(Enumerable.Range(1, sent).Select(p => (long)p), "0 lost, 0 duplicated, in order");
        folder.Delete(recursive: true);
    }

    [Fact]
    public async Task Watch_with_a_fixed_COTEX_TOKEN_stops_with_exit_code_3_when_it_expires_and_says_how_to_refresh()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, apiKestrel: true);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var folder = Directory.CreateTempSubdirectory("cotex-watch-");
        var token = TestTokens.For(userId, d => d.Expires = DateTime.UtcNow.AddSeconds(8));

        string[] arguments = ["watch", "--position-file", Path.Combine(folder.FullName, "position")];
        using var watch = new WatchRun(CotexCli.Start(ApiUrl(cluster), token, arguments, new Dictionary<string, string?>
        {
            ["COTEX_REALTIME_URLS"] = string.Join(',', cluster.ReplicaUrls),
        }));
        await watch.WaitForAsync(() => watch.Connections >= 1, "the first connection");
        await cluster.DeliverAsync(repo, 2);
        await watch.WaitForAsync(() => watch.Positions.Count >= 2, "2 events printed");

        await watch.WaitForAsync(() => watch.Exited, "watch to stop");

        watch.ExitCode.Should().Be(3, watch.ToString());
        var last = watch.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        last.Should().StartWith("cotex: The token in COTEX_TOKEN expired").And.Contain("COTEX_TOKEN_FILE").And.NotContain("Exception");
        watch.Positions.Should().Equal(1, 2);
        folder.Delete(recursive: true);
    }

    private static string ApiUrl(RealtimeCluster cluster) => cluster.Api.Host.ClientOptions.BaseAddress.ToString().TrimEnd('/');

    private static void WriteToken(string path, Guid userId)
    {
        // Replaced whole, as a session refresher should, so a reader never sees half a token.
        var temp = path + ".tmp";
        File.WriteAllText(temp, TestTokens.For(userId, d => d.Expires = DateTime.UtcNow + Lifetime));
        File.Move(temp, path, overwrite: true);
    }

    [GeneratedRegex(@" #(\d+) ")]
    private static partial Regex PositionInLine();

    /// <summary>A running <c>cotex watch</c>: the positions it printed and what it said on stderr.</summary>
    private sealed class WatchRun : IDisposable
    {
        private readonly Process _process;
        private readonly List<long> _positions = [];
        private readonly List<string> _error = [];
        private readonly Task _reading;

        public WatchRun(Process process)
        {
            _process = process;
            _reading = Task.WhenAll(
                Task.Run(async () =>
                {
                    while (await process.StandardOutput.ReadLineAsync() is { } line)
                    {
                        if (PositionInLine().Match(line) is { Success: true } match)
                        {
                            lock (_positions) { _positions.Add(long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)); }
                        }
                    }
                }),
                Task.Run(async () =>
                {
                    while (await process.StandardError.ReadLineAsync() is { } line)
                    {
                        lock (_error) { _error.Add(line); }
                    }
                }));
        }

        public IReadOnlyList<long> Positions { get { lock (_positions) { return _positions.ToList(); } } }
        public string Error { get { lock (_error) { return string.Join('\n', _error); } } }
        public int Connections { get { lock (_error) { return _error.Count(l => l.StartsWith("connected to ", StringComparison.Ordinal)); } } }
        public bool Exited => _process.HasExited && _reading.IsCompleted;
        public int ExitCode => _process.ExitCode;

        public Task WaitForAsync(Func<bool> condition, string what) =>
            Eventually.SucceedsAsync(() =>
            {
                condition().Should().BeTrue($"waiting for {what}: {this}");
                return Task.CompletedTask;
            }, TimeSpan.FromMinutes(2));

        public override string ToString() => $"printed positions {string.Join(',', Positions)}; stderr: {Error}";

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
            _process.Dispose();
        }
    }
}
