using System.Net.Http.Json;
using System.Text;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Hostile;

/// <summary>
/// Attacks every endpoint the way the internet will, with generated cases from a fixed seed (a failure names its case
/// and reproduces). Every case must get a 4xx with a ProblemDetails body — never a 5xx — and leave stored data as it
/// was; a client whose Accept header rules JSON out gets the same status with a short plain-text body. A summary per
/// category is written to hostile-input-summary.txt (CI prints it). The generators, one per category, are in Cases/.
/// </summary>
public sealed class HostileInputTests(TestInfrastructure infra)
{
    private const int Seed = 20261123;

    [Fact]
    public async Task Hundreds_of_generated_bad_requests_get_4xx_problems_and_change_nothing()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var gitHub = await FakeGitHub.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, new(stripe.Settings.Concat(gitHub.Settings))
        {
            ["RateLimiting:Enabled"] = "false", // the limiter is tested on its own; here every case must reach its endpoint
        }, kestrel: true); // a real socket: requests are parsed as the internet's would be
        var ownerId = Guid.NewGuid();
        var owner = app.ClientFor(ownerId);
        var stranger = app.ClientFor();
        var repo = await ApiRequests.TrackRepoAsync(owner);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", repo.FullName)))
            .EnsureSuccessStatusCode();
        var eventId = (await owner.GetFromJsonAsync<GitHubEventPage>("/api/github-events"))!.Items.Single().Id;
        var user = app.ClientFor();
        var anonymousUser = app.ClientFor(anonymous: true);
        foreach (var client in new[] { stranger, user, anonymousUser })
        {
            (await client.GetAsync("/api/repos")).EnsureSuccessStatusCode(); // their user rows exist before the snapshot
        }
        var before = await SnapshotAsync(app);

        var random = new Random(Seed);
        var cases = new List<HostileCase>();
        cases.AddRange(JsonBodyCases.For(random, owner, repo));
        cases.AddRange(QueryCases.For(random, owner));
        cases.AddRange(PathCases.For(random, owner));
        cases.AddRange(AuthCases.For(random, app, user, repo.Id));
        cases.AddRange(WebhookCases.For(random, app.AnonymousClient(), repo));
        cases.AddRange(StripeCases.For(random, app.AnonymousClient()));
        cases.AddRange(GitHubAppCases.For(random, app.AnonymousClient()));
        cases.AddRange(ObjectLevelCases.For(stranger, repo, eventId));
        cases.AddRange(AcceptCases.For(app, owner, user, anonymousUser, repo, eventId));

        var failures = new List<string>();
        var byCategory = new SortedDictionary<string, (int Cases, int ServerErrors)>();
        foreach (var testCase in cases)
        {
            using var request = testCase.Build();
            var response = await testCase.Client.SendAsync(request);
            var status = (int)response.StatusCode;
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            var (count, serverErrors) = byCategory.GetValueOrDefault(testCase.Category);
            byCategory[testCase.Category] = (count + 1, serverErrors + (status >= 500 ? 1 : 0));
            var bareServerRefusal = testCase.ServerMayRefuseBeforeTheApp && status == 400 && response.Content.Headers.ContentLength == 0;
            if (status is < 400 or >= 500 || (testCase.Status is { } expected && status != expected)
                || (mediaType != testCase.MediaType && !bareServerRefusal)
                || (testCase.MediaType != HostileRequests.ProblemJson && !(await response.Content.ReadAsStringAsync()).StartsWith($"{status} ", StringComparison.Ordinal)))
            {
                failures.Add($"[{testCase.Category}] {testCase.Name}: {status} {mediaType} {HostileRequests.Truncate(await response.Content.ReadAsStringAsync())}");
            }
        }
        var after = await SnapshotAsync(app);

        var summary = new StringBuilder($"Hostile input suite (seed {Seed}): {cases.Count} cases\n");
        foreach (var (category, (count, serverErrors)) in byCategory)
        {
            summary.AppendLine($"  {category,-28} {count,5} cases  {serverErrors} 5xx");
        }
        summary.AppendLine($"  5xx total: {byCategory.Values.Sum(v => v.ServerErrors)}; unexpected answers: {failures.Count}; stored data changed: {before != after}");
        foreach (var failure in failures)
        {
            summary.AppendLine("  UNEXPECTED " + failure);
        }
        await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "hostile-input-summary.txt"), summary.ToString());

        cases.Count.Should().BeGreaterThan(300);
        failures.Should().BeEmpty();
        after.Should().Be(before, "bad input never changes stored data");
    }

    private static async Task<string> SnapshotAsync(ApiApp app) =>
        await app.ScalarAsync<string>(
            """
            select concat_ws('|',
                (select count(*) from users), (select count(*) from tracked_repos),
                (select string_agg(id::text || paused::text || webhook_secret_protected, ',' order by id) from tracked_repos),
                (select count(*) from github_events), (select count(*) from github_deliveries),
                (select count(*) from stripe_events), (select count(*) from subscriptions),
                (select count(*) from github_connections), (select count(*) from github_app_deliveries),
                (select count(*) from github_app_connect_states))
            """) ?? "";
}
