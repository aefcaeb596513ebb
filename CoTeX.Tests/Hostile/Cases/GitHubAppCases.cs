using System.Net.Http.Json;
using System.Text;
using CoTeX.Tests.Infrastructure;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>The GitHub App's webhook and the Connect GitHub pages (asked for JSON, so errors are ProblemDetails).</summary>
internal static class GitHubAppCases
{
    public static IEnumerable<HostileCase> For(Random random, HttpClient client)
    {
        var valid = Encoding.UTF8.GetBytes(GitHubPayloads.Read("push/with-installation.payload.json"));
        HttpRequestMessage Delivery(byte[] body, string? secret, Action<HttpRequestMessage>? tamper = null, string contentType = "application/json") =>
            GitHubDelivery("/api/webhooks/github-app", body, secret, tamper, contentType);
        // Signed with the app's secret but not a JSON object (a JSON object is GitHub's to shape: it gets a 200).
        foreach (var (name, body, contentType) in JsonBodyCases.BadBodies(random).Where(b => b.Body.Length < 1_000_000 && !IsJsonObject(b.Body)))
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
}
