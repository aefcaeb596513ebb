using System.Net.Http.Json;
using CoTeX.Contracts;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>Another user's objects: a stranger asking for, pausing, deleting or rotating what is not theirs.</summary>
internal static class ObjectLevelCases
{
    public static IEnumerable<HostileCase> For(HttpClient stranger, CreatedRepo repo, long eventId)
    {
        yield return new("object-level authz", "event by id", () => Get($"/api/github-events/event?id={eventId}"), stranger);
        yield return new("object-level authz", "events of repo", () => Get($"/api/github-events?repoId={repo.Id}"), stranger);
        yield return new("object-level authz", "delete repo", () => new HttpRequestMessage(HttpMethod.Delete, $"/api/repos/{repo.Id}"), stranger);
        yield return new("object-level authz", "rotate secret", () => new HttpRequestMessage(HttpMethod.Post, $"/api/repos/{repo.Id}/rotate-secret"), stranger);
        yield return new("object-level authz", "pause repo", () => new HttpRequestMessage(HttpMethod.Patch, $"/api/repos/{repo.Id}") { Content = JsonContent.Create(new { paused = true }) }, stranger);
        yield return new("object-level authz", "billing portal without account", () => new HttpRequestMessage(HttpMethod.Post, "/api/billing/portal"), stranger);
    }
}
