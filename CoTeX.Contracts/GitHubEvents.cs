namespace CoTeX.Contracts;

/// <summary>
/// What a client list shows for one stored GitHub event; also the live SignalR message. The full payload is fetched
/// from <c>GET /api/github-events/event?id=</c>.
/// </summary>
/// <param name="Id">The event's id, unique across CoTeX.</param>
/// <param name="Position">
/// The user's event position: increases with every event stored for the user (not necessarily by one). A client
/// that remembers the highest position it holds can resume from it.
/// </param>
public sealed record GitHubEventSummary(
    long Id,
    long Position,
    Guid RepoId,
    string RepoFullName,
    string Type,
    string? Action,
    string? Sender,
    string? Title,
    string? HtmlUrl,
    DateTimeOffset ReceivedAt);

/// <summary>One page of events, newest first. Pass <see cref="NextCursor"/> back as <c>cursor</c> for the next page.</summary>
public sealed record GitHubEventPage(IReadOnlyList<GitHubEventSummary> Items, string? NextCursor);

/// <summary>Events stored after a position, oldest first, for polling clients.</summary>
/// <param name="Position">The highest position in <see cref="Items"/>, or the one asked for when there is nothing new.</param>
/// <param name="HasMore">More events follow: ask again with <see cref="Position"/>.</param>
public sealed record RecentGitHubEvents(IReadOnlyList<RecentGitHubEvent> Items, long Position, bool HasMore);

public sealed record RecentGitHubEvent(long Id, long Position, Guid RepoId, string Type, DateTimeOffset ReceivedAt);

/// <summary>One event with its full GitHub payload (up to 25 MB).</summary>
public sealed record GitHubEventDetail(
    long Id,
    long Position,
    Guid RepoId,
    string RepoFullName,
    string Type,
    string? DeliveryId,
    string? Action,
    string? Sender,
    string? Title,
    string? HtmlUrl,
    DateTimeOffset ReceivedAt,
    System.Text.Json.JsonElement Payload);
