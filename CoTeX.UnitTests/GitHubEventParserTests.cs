using CoTeX.Api.GitHubWebhooks;

namespace CoTeX.UnitTests;

/// <summary>What the store and the fan-out read out of GitHub's real payloads.</summary>
public sealed class GitHubEventParserTests
{
    private static byte[] Payload(string path) =>
        File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "TestData", "github-payloads", path));

    [Fact]
    public void An_app_delivery_names_its_repository_and_installation_by_GitHubs_ids()
    {
        var parsed = GitHubEventParser.Parse("push", Payload("push/with-installation.payload.json"));

        parsed.RepositoryFullName.Should().Be("Codertocat/Hello-World");
        parsed.RepositoryId.Should().Be(186853002);
        parsed.InstallationId.Should().Be(1);
        parsed.Sender.Should().Be("Codertocat");
    }

    [Fact]
    public void A_per_repo_delivery_has_no_installation()
    {
        var parsed = GitHubEventParser.Parse("push", Payload("push/payload.json"));

        parsed.InstallationId.Should().BeNull();
        parsed.RepositoryFullName.Should().NotBeNullOrEmpty();
    }

    [Fact]
    public void An_event_type_the_parser_does_not_know_still_gives_its_repository_and_action()
    {
        var parsed = GitHubEventParser.Parse("some_future_event", Payload("dependabot_alert/created.payload.json"));

        parsed.Action.Should().Be("created");
        parsed.RepositoryFullName.Should().NotBeNullOrEmpty();
    }
}
