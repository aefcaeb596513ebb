using System.Text;
using System.Text.Json.Nodes;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Real GitHub webhook payloads (octokit/webhooks examples, MIT) from TestData/github-payloads, one folder per
/// <c>X-GitHub-Event</c> value. <see cref="ForRepo"/> re-targets one at the repository a test tracks.
/// </summary>
public static class GitHubPayloads
{
    public static string Root { get; } = Path.Combine(AppContext.BaseDirectory, "TestData", "github-payloads");

    public static string Read(string relativePath) => File.ReadAllText(Path.Combine(Root, relativePath));

    /// <summary>The payload with its <c>repository.full_name</c> set to <paramref name="fullName"/>.</summary>
    public static byte[] ForRepo(string relativePath, string fullName)
    {
        var json = JsonNode.Parse(Read(relativePath))!.AsObject();
        if (json["repository"] is JsonObject repository)
        {
            repository["full_name"] = fullName;
        }
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    /// <summary>Every payload of a repository event: (event type, path relative to <see cref="Root"/>).</summary>
    public static IEnumerable<(string EventType, string Path)> AllRepositoryEvents() =>
        Directory.EnumerateFiles(Root, "*.json", SearchOption.AllDirectories)
            .Select(file => (EventType: Path.GetFileName(Path.GetDirectoryName(file))!, Path: Path.GetRelativePath(Root, file)))
            .Where(p => JsonNode.Parse(File.ReadAllText(Path.Combine(Root, p.Path)))?["repository"]?["full_name"] is not null)
            .OrderBy(p => p.Path, StringComparer.Ordinal);
}
