using CoTeX.Contracts;
using CoTeX.Shared.Data;

namespace CoTeX.Shared.Events;

/// <summary>
/// How a <see cref="GitHubEventSummary"/> is read from Postgres by the events API: select
/// <see cref="SummaryColumns"/> from <c>github_events e join tracked_repos r on r.id = e.repo_id</c>. Realtime's
/// catch-up reads the repos and the events apart (FeedQueries) and builds the same <see cref="SummaryRow"/>.
/// </summary>
public static class GitHubEventRows
{
    public const string SummaryColumns =
        """
        e.id, e.seq as Position, e.repo_id as RepoId, r.full_name as RepoFullName, e.event_type as Type,
        e.action, e.sender, e.title, e.html_url as HtmlUrl, e.received_at as ReceivedAt
        """;

    public sealed record SummaryRow(long Id, long Position, Guid RepoId, string RepoFullName, string Type,
        string? Action, string? Sender, string? Title, string? HtmlUrl, DateTime ReceivedAt)
    {
        public GitHubEventSummary ToContract() =>
            new(Id, Position, RepoId, RepoFullName, Type, Action, Sender, Title, HtmlUrl, ReceivedAt.AsUtcOffset());
    }
}
