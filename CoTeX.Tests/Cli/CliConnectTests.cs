using System.Net;
using System.Text;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Cli;

/// <summary><c>cotex connect</c>, then tracking through the GitHub App from the terminal.</summary>
public sealed class CliConnectTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Connect_prints_the_url_waits_for_the_browser_and_then_repos_are_tracked_through_the_app()
    {
        await using var gitHub = await FakeGitHub.StartAsync();
        gitHub.AddInstallation(10, "acme", "Organization", (100, "acme/api"), (101, "acme/web"));
        gitHub.AddUser(1, "octo");
        gitHub.Grant(1, 100);
        await using var api = await ApiApp.StartAsync(infra, gitHub.Settings, kestrel: true);
        var apiUrl = api.Host.ClientOptions.BaseAddress.ToString().TrimEnd('/');
        var token = TestTokens.For(Guid.NewGuid());
        string[] arguments = ["connect", "--wait", "60"];

        var process = CotexCli.Start(apiUrl, token, arguments);
        var output = new StringBuilder();
        var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                output.AppendLine(line);
                if (line.TrimStart().StartsWith(gitHub.BaseUrl, StringComparison.Ordinal))
                {
                    url.TrySetResult(line.Trim());
                }
            }
            return output.ToString();
        });

        // The user opens the URL, approves at GitHub, and confirms on CoTeX's page.
        var callback = gitHub.Approve(await url.Task.WaitAsync(TimeSpan.FromSeconds(30)), 1);
        var browser = api.AnonymousClient();
        var page = await (await browser.GetAsync(new Uri(callback).PathAndQuery)).Content.ReadAsStringAsync();
        var confirmed = await browser.PostAsync("/api/github-app/callback", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["state"] = GitHubAppWorld.FormField(page, "state"), ["confirm"] = GitHubAppWorld.FormField(page, "confirm"),
        }));
        confirmed.StatusCode.Should().Be(HttpStatusCode.OK);

        var run = await CotexCli.WaitAsync(process, arguments, reading);
        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("Open this URL in your browser").And.Contain("Connected GitHub @octo").And.Contain("acme/api")
            .And.NotContain("acme/web");

        var add = await CotexCli.RunAsync(apiUrl, token, ["repos", "add", "acme/api"]);
        add.Output.Should().Contain("Delivered by the CoTeX GitHub App: nothing to set up.").And.NotContain("Secret");
        var webhook = await CotexCli.RunAsync(apiUrl, token, ["repos", "add", "acme/web"]);
        webhook.Output.Should().Contain("Payload URL:");
        var list = await CotexCli.RunAsync(apiUrl, token, ["repos", "list"]);
        list.Output.Should().MatchRegex("acme/api +via app").And.MatchRegex("acme/web +via webhook");
    }

    [Fact]
    public async Task Connect_on_a_server_without_the_app_says_so_and_exits_5()
    {
        await using var api = await ApiApp.StartAsync(infra, kestrel: true);

        var run = await CotexCli.RunAsync(api.Host.ClientOptions.BaseAddress.ToString().TrimEnd('/'), TestTokens.For(Guid.NewGuid()), ["connect"]);

        run.ExitCode.Should().Be(5, run.ToString());
        run.ShouldBeOneErrorLine().Should().Contain("no GitHub App");
    }
}
