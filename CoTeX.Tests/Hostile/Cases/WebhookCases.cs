using System.Text;
using CoTeX.Contracts;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>A repo's webhook receiver: signed garbage, wrong signatures, duplicated and missing headers, another repository's payload.</summary>
internal static class WebhookCases
{
    public static IEnumerable<HostileCase> For(Random random, HttpClient client, CreatedRepo repo)
    {
        var valid = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        HttpRequestMessage Delivery(byte[] body, string? secret, Action<HttpRequestMessage>? tamper = null, string contentType = "application/json") =>
            GitHubDelivery($"/api/webhooks/github/{repo.Id}", body, secret, tamper, contentType);
        foreach (var (name, body, contentType) in JsonBodyCases.BadBodies(random).Where(b => b.Body.Length < 1_000_000))
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
}
