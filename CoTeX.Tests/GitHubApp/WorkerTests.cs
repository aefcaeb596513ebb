extern alias worker;

using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using worker::CoTeX.Worker.GitHubApp;

namespace CoTeX.Tests.GitHubApp;

/// <summary>The Worker's half of GitHub App mode: access re-checks, installation checks, redelivery of failed deliveries.</summary>
public sealed class WorkerTests(TestInfrastructure infra)
{
    [Fact]
    public async Task The_Worker_rechecks_access_so_a_removal_GitHub_sends_no_event_for_takes_effect_within_the_interval()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, new() { ["GitHubApp:RecheckSeconds"] = "1" });
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        await using var worker = StartWorker(world, new() { ["GitHubApp:RecheckSeconds"] = "1" });
        _ = worker.Services;

        // Alice leaves acme on GitHub; the app is told nothing.
        world.GitHub.Deny(1, GitHubAppWorld.Api);
        await Eventually.SucceedsAsync(async () =>
            (await world.PushAsync()).Should().Be("no followers"), TimeSpan.FromSeconds(30));

        // She is back: the next re-check says so.
        world.GitHub.Grant(1, GitHubAppWorld.Api);
        await Eventually.SucceedsAsync(async () =>
            (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_user_repo_access where user_id = '{alice}'")).Should().Be(1),
            TimeSpan.FromSeconds(30));

        // Her token expires: the Worker refreshes it and goes on.
        var refreshesBefore = world.GitHub.Calls.Count(c => c == "POST /login/oauth/access_token");
        world.GitHub.ExpireUserTokens();
        await Eventually.SucceedsAsync(() =>
        {
            world.GitHub.Calls.Count(c => c == "POST /login/oauth/access_token").Should().BeGreaterThan(refreshesBefore);
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(30));
        (await world.ApiApp.ScalarAsync<bool>($"select revoked_at is null from github_connections where user_id = '{alice}'")).Should().BeTrue();

        // She revokes CoTeX on GitHub and the event is lost: the Worker finds out from GitHub's 401.
        world.GitHub.RevokeTokens(1);
        await Eventually.SucceedsAsync(async () =>
            (await world.ApiApp.ScalarAsync<bool>($"select revoked_at is not null from github_connections where user_id = '{alice}'")).Should().BeTrue(),
            TimeSpan.FromSeconds(30));
        (await world.PushAsync()).Should().Be("no followers");
    }

    [Fact]
    public async Task The_Worker_checks_installations_with_a_cached_installation_token()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"), (GitHubAppWorld.Web, "acme/web"));
        await using var worker = StartWorker(world, new() { ["GitHubApp:RecheckSeconds"] = "86400" });
        var maintenance = worker.Services.GetRequiredService<GitHubAppMaintenance>();
        await Eventually.SucceedsAsync(() =>
        {
            world.GitHub.InstallationTokensMinted.Should().Be(1); // the Worker's first round, at start
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(30));

        // acme/web leaves the installation and the event is lost.
        world.GitHub.AddInstallation(GitHubAppWorld.Installation, "acme", "Organization", (GitHubAppWorld.Api, "acme/api"), (GitHubAppWorld.Secret, "acme/secret"));
        (await maintenance.CheckInstallationsAsync(CancellationToken.None)).Should().Be(1);
        (await world.PushAsync(GitHubAppWorld.Web, "acme/web")).Should().Be("no followers");
        (await world.PushAsync()).Should().Be("stored");

        // The app is uninstalled and that event is lost too.
        world.GitHub.Uninstall(GitHubAppWorld.Installation);
        await maintenance.CheckInstallationsAsync(CancellationToken.None);
        (await world.PushAsync()).Should().Be("no followers");
        world.GitHub.InstallationTokensMinted.Should().Be(1, "the token minted in the first round is good for an hour");
    }

    [Fact]
    public async Task Failed_deliveries_are_redelivered_at_a_bounded_rate_and_arrive_once()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        await using var worker = StartWorker(world, new()
        {
            ["GitHubApp:RecheckSeconds"] = "86400", ["GitHubApp:RedeliverySeconds"] = "86400", ["GitHubApp:MaxRedeliveriesPerRun"] = "2",
        });
        var maintenance = worker.Services.GetRequiredService<GitHubAppMaintenance>();
        await FirstRoundDoneAsync(world);

        // A long outage: GitHub cannot reach CoTeX for three deliveries, then it can again.
        var api = world.GitHub.WebhookClient!;
        world.GitHub.WebhookClient = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{TestMachine.FreePort()}") };
        for (var i = 0; i < 3; i++)
        {
            (await world.GitHub.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"))).StatusCode.Should().Be(0);
        }
        world.GitHub.WebhookClient = api;
        await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));

        var first = await maintenance.RedeliverFailedAsync(CancellationToken.None);
        first.Should().Be(new GitHubAppMaintenance.RedeliveryReport(Failed: 3, Requested: 2, Waiting: 1, GivenUp: 0));
        await Eventually.SucceedsAsync(async () => (await world.CountEventsAsync(alice)).Should().Be(3), TimeSpan.FromSeconds(30));
        await RedeliveriesRecordedAsync(world, 2);
        var second = await maintenance.RedeliverFailedAsync(CancellationToken.None);
        second.Should().Be(new GitHubAppMaintenance.RedeliveryReport(Failed: 1, Requested: 1, Waiting: 0, GivenUp: 0));
        await Eventually.SucceedsAsync(async () => (await world.CountEventsAsync(alice)).Should().Be(4), TimeSpan.FromSeconds(30));
        await RedeliveriesRecordedAsync(world, 3);
        (await maintenance.RedeliverFailedAsync(CancellationToken.None)).Failed.Should().Be(0);
        world.GitHub.Deliveries.Count(d => d.Redelivery).Should().Be(3);

        // A delivery that fails every time is asked for three times, then given up.
        world.GitHub.WebhookClient = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{TestMachine.FreePort()}") };
        await world.GitHub.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            (await maintenance.RedeliverFailedAsync(CancellationToken.None)).Should().Be(
                new GitHubAppMaintenance.RedeliveryReport(Failed: 1, Requested: 1, Waiting: 0, GivenUp: 0), $"attempt {attempt}");
            var attempts = attempt + 1;
            await Eventually.SucceedsAsync(() =>
            {
                world.GitHub.Deliveries.Count(d => d.StatusCode == 0).Should().Be(3 + attempts);
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(30));
        }
        (await maintenance.RedeliverFailedAsync(CancellationToken.None)).Should().Be(
            new GitHubAppMaintenance.RedeliveryReport(Failed: 1, Requested: 0, Waiting: 0, GivenUp: 1));
    }

    /// <summary>
    /// Seen from GitHub: the Worker looks at the app's deliveries, checks the installation and re-checks a connection
    /// every interval, not every second interval (each job's next time used to be counted from when its work ended, so
    /// it missed the tick that fell due and ran on the one after).
    /// </summary>
    [Fact]
    public async Task The_Workers_jobs_run_on_their_interval_as_GitHub_sees_them()
    {
        const int interval = 2;
        await using var world = await GitHubAppWorld.StartAsync(infra, new() { ["GitHubApp:RecheckSeconds"] = $"{interval}" });
        await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        var started = DateTimeOffset.UtcNow;
        await using var worker = StartWorker(world, new()
        {
            ["GitHubApp:RecheckSeconds"] = $"{interval}", ["GitHubApp:RedeliverySeconds"] = $"{interval}",
        });
        _ = worker.Services;
        await Task.Delay(TimeSpan.FromSeconds(7 * interval + 1));

        foreach (var call in new[] { "GET /app/hook/deliveries", $"GET /app/installations/{GitHubAppWorld.Installation}", "GET /user/installations" })
        {
            var times = world.GitHub.TimedCalls.Where(c => c.Call == call && c.At > started).Select(c => c.At).ToList();
            times.Should().HaveCountGreaterThanOrEqualTo(5, call);
            var gaps = times.Zip(times.Skip(1), (a, b) => (b - a).TotalSeconds).ToList();
            gaps.Average().Should().BeInRange(interval * 0.75, interval * 1.4, $"{call} ran at {string.Join(", ", gaps.Select(g => g.ToString("0.0")))} s apart");
        }
    }

    [Fact]
    public async Task Every_due_connection_is_rechecked_in_one_round_however_many_there_are()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        await using var worker = StartWorker(world, new() { ["GitHubApp:RecheckSeconds"] = "86400" });
        var maintenance = worker.Services.GetRequiredService<GitHubAppMaintenance>();
        await FirstRoundDoneAsync(world);
        // 250 connections due, whose tokens this Worker cannot read: each check fails and is retried a minute later.
        await world.ApiApp.ScalarAsync<int>(
            """
            with u as (insert into users (id) select gen_random_uuid() from generate_series(1, 250) returning id)
            insert into github_connections (user_id, github_user_id, github_login, token_protected, recheck_after)
            select id, 1, 'someone', 'not-a-protected-token', now() - interval '1 minute' from u;
            select 0
            """);

        var report = await maintenance.RecheckDueAsync(CancellationToken.None);

        report.Should().Be(new GitHubAppMaintenance.RecheckReport(Connections: 250, Revoked: 0, Failed: 250));
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_connections where recheck_after > now()")).Should().Be(250);
        (await maintenance.RecheckDueAsync(CancellationToken.None)).Connections.Should().Be(0);
    }

    [Fact]
    public async Task Tokens_keys_and_secrets_never_reach_the_log()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra, new() { ["GitHubApp:RecheckSeconds"] = "1" });
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        world.GitHub.ExpireUserTokens(); // the re-check refreshes: a code exchange's answer goes through the Worker too
        var environment = world.GitHub.Settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value!);
        environment["ConnectionStrings__cotexdb"] = world.ApiApp.DatabaseConnectionString;
        environment["ConnectionStrings__redis"] = infra.Redis.ConnectionString;
        environment["GitHubApp__RecheckSeconds"] = "1";
        environment["Serilog__MinimumLevel__Default"] = "Debug";

        await using var worker = await ServiceProcess.StartAsync("CoTeX.Worker", environment);
        await Eventually.SucceedsAsync(() =>
        {
            world.GitHub.InstallationTokensMinted.Should().BeGreaterThan(0);
            world.GitHub.Calls.Should().Contain("POST /login/oauth/access_token");
            worker.Output.Should().Contain(l => l.Contains("GitHub App access re-checked", StringComparison.Ordinal));
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(30));

        worker.Output.Should().Contain(l => l.Contains("GitHub App mode is on", StringComparison.Ordinal));
        foreach (var secret in new[] { "ghu_", "ghr_", "ghs_", "eyJ", FakeGitHub.ClientSecret, FakeGitHub.WebhookSecret, "PRIVATE KEY" })
        {
            worker.Output.Should().NotContain(l => l.Contains(secret, StringComparison.Ordinal), $"{secret}… must not be logged");
        }
        (await world.ApiApp.ScalarAsync<bool>($"select revoked_at is null from github_connections where user_id = '{alice}'")).Should().BeTrue();
    }

    /// <summary>The Worker's round at start has ended (its last step, the look at the deliveries, has left its mark).</summary>
    private static Task FirstRoundDoneAsync(GitHubAppWorld world) =>
        Eventually.SucceedsAsync(async () =>
            (await world.ApiApp.ScalarAsync<long>("select count(*) from github_app_state")).Should().Be(1), TimeSpan.FromSeconds(30));

    /// <summary>GitHub records an attempt once CoTeX has answered it, a moment after the event is stored.</summary>
    private static Task RedeliveriesRecordedAsync(GitHubAppWorld world, int succeeded) =>
        Eventually.SucceedsAsync(() =>
        {
            world.GitHub.Deliveries.Count(d => d.Redelivery && d.StatusCode == 200).Should().Be(succeeded);
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(30));

    private ServiceHost<worker::Program> StartWorker(GitHubAppWorld world, Dictionary<string, string?> settings)
    {
        var all = new Dictionary<string, string?>(world.GitHub.Settings) { ["Retention:Enabled"] = "false" };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }
        return ServiceHost<worker::Program>.Create(world.ApiApp.DatabaseConnectionString, infra.Redis.ConnectionString, all);
    }
}
