using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using CoTeX.Contracts;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Hostile;

/// <summary>
/// Attacks every endpoint the way the internet will, with generated cases from a fixed seed (a failure names its case
/// and reproduces). Every case must get a 4xx with a ProblemDetails body — never a 5xx — and leave stored data as it
/// was; a client whose Accept header rules JSON out gets the same status with a short plain-text body. A summary per
/// category is written to hostile-input-summary.txt (CI prints it).
/// </summary>
public sealed class HostileInputTests(TestInfrastructure infra)
{
    private const int Seed = 20261123;
    private const string ProblemJson = "application/problem+json";

    /// <param name="MediaType">The body an error must have: ProblemDetails JSON unless the client's Accept rules it out.</param>
    /// <param name="Status">The status the case must get, when it is known exactly (any 4xx otherwise).</param>
    private sealed record Case(string Category, string Name, Func<HttpRequestMessage> Build, HttpClient Client,
        string MediaType = ProblemJson, int? Status = null)
    {
        /// <summary>Kestrel itself refuses some requests (a NUL in the path) with a bare 400 before any app code runs.</summary>
        public bool ServerMayRefuseBeforeTheApp => Name.Contains("%00", StringComparison.Ordinal);
    }

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
        var repo = await ApiApp.TrackRepoAsync(owner);
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
        var cases = new List<Case>();
        cases.AddRange(JsonBodyCases(random, owner, repo));
        cases.AddRange(QueryCases(random, owner));
        cases.AddRange(PathCases(random, owner));
        cases.AddRange(AuthCases(random, app, user, repo.Id));
        cases.AddRange(WebhookCases(random, app.AnonymousClient(), repo));
        cases.AddRange(StripeCases(random, app.AnonymousClient()));
        cases.AddRange(GitHubAppCases(random, app.AnonymousClient()));
        cases.AddRange(ObjectLevelCases(stranger, repo, eventId));
        cases.AddRange(AcceptCases(app, owner, user, anonymousUser, repo, eventId));

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
                || (testCase.MediaType != ProblemJson && !(await response.Content.ReadAsStringAsync()).StartsWith($"{status} ", StringComparison.Ordinal)))
            {
                failures.Add($"[{testCase.Category}] {testCase.Name}: {status} {mediaType} {Truncate(await response.Content.ReadAsStringAsync())}");
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

    private static IEnumerable<Case> JsonBodyCases(Random random, HttpClient owner, CreatedRepo repo)
    {
        var bodies = BadJsonBodies(random).ToList();
        foreach (var (name, body, contentType) in bodies)
        {
            yield return new("json bodies", $"POST /api/repos {name}", () => new HttpRequestMessage(HttpMethod.Post, "/api/repos")
            {
                Content = Content(body, contentType),
            }, owner);
            yield return new("json bodies", $"PATCH /api/repos/id {name}", () => new HttpRequestMessage(HttpMethod.Patch, $"/api/repos/{repo.Id}")
            {
                Content = Content(body, contentType),
            }, owner);
        }
    }

    private static IEnumerable<(string Name, byte[] Body, string ContentType)> BadJsonBodies(Random random)
    {
        string[] hostile =
        [
            "'; drop table tracked_repos; --", "\" or 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "%00",
            "owner/repo\u0000", "🙂/🙂", new string('a', 5000) + "/x", "owner /repo", "", " ", "owner/repo/extra",
        ];
        foreach (var value in hostile)
        {
            var json = System.Text.Json.JsonSerializer.Serialize(new { fullName = value, paused = value });
            yield return ($"hostile string {Truncate(value, 20)}", Encoding.UTF8.GetBytes(json), "application/json");
        }
        string[] wrongTypes =
        [
            """{"fullName":123,"paused":"yes"}""", """{"fullName":["a/b"],"paused":[true]}""", """{"fullName":{"x":1},"paused":{}}""",
            """{"fullName":true,"paused":1}""", """{"fullName":null,"paused":null}""", "null", "[]", "42", "\"a/b\"", "true",
            """{"unknown":"field","other":[1,2,3]}""", "{}", """{"fullName":"a/b","fullName":5,"paused":"no"}""",
        ];
        foreach (var json in wrongTypes)
        {
            yield return ($"wrong types {json}", Encoding.UTF8.GetBytes(json), "application/json");
        }
        var valid = """{"fullName":"octocat/new-repo","paused":false}""";
        for (var i = 0; i < 8; i++)
        {
            var cut = random.Next(1, valid.Length - 1);
            yield return ($"truncated at {cut}", Encoding.UTF8.GetBytes(valid[..cut]), "application/json");
        }
        for (var i = 0; i < 6; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(valid);
            bytes[random.Next(2, bytes.Length - 2)] = (byte)random.Next(0x80, 0xFF);
            yield return ($"invalid utf-8 #{i}", bytes, "application/json");
        }
        yield return ("nested 10000 deep", Encoding.UTF8.GetBytes(new string('[', 10000) + new string(']', 10000)), "application/json");
        yield return ("nested objects 2000 deep", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 2000)) + "1" + new string('}', 2000)), "application/json");
        yield return ("2 MB of whitespace", Encoding.UTF8.GetBytes(new string(' ', 2_000_000)), "application/json");
        yield return ("empty body", [], "application/json");
        foreach (var type in new[] { "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "garbage" })
        {
            yield return ($"content type {type}", Encoding.UTF8.GetBytes(valid.Replace("false", "\"x\"", StringComparison.Ordinal)), type);
        }
    }

    private static IEnumerable<Case> QueryCases(Random random, HttpClient owner)
    {
        string[] garbage =
        [
            "-1", "0", "abc", "1e5", "99999999999999999999999", "1;drop table users", "%27%20or%201%3D1", "%00", "NaN",
            "<script>", "１２", "0x10", " ", "1.5",
        ];
        foreach (var value in garbage)
        {
            yield return new("query garbage", $"limit={value}", () => Get($"/api/github-events?limit={value}"), owner);
            yield return new("query garbage", $"cursor={value}", () => Get($"/api/github-events?cursor={value}&limit=abc"), owner);
            yield return new("query garbage", $"repoId={value}", () => Get($"/api/github-events?repoId={value}"), owner);
            yield return new("query garbage", $"recent since={value}", () => Get($"/api/github-events/recent?since={value}&limit=0"), owner);
            yield return new("query garbage", $"event id={value}", () => Get($"/api/github-events/event?id={value}"), owner);
        }
        yield return new("query garbage", "limit twice", () => Get("/api/github-events?limit=1&limit=2"), owner);
        yield return new("query garbage", "type too long", () => Get($"/api/github-events?type={new string('x', 500)}"), owner);
        for (var i = 0; i < 10; i++)
        {
            var limit = random.Next(101, int.MaxValue);
            yield return new("query garbage", $"limit {limit}", () => Get($"/api/github-events?limit={limit}"), owner);
        }
    }

    private static IEnumerable<Case> PathCases(Random random, HttpClient owner)
    {
        string[] ids = ["not-a-guid", "..%2F..%2Fadmin", "%00", "1", "' or '1'='1", Guid.NewGuid().ToString(), "ffffffff-ffff-ffff-ffff-ffffffffffff", "🙂"];
        foreach (var id in ids)
        {
            yield return new("path garbage", $"DELETE repos/{id}", () => new HttpRequestMessage(HttpMethod.Delete, $"/api/repos/{id}"), owner);
            yield return new("path garbage", $"rotate repos/{id}", () => new HttpRequestMessage(HttpMethod.Post, $"/api/repos/{id}/rotate-secret"), owner);
            yield return new("path garbage", $"PATCH repos/{id}", () => new HttpRequestMessage(HttpMethod.Patch, $"/api/repos/{id}") { Content = JsonContent.Create(new { paused = true }) }, owner);
        }
        foreach (var path in new[] { "/api/nothing", "/api/repos/x/y/z", "/api/repos%2F..%2F..%2Fadmin%2Fstats", "/api/webhooks/github", "/%2e%2e/etc" })
        {
            yield return new("path garbage", $"GET {path}", () => Get(path), owner);
        }
        yield return new("path garbage", "PUT /api/repos", () => new HttpRequestMessage(HttpMethod.Put, "/api/repos"), owner);
        yield return new("path garbage", "DELETE /api/billing", () => new HttpRequestMessage(HttpMethod.Delete, "/api/billing"), owner);
        _ = random;
    }

    private static IEnumerable<Case> AuthCases(Random random, ApiApp app, HttpClient user, Guid repoId)
    {
        var anonymous = app.AnonymousClient();
        var valid = TestTokens.For(Guid.NewGuid());
        var tokens = new List<(string Name, string Header)>
        {
            ("no scheme", valid),
            ("basic scheme", "Basic dXNlcjpwYXNz"),
            ("empty bearer", "Bearer "),
            ("bearer garbage", "Bearer not.a.jwt"),
            ("alg none", "Bearer " + TestTokens.Unsigned(Guid.NewGuid())),
            ("expired", "Bearer " + TestTokens.For(Guid.NewGuid(), d => (d.IssuedAt, d.NotBefore, d.Expires) = (DateTime.UtcNow.AddHours(-3), DateTime.UtcNow.AddHours(-3), DateTime.UtcNow.AddHours(-2)))),
            ("wrong audience", "Bearer " + TestTokens.For(Guid.NewGuid(), d => d.Audience = "service_role")),
            ("sub not a uuid", "Bearer " + TestTokens.For(Guid.NewGuid(), d => d.Claims["sub"] = "' or 1=1 --")),
            ("two tokens", $"Bearer {valid} Bearer {valid}"),
        };
        for (var i = 0; i < 6; i++)
        {
            var chars = valid.ToCharArray();
            var at = random.Next(chars.Length);
            chars[at] = chars[at] == 'A' ? 'B' : 'A';
            tokens.Add(($"bit flip at {at}", "Bearer " + new string(chars)));
        }
        string[] routes = ["GET /api/repos", "POST /api/repos", "GET /api/github-events", "GET /api/github-events/recent", "GET /api/billing",
            "POST /api/checkout", "POST /api/billing/portal", $"DELETE /api/repos/{repoId}", "GET /admin/stats", "GET /admin/users"];
        foreach (var (name, header) in tokens)
        {
            foreach (var route in routes)
            {
                var (method, path) = (route.Split(' ')[0], route.Split(' ')[1]);
                yield return new("auth attacks", $"{route} with {name}", () =>
                {
                    var request = new HttpRequestMessage(new HttpMethod(method), path);
                    request.Headers.TryAddWithoutValidation("Authorization", header);
                    return request;
                }, anonymous);
            }
        }
        yield return new("auth attacks", "admin stats as a user", () => Get("/admin/stats"), user);
        yield return new("auth attacks", "admin users as a user", () => Get("/admin/users?limit=abc"), user);
    }

    private static IEnumerable<Case> WebhookCases(Random random, HttpClient client, CreatedRepo repo)
    {
        var valid = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        HttpRequestMessage Delivery(byte[] body, string? secret, Action<HttpRequestMessage>? tamper = null, string contentType = "application/json") =>
            GitHubDelivery($"/api/webhooks/github/{repo.Id}", body, secret, tamper, contentType);
        foreach (var (name, body, contentType) in BadJsonBodies(random).Where(b => b.Body.Length < 1_000_000))
        {
            // Correctly signed garbage: it passes the signature check and must still be refused.
            yield return new("webhook bodies (signed)", name, () => Delivery(body, repo.WebhookSecret, contentType: contentType), client);
        }
        string[] signatures = ["", "sha256=", "sha256=zz", "sha1=" + new string('0', 40), "SHA256 " + new string('0', 64), "sha256=" + new string('0', 64), "sha256=" + new string('0', 63), "md5=abc"];
        foreach (var signature in signatures)
        {
            yield return new("webhook signatures", $"signature '{signature}'", () => Delivery(valid, null,
                r => r.Headers.TryAddWithoutValidation("X-Hub-Signature-256", signature)), client);
        }
        yield return new("webhook signatures", "other repo's secret", () => Delivery(valid, new string('f', 64)), client);
        yield return new("webhook signatures", "signature over other body", () => Delivery(valid, null,
            r => r.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(repo.WebhookSecret!, GitHubPayloads.ForRepo("push/1.payload.json", repo.FullName)))), client);
        yield return new("webhook headers", "two event headers", () => Delivery(valid, repo.WebhookSecret, r => r.Headers.Add("X-GitHub-Event", "issues")), client);
        yield return new("webhook headers", "two delivery headers", () => Delivery(valid, repo.WebhookSecret, r => r.Headers.Add("X-GitHub-Delivery", "second")), client);
        yield return new("webhook headers", "event header garbage", () => Delivery(valid, repo.WebhookSecret, r => { r.Headers.Remove("X-GitHub-Event"); r.Headers.Add("X-GitHub-Event", "<script>"); }), client);
        yield return new("webhook headers", "delivery header garbage", () => Delivery(valid, repo.WebhookSecret, r => { r.Headers.Remove("X-GitHub-Delivery"); r.Headers.Add("X-GitHub-Delivery", "'; drop table github_events; --"); }), client);
        yield return new("webhook headers", "no event header", () => Delivery(valid, repo.WebhookSecret, r => r.Headers.Remove("X-GitHub-Event")), client);
        yield return new("webhook headers", "no delivery header", () => Delivery(valid, repo.WebhookSecret, r => r.Headers.Remove("X-GitHub-Delivery")), client);
        yield return new("webhook headers", "other repository in payload", () => Delivery(GitHubPayloads.ForRepo("push/payload.json", "evil/repo"), repo.WebhookSecret), client);
        yield return new("webhook headers", "unknown repo", () => new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{Guid.NewGuid()}") { Content = Content(valid, "application/json") }, client);
        yield return new("webhook headers", "form without payload", () => Delivery(Encoding.UTF8.GetBytes("payload="), repo.WebhookSecret, contentType: "application/x-www-form-urlencoded"), client);
        yield return new("webhook headers", "form with garbage payload", () => Delivery(Encoding.UTF8.GetBytes("payload=%7B%7B%7B"), repo.WebhookSecret, contentType: "application/x-www-form-urlencoded"), client);
    }

    /// <summary>The GitHub App's webhook and the Connect GitHub pages (asked for JSON, so errors are ProblemDetails).</summary>
    private static IEnumerable<Case> GitHubAppCases(Random random, HttpClient client)
    {
        var valid = Encoding.UTF8.GetBytes(GitHubPayloads.Read("push/with-installation.payload.json"));
        HttpRequestMessage Delivery(byte[] body, string? secret, Action<HttpRequestMessage>? tamper = null, string contentType = "application/json") =>
            GitHubDelivery("/api/webhooks/github-app", body, secret, tamper, contentType);
        // Signed with the app's secret but not a JSON object (a JSON object is GitHub's to shape: it gets a 200).
        foreach (var (name, body, contentType) in BadJsonBodies(random).Where(b => b.Body.Length < 1_000_000 && !IsJsonObject(b.Body)))
        {
            yield return new("github app webhook", $"signed {name}", () => Delivery(body, FakeGitHub.WebhookSecret, contentType: contentType), client);
        }
        foreach (var signature in new[] { "", "sha256=", "sha256=zz", "sha256=" + new string('0', 64), "sha1=" + new string('0', 40) })
        {
            yield return new("github app webhook", $"signature '{signature}'", () => Delivery(valid, null,
                r => r.Headers.TryAddWithoutValidation("X-Hub-Signature-256", signature)), client, Status: 401);
        }
        yield return new("github app webhook", "a repo's secret", () => Delivery(valid, new string('f', 64)), client, Status: 401);
        yield return new("github app webhook", "no event header", () => Delivery(valid, FakeGitHub.WebhookSecret, r => r.Headers.Remove("X-GitHub-Event")), client, Status: 400);
        yield return new("github app webhook", "two delivery headers", () => Delivery(valid, FakeGitHub.WebhookSecret, r => r.Headers.Add("X-GitHub-Delivery", "x")), client, Status: 400);

        string[] states = ["", "x", "%00", "' or 1=1 --", new string('A', 4000), Convert.ToBase64String(Encoding.UTF8.GetBytes("00000000000000000000000000000000.nonce")), "CfDJ8" + new string('x', 100)];
        foreach (var state in states)
        {
            var query = $"code=abc&state={Uri.EscapeDataString(state)}";
            yield return new("github app connect", $"callback state '{Truncate(state, 20)}'", () => Json(Get($"/api/github-app/callback?{query}")), client, Status: 400);
            yield return new("github app connect", $"confirm state '{Truncate(state, 20)}'", () => Json(new HttpRequestMessage(HttpMethod.Post, "/api/github-app/callback")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["state"] = state, ["confirm"] = new string('0', 64) }),
            }), client, Status: 400);
        }
        yield return new("github app connect", "callback with no code", () => Json(Get("/api/github-app/callback?state=x")), client, Status: 400);
        yield return new("github app connect", "callback with GitHub's error", () => Json(Get("/api/github-app/callback?error=access_denied&state=x")), client, Status: 400);
        yield return new("github app connect", "confirm without a form", () => Json(new HttpRequestMessage(HttpMethod.Post, "/api/github-app/callback")
        {
            Content = JsonContent.Create(new { state = "x" }),
        }), client, Status: 415);
        yield return new("github app connect", "connect without a token", () => new HttpRequestMessage(HttpMethod.Post, "/api/github-app/connect"), client, Status: 401);

        static HttpRequestMessage Json(HttpRequestMessage request)
        {
            request.Headers.Accept.ParseAdd("application/json");
            return request;
        }
    }

    /// <summary>A push delivery to <paramref name="path"/> as GitHub sends it, signed when a secret is given.</summary>
    private static HttpRequestMessage GitHubDelivery(string path, byte[] body, string? secret, Action<HttpRequestMessage>? tamper,
        string contentType)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Content(body, contentType) };
        request.Headers.Add("X-GitHub-Event", "push");
        request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        if (secret is not null)
        {
            request.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(secret, body));
        }
        tamper?.Invoke(request);
        return request;
    }

    private static bool IsJsonObject(byte[] body)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(body);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private static IEnumerable<Case> StripeCases(Random random, HttpClient client)
    {
        var json = FakeStripe.Event("customer.subscription.updated", new System.Text.Json.Nodes.JsonObject { ["id"] = "sub_x", ["object"] = "subscription", ["customer"] = "cus_x" });
        HttpRequestMessage Event(string body, string? signature) =>
            new(HttpMethod.Post, "/webhooks/stripe")
            {
                Content = new StringContent(body, Encoding.UTF8, "application/json"),
                Headers = { { "Stripe-Signature", signature ?? "" } },
            };
        yield return new("stripe webhook", "no signature", () => Event(json, null), client);
        yield return new("stripe webhook", "stale", () => Event(json, FakeStripe.Sign(json, DateTimeOffset.UtcNow.AddMinutes(-6))), client);
        yield return new("stripe webhook", "future", () => Event(json, FakeStripe.Sign(json, DateTimeOffset.UtcNow.AddMinutes(10)) + "x"), client);
        yield return new("stripe webhook", "wrong secret", () => Event(json, FakeStripe.Sign(json, secret: "whsec_nope")), client);
        yield return new("stripe webhook", "garbage header", () => Event(json, "t=abc,v1=zz"), client);
        for (var i = 0; i < 6; i++)
        {
            var cut = random.Next(1, json.Length - 1);
            var truncated = json[..cut];
            yield return new("stripe webhook", $"signed truncated at {cut}", () => Event(truncated, FakeStripe.Sign(truncated)), client);
        }
        foreach (var body in new[] { "null", "[]", "{}", "\"evt\"", "{\"id\":5}" })
        {
            yield return new("stripe webhook", $"signed {body}", () => Event(body, FakeStripe.Sign(body)), client);
        }
    }

    private static IEnumerable<Case> ObjectLevelCases(HttpClient stranger, CreatedRepo repo, long eventId)
    {
        yield return new("object-level authz", "event by id", () => Get($"/api/github-events/event?id={eventId}"), stranger);
        yield return new("object-level authz", "events of repo", () => Get($"/api/github-events?repoId={repo.Id}"), stranger);
        yield return new("object-level authz", "delete repo", () => new HttpRequestMessage(HttpMethod.Delete, $"/api/repos/{repo.Id}"), stranger);
        yield return new("object-level authz", "rotate secret", () => new HttpRequestMessage(HttpMethod.Post, $"/api/repos/{repo.Id}/rotate-secret"), stranger);
        yield return new("object-level authz", "pause repo", () => new HttpRequestMessage(HttpMethod.Patch, $"/api/repos/{repo.Id}") { Content = JsonContent.Create(new { paused = true }) }, stranger);
        yield return new("object-level authz", "billing portal without account", () => new HttpRequestMessage(HttpMethod.Post, "/api/billing/portal"), stranger);
    }

    /// <summary>
    /// An error from every route (and the router's own 404 and 405), under each Accept header a client may send: the
    /// status does not depend on it, only the body does (a browser opening an /api URL sends text/html).
    /// </summary>
    private static IEnumerable<Case> AcceptCases(ApiApp app, HttpClient owner, HttpClient user, HttpClient anonymousUser,
        CreatedRepo repo, long eventId)
    {
        var anonymous = app.AnonymousClient();
        var unknown = Guid.NewGuid();
        // Each name starts with the status the request gets.
        var errors = new (string Name, Func<HttpRequestMessage> Build, HttpClient Client)[]
        {
            ("401 GET /api/repos", () => Get("/api/repos"), anonymous),
            ("401 DELETE /api/me", () => new(HttpMethod.Delete, "/api/me"), anonymous),
            ("401 GET /api/billing", () => Get("/api/billing"), anonymous),
            ("400 POST /api/repos", () => new(HttpMethod.Post, "/api/repos") { Content = Content("{"u8.ToArray(), "application/json") }, owner),
            ("404 PATCH /api/repos/id", () => new(HttpMethod.Patch, $"/api/repos/{unknown}") { Content = JsonContent.Create(new { paused = true }) }, owner),
            ("404 DELETE /api/repos/id", () => new(HttpMethod.Delete, $"/api/repos/{unknown}"), owner),
            ("404 rotate-secret", () => new(HttpMethod.Post, $"/api/repos/{unknown}/rotate-secret"), owner),
            ("400 GET /api/github-events", () => Get("/api/github-events?limit=abc"), owner),
            ("400 GET /api/github-events/recent", () => Get("/api/github-events/recent?since=x"), owner),
            ("404 GET /api/github-events/event", () => Get($"/api/github-events/event?id={eventId}"), user),
            ("403 POST /api/checkout", () => new(HttpMethod.Post, "/api/checkout"), anonymousUser),
            ("409 POST /api/billing/portal", () => new(HttpMethod.Post, "/api/billing/portal"), user),
            ("403 GET /admin/stats", () => Get("/admin/stats"), user),
            ("403 GET /admin/users", () => Get("/admin/users"), user),
            ("400 POST /webhooks/stripe", () => new(HttpMethod.Post, "/webhooks/stripe") { Content = Content("{}"u8.ToArray(), "application/json") }, anonymous),
            ("401 webhook signature", () => Webhook(repo.Id, "sha256=" + new string('0', 64), "application/json", "{}"u8.ToArray()), anonymous),
            ("404 webhook repo", () => Webhook(unknown, "sha256=" + new string('0', 64), "application/json", "{}"u8.ToArray()), anonymous),
            ("413 webhook body", () => Webhook(repo.Id, "sha256=" + new string('0', 64), "application/json", new byte[26 * 1024 * 1024]), anonymous),
            ("415 webhook content type", () => Webhook(repo.Id, WebhookSigning.Sign(repo.WebhookSecret!, "{}"u8.ToArray()), "text/csv", "{}"u8.ToArray()), anonymous),
            ("404 unknown route", () => Get("/api/nothing-here"), owner),
            ("405 PUT /api/repos", () => new(HttpMethod.Put, "/api/repos"), owner),
        };
        var accepts = new (string? Header, bool AdmitsJson)[]
        {
            (null, true), ("*/*", true), ("text/html,application/xhtml+xml;q=0.9", false), ("text/plain", false),
            ("application/xml", false), ("garbage;;;", true),
        };
        foreach (var (name, build, client) in errors)
        {
            foreach (var (header, admitsJson) in accepts)
            {
                yield return new("accept headers", $"{name} Accept: {header ?? "(none)"}", () =>
                {
                    var request = build();
                    if (header is not null)
                    {
                        request.Headers.TryAddWithoutValidation("Accept", header);
                    }
                    return request;
                }, client, admitsJson ? ProblemJson : "text/plain", int.Parse(name[..3], System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    private static HttpRequestMessage Webhook(Guid repoId, string signature, string contentType, byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repoId}") { Content = Content(body, contentType) };
        request.Headers.Add("X-GitHub-Event", "push");
        request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        request.Headers.Add("X-Hub-Signature-256", signature);
        return request;
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

    private static HttpRequestMessage Get(string path) => new(HttpMethod.Get, path);

    private static ByteArrayContent Content(byte[] body, string contentType)
    {
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return content;
    }

    private static string Truncate(string value, int length = 200) => value.Length > length ? value[..length] + "…" : value;
}
