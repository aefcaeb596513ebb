using CoTeX.Shared.Events;
using Dapper;
using Npgsql;

namespace CoTeX.Api.GitHubEvents;

/// <summary>
/// The SQL of the events API over <c>github_events</c> (with the repo's name from <c>tracked_repos</c>). Every
/// statement is scoped to the caller (<c>user_id</c>), so someone else's event answers as one that does not exist.
/// </summary>
internal static class GitHubEventQueries
{
    internal sealed record RecentRow(long Id, long Position, Guid RepoId, string Type, DateTime ReceivedAt);

    /// <summary>
    /// Up to <paramref name="take"/> of the user's events, newest first: of one repo and one type when given, older than
    /// the event <paramref name="before"/> when given.
    /// </summary>
    public static async Task<List<GitHubEventRows.SummaryRow>> PageAsync(NpgsqlConnection connection, Guid userId, Guid? repoId,
        string? type, long? before, int take, CancellationToken cancellationToken) =>
        (await connection.QueryAsync<GitHubEventRows.SummaryRow>(new CommandDefinition(
            $"""
            select {GitHubEventRows.SummaryColumns}
              from github_events e join tracked_repos r on r.id = e.repo_id
             where e.user_id = @userId
               and (@repoId::uuid is null or e.repo_id = @repoId)
               and (@type::text is null or e.event_type = @type)
               and (@before::bigint is null or e.id < @before)
             order by e.id desc
             limit @take
            """,
            new { userId, repoId, type, before, take }, cancellationToken: cancellationToken))).ToList();

    /// <summary>Up to <paramref name="take"/> of the user's events stored after the position <paramref name="after"/>, oldest first.</summary>
    public static async Task<List<RecentRow>> RecentAsync(NpgsqlConnection connection, Guid userId, long after, int take,
        CancellationToken cancellationToken) =>
        (await connection.QueryAsync<RecentRow>(new CommandDefinition(
            """
            select id, seq as Position, repo_id as RepoId, event_type as Type, received_at as ReceivedAt
              from github_events
             where user_id = @userId and seq > @after
             order by seq
             limit @take
            """,
            new { userId, after, take }, cancellationToken: cancellationToken))).ToList();

    /// <summary>
    /// The user's event as the API's JSON, payload included; null when they have no event with that id. Postgres writes
    /// the JSON, so a 25 MB payload is never parsed and re-serialised here. The payload is the JSON as delivered: stored
    /// once for a delivery's followers (github_event_payloads, migration 0009), or in the event's own row (body,
    /// migration 0007), or jsonb for events stored before 0007.
    /// </summary>
    public static Task<string?> DetailJsonAsync(NpgsqlConnection connection, long id, Guid userId, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            """
            select json_build_object(
                       'id', e.id, 'position', e.seq, 'repoId', e.repo_id, 'repoFullName', r.full_name,
                       'type', e.event_type, 'deliveryId', e.delivery_id, 'action', e.action, 'sender', e.sender,
                       'title', e.title, 'htmlUrl', e.html_url, 'receivedAt', e.received_at,
                       'payload', coalesce(convert_from(coalesce(p.body, e.body), 'UTF8')::json, e.payload::json))::text
              from github_events e join tracked_repos r on r.id = e.repo_id
              -- received_at as well: the payload's partition is the event's day
              left join github_event_payloads p on p.id = e.payload_id and p.received_at = e.received_at
             where e.id = @id and e.user_id = @userId
            """,
            new { id, userId }, cancellationToken: cancellationToken));
}
