using System.Text.Json;
using static CoTeX.Api.GitHubWebhooks.JsonFields;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// The fields a client list needs, read out of a GitHub webhook payload, and the ids the GitHub App receiver routes
/// by (GitHub's repository and installation ids; the installation is there only in deliveries to an app).
/// </summary>
public sealed record ParsedGitHubEvent(string? RepositoryFullName, string? Action, string? Sender, string? Title, string? HtmlUrl,
    long? RepositoryId = null, long? InstallationId = null);

/// <summary>
/// Reads a webhook payload once and picks out the repository, action, sender, a human title and the most specific
/// HTML URL. Works for every repository event type GitHub sends; unknown types fall back to generic fields.
/// </summary>
public static class GitHubEventParser
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64 };

    // Objects whose title/name describes the event, most descriptive first (a comment's title is its issue's).
    private static readonly string[] TitleSources =
        ["pull_request", "issue", "discussion", "release", "milestone", "workflow_run", "workflow_job", "check_run",
         "check_suite", "deployment", "alert", "rule", "package", "registry_package", "label", "project",
         "project_card", "project_column", "page", "hook"];

    // Objects whose html_url points at exactly what happened, most specific first.
    private static readonly string[] UrlSources =
        ["comment", "review", "thread", "pull_request", "issue", "discussion", "release", "workflow_run",
         "workflow_job", "check_run", "deployment_status", "alert", "milestone", "forkee", "package", "project"];

    /// <exception cref="JsonException">The payload is not a JSON object (or nests deeper than 64 levels).</exception>
    public static ParsedGitHubEvent Parse(string eventType, ReadOnlyMemory<byte> payload)
    {
        using var document = ParseDocument(payload);
        return Parse(eventType, document.RootElement);
    }

    /// <summary>The payload as a document, for a caller that reads more of it.</summary>
    /// <exception cref="JsonException">The payload is not a JSON object (or nests deeper than 64 levels).</exception>
    public static JsonDocument ParseDocument(ReadOnlyMemory<byte> payload)
    {
        var document = JsonDocument.Parse(payload, Options);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new JsonException("The payload must be a JSON object.");
        }
        return document;
    }

    public static ParsedGitHubEvent Parse(string eventType, JsonElement root)
    {
        var repository = Property(root, "repository");
        return new ParsedGitHubEvent(
            RepositoryFullName: String(repository, "full_name"),
            Action: String(root, "action"),
            Sender: String(Property(root, "sender"), "login"),
            Title: Truncate(Title(eventType, root)),
            HtmlUrl: Url(eventType, root) ?? String(repository, "html_url"),
            RepositoryId: Long(repository, "id"),
            InstallationId: Long(Property(root, "installation"), "id"));
    }

    private static string? Title(string eventType, JsonElement root)
    {
        switch (eventType)
        {
            case "ping":
                return "Webhook connected";
            case "push":
                var branch = ShortRef(String(root, "ref"));
                var commits = Property(root, "commits") is { ValueKind: JsonValueKind.Array } list ? list.GetArrayLength() : 0;
                return root.TryGetProperty("deleted", out var deleted) && deleted.ValueKind == JsonValueKind.True
                    ? $"Deleted {branch}"
                    : $"Pushed {commits} commit{(commits == 1 ? "" : "s")} to {branch}";
            case "create" or "delete":
                return $"{(eventType == "create" ? "Created" : "Deleted")} {String(root, "ref_type")} {String(root, "ref")}";
            case "fork":
                return $"Forked to {String(Property(root, "forkee"), "full_name")}";
            case "star" or "watch":
                return $"Starred by {String(Property(root, "sender"), "login")}";
            case "commit_comment":
                var commit = String(Property(root, "comment"), "commit_id");
                return commit is null ? "Commit comment" : $"Comment on commit {commit[..Math.Min(7, commit.Length)]}";
            case "status":
                return $"{String(root, "context")}: {String(root, "state")}";
            case "gollum":
                return Property(root, "pages") is { ValueKind: JsonValueKind.Array } pages && pages.GetArrayLength() > 0
                    ? $"Wiki: {String(pages[0], "title")}"
                    : "Wiki updated";
        }

        foreach (var source in TitleSources)
        {
            var element = Property(root, source);
            if ((String(element, "title") ?? String(element, "name") ?? String(element, "tag_name")) is { } title)
            {
                return title;
            }
        }
        return String(Property(root, "repository"), "full_name") is { } repo ? $"{eventType} in {repo}" : eventType;
    }

    private static string? Url(string eventType, JsonElement root)
    {
        if (eventType == "push")
        {
            return String(root, "compare");
        }
        foreach (var source in UrlSources)
        {
            if (String(Property(root, source), "html_url") is { } url)
            {
                return url;
            }
        }
        return null;
    }

    private static string? ShortRef(string? gitRef) =>
        gitRef is null ? null
        : gitRef.StartsWith("refs/heads/", StringComparison.Ordinal) ? gitRef["refs/heads/".Length..]
        : gitRef.StartsWith("refs/tags/", StringComparison.Ordinal) ? gitRef["refs/tags/".Length..]
        : gitRef;

    private static string? Truncate(string? value) => value is { Length: > 500 } ? value[..500] : value;
}
