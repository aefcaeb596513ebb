using System.Net.Http.Json;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>Garbage in paths: ids that are not ids, traversal, unknown routes and methods.</summary>
internal static class PathCases
{
    public static IEnumerable<HostileCase> For(Random random, HttpClient owner)
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
}
