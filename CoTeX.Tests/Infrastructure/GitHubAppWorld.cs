using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CoTeX.Contracts;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// GitHub App mode end to end: a fake GitHub, the Api and two Realtime replicas configured with its app, and the
/// steps users take (connect through the browser flow, track through the app) and GitHub takes (deliver an event).
/// The cast: installation 10 on the organisation acme covers acme/api (100), acme/web (101) and acme/secret (102).
/// </summary>
public sealed class GitHubAppWorld : IAsyncDisposable
{
    public const long Installation = 10;
    public const long Api = 100, Web = 101, Secret = 102;

    private GitHubAppWorld(FakeGitHub gitHub, RealtimeCluster cluster)
    {
        GitHub = gitHub;
        Cluster = cluster;
    }

    public FakeGitHub GitHub { get; }
    public RealtimeCluster Cluster { get; }
    public ApiApp ApiApp => Cluster.Api;

    public static async Task<GitHubAppWorld> StartAsync(TestInfrastructure infra, Dictionary<string, string?>? apiSettings = null,
        string? databaseConnectionString = null)
    {
        var gitHub = await FakeGitHub.StartAsync();
        gitHub.AddInstallation(Installation, "acme", "Organization", (Api, "acme/api"), (Web, "acme/web"), (Secret, "acme/secret"));
        var settings = new Dictionary<string, string?>(gitHub.Settings);
        foreach (var (key, value) in apiSettings ?? [])
        {
            settings[key] = value;
        }
        var cluster = await RealtimeCluster.StartAsync(infra, apiSettings: settings, databaseConnectionString: databaseConnectionString);
        gitHub.WebhookClient = cluster.Api.Host.CreateClient();
        return new GitHubAppWorld(gitHub, cluster);
    }

    /// <summary>A GitHub user who can access <paramref name="repositories"/> (of installation 10).</summary>
    public void AddGitHubUser(long id, string login, params long[] repositories)
    {
        GitHub.AddUser(id, login);
        GitHub.Grant(id, repositories);
    }

    /// <summary>
    /// Connect GitHub as a user does it: the client asks for the URL, the browser approves at GitHub as
    /// <paramref name="githubUserId"/>, lands on the callback page and presses Connect. Returns the last page.
    /// </summary>
    public async Task<string> ConnectAsync(Guid userId, long githubUserId)
    {
        var callback = await StartConnectAsync(userId, githubUserId);
        var confirmation = await BrowseAsync(callback);
        confirmation.Status.Should().Be(HttpStatusCode.OK, confirmation.Html);
        var (status, html) = await ConfirmAsync(confirmation.Html);
        status.Should().Be(HttpStatusCode.OK, html);
        html.Should().Contain("GitHub connected");
        return html;
    }

    /// <summary>The first half: the callback URL GitHub sends the browser to after <paramref name="githubUserId"/> approved.</summary>
    public async Task<string> StartConnectAsync(Guid userId, long githubUserId)
    {
        var response = await ApiApp.ClientFor(userId).PostAsync("/api/github-app/connect", null);
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var start = (await response.Content.ReadFromJsonAsync<GitHubConnectStart>())!;
        start.Url.Should().StartWith(GitHub.BaseUrl + "/login/oauth/authorize?");
        return GitHub.Approve(start.Url, githubUserId);
    }

    /// <summary>A browser's GET (no CoTeX token): the status and the page.</summary>
    public async Task<(HttpStatusCode Status, string Html)> BrowseAsync(string url)
    {
        var response = await ApiApp.AnonymousClient().GetAsync(new Uri(url).PathAndQuery);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Submits the confirmation page's form as the browser would.</summary>
    public Task<(HttpStatusCode Status, string Html)> ConfirmAsync(string confirmationPage) =>
        PostFormAsync(FormField(confirmationPage, "state"), FormField(confirmationPage, "confirm"));

    public async Task<(HttpStatusCode Status, string Html)> PostFormAsync(string? state, string? confirm)
    {
        var fields = new List<KeyValuePair<string, string>>();
        if (state is not null) fields.Add(new("state", state));
        if (confirm is not null) fields.Add(new("confirm", confirm));
        var response = await ApiApp.AnonymousClient().PostAsync("/api/github-app/callback", new FormUrlEncodedContent(fields));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public static string FormField(string html, string name) =>
        WebUtility.HtmlDecode(Regex.Match(html, $"name=\"{name}\" value=\"([^\"]*)\"").Groups[1].Value);

    /// <summary>Tracks <paramref name="fullName"/> as <paramref name="userId"/>; the answer.</summary>
    public Task<HttpResponseMessage> TrackAsync(Guid userId, string fullName, string? source = null) =>
        ApiApp.ClientFor(userId).PostAsJsonAsync("/api/repos", new { fullName, source });

    public async Task<CreatedRepo> TrackThroughAppAsync(Guid userId, string fullName)
    {
        var response = await TrackAsync(userId, fullName, RepoSources.App);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<CreatedRepo>())!;
    }

    /// <summary>
    /// A CoTeX user whose GitHub account (<paramref name="githubUserId"/>) can access <paramref name="repositories"/>,
    /// connected, and tracking each of them through the app.
    /// </summary>
    public async Task<Guid> NewFollowerAsync(long githubUserId, string login, params (long Id, string FullName)[] repositories)
    {
        AddGitHubUser(githubUserId, login, repositories.Select(r => r.Id).ToArray());
        var userId = Guid.NewGuid();
        await ConnectAsync(userId, githubUserId);
        foreach (var (_, fullName) in repositories)
        {
            await TrackThroughAppAsync(userId, fullName);
        }
        return userId;
    }

    /// <summary>GitHub delivers a push for acme/api (or <paramref name="repositoryId"/>); the Api's <c>status</c>.</summary>
    public async Task<string> PushAsync(long repositoryId = Api, string fullName = "acme/api") =>
        (await DeliverAsync("push", Push(repositoryId, fullName)))["status"]!.GetValue<string>();

    /// <summary>A real push payload (push/with-installation) about <paramref name="repositoryId"/> of installation 10.</summary>
    public static byte[] Push(long repositoryId, string fullName, long installation = Installation)
    {
        var json = JsonNode.Parse(GitHubPayloads.Read("push/with-installation.payload.json"))!.AsObject();
        json["repository"]!["id"] = repositoryId;
        json["repository"]!["full_name"] = fullName;
        json["installation"]!["id"] = installation;
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    /// <summary>A real payload of <paramref name="relativePath"/> with <paramref name="edit"/> applied.</summary>
    public static byte[] Payload(string relativePath, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(GitHubPayloads.Read(relativePath))!.AsObject();
        edit(json);
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    /// <summary>GitHub delivers an event; the Api's answer as JSON.</summary>
    public async Task<JsonObject> DeliverAsync(string eventType, byte[] body, string? guid = null)
    {
        var delivery = await GitHub.DeliverAsync(eventType, body, guid);
        delivery.StatusCode.Should().Be(200, delivery.Response);
        return JsonNode.Parse(delivery.Response)!.AsObject();
    }

    public async Task<long> CountEventsAsync(Guid userId) =>
        await ApiApp.ScalarAsync<long>($"select count(*) from github_events where user_id = '{userId}'");

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        await GitHub.DisposeAsync();
    }
}
