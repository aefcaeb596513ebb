using System.Net.Http.Json;
using CoTeX.Contracts;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>An error from every route (and the router's own 404 and 405), under each Accept header a client may send: the status does not depend on it, only the body does (a browser opening an /api URL sends text/html).</summary>
internal static class AcceptCases
{
    public static IEnumerable<HostileCase> For(ApiApp app, HttpClient owner, HttpClient user, HttpClient anonymousUser,
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
}
