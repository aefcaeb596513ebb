using CoTeX.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Tests.Cli;

/// <summary>
/// What a user of the <c>cotex</c> CLI sees when something is wrong: one line on stderr that says what happened and
/// what to do, and an exit code a script can branch on (listed in <c>cotex --help</c>), never a stack trace.
/// </summary>
public sealed class CliErrorTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_rejected_token_is_one_line_naming_COTEX_TOKEN_and_exit_code_3_for_rest_and_for_watch()
    {
        await using var api = await ApiApp.StartAsync(infra, kestrel: true);
        var forged = TestTokens.For(Guid.NewGuid(), d => d.SigningCredentials = new SigningCredentials(
            new SymmetricSecurityKey(new byte[32]), SecurityAlgorithms.HmacSha256));

        foreach (var command in new[] { new[] { "repos", "add", "octocat/Hello-World" }, ["watch"] })
        {
            var run = await RunAsync(api, forged, command);

            run.ExitCode.Should().Be(3, run.ToString());
            run.ShouldBeOneErrorLine().Should().Contain("rejected the token").And.Contain("COTEX_TOKEN");
        }
    }

    [Fact]
    public async Task An_unreachable_api_is_one_line_naming_the_url_and_exit_code_6()
    {
        var closed = $"http://127.0.0.1:{TestMachine.FreePort()}";

        var run = await RunAsync(null, TestTokens.For(Guid.NewGuid()), ["repos", "list"], closed);

        run.ExitCode.Should().Be(6, run.ToString());
        run.ShouldBeOneErrorLine().Should().Contain("Cannot reach CoTeX at " + closed);
    }

    [Fact]
    public async Task The_plan_limit_is_one_line_saying_how_to_make_room_and_exit_code_4()
    {
        await using var api = await ApiApp.StartAsync(infra, kestrel: true);
        var token = TestTokens.For(Guid.NewGuid());
        for (var i = 1; i <= 3; i++)
        {
            (await RunAsync(api, token, ["repos", "add", $"octocat/repo-{i}"])).ExitCode.Should().Be(0);
        }

        var run = await RunAsync(api, token, ["repos", "add", "octocat/repo-4"]);

        run.ExitCode.Should().Be(4, run.ToString());
        run.ShouldBeOneErrorLine().Should().Contain("Upgrade to Pro").And.Contain("cotex repos remove");
    }

    [Fact]
    public async Task Usage_mistakes_exit_2_and_help_lists_the_exit_codes()
    {
        (await RunAsync(null, token: null, ["repos", "list"])).Should().Match<CliRun>(r =>
            r.ExitCode == 2 && r.Error.Contains("Set COTEX_TOKEN"));
        (await RunAsync(null, TestTokens.For(Guid.NewGuid()), ["repos", "remove", "not-a-guid"])).ExitCode.Should().Be(2);

        var help = await RunAsync(null, token: null, ["--help"]);

        help.ExitCode.Should().Be(0);
        help.Output.Should().Contain("Exit codes:").And.Contain("3  the token was rejected").And.Contain("6  CoTeX cannot be reached");
    }

    private static Task<CliRun> RunAsync(ApiApp? api, string? token, string[] arguments, string? apiUrl = null) =>
        CotexCli.RunAsync(apiUrl ?? api?.Host.ClientOptions.BaseAddress.ToString().TrimEnd('/'), token, arguments);
}
