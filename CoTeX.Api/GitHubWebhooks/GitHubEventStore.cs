using Npgsql;
using NpgsqlTypes;

namespace CoTeX.Api.GitHubWebhooks;

public sealed record IncomingGitHubEvent(
    WebhookRepo Repo, string DeliveryId, string EventType, ParsedGitHubEvent Fields, byte[] Payload);

public enum StoreOutcome
{
    Stored,
    Duplicate,
    RepoGone,
}

public sealed record StoreResult(StoreOutcome Outcome, long Id = 0, long Position = 0, DateTimeOffset ReceivedAt = default);

/// <summary>
/// Stores a delivery in one statement, one round trip, one transaction: the user's event counter moves on (its row
/// lock orders the user's events, so positions become visible in order), the repo's last-delivery time is set, and
/// the event is inserted unless (repo, delivery id) is already there. When this returns, the event is committed.
/// </summary>
public sealed class GitHubEventStore(NpgsqlDataSource dataSource)
{
    private const string Sql =
        """
        with position as (
            update users set last_event_seq = last_event_seq + 1 where id = $2 returning last_event_seq
        ), repo as (
            update tracked_repos
               set last_delivery_at = now(),
                   last_ping_at = case when $4 = 'ping' then now() else last_ping_at end
             where id = $1 and user_id = $2
            returning id
        ), inserted as (
            insert into github_events (repo_id, user_id, seq, delivery_id, event_type, action, sender, title, html_url, payload)
            select repo.id, $2, position.last_event_seq, $3, $4, $5, $6, $7, $8, $9
              from repo, position
            on conflict (repo_id, delivery_id) do nothing
            returning id, seq, received_at
        )
        select (select count(*) from repo), inserted.id, inserted.seq, inserted.received_at
          from (select) as one left join inserted on true
        """;

    public async Task<StoreResult> StoreAsync(IncomingGitHubEvent incoming, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(Sql);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = incoming.Repo.Id });
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = incoming.Repo.UserId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = incoming.DeliveryId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = incoming.EventType });
        command.Parameters.Add(Text(incoming.Fields.Action));
        command.Parameters.Add(Text(incoming.Fields.Sender));
        command.Parameters.Add(Text(incoming.Fields.Title));
        command.Parameters.Add(Text(incoming.Fields.HtmlUrl));
        command.Parameters.Add(new NpgsqlParameter<byte[]> { NpgsqlDbType = NpgsqlDbType.Jsonb, TypedValue = incoming.Payload });

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        if (reader.GetInt64(0) == 0)
        {
            return new StoreResult(StoreOutcome.RepoGone);
        }
        return reader.IsDBNull(1)
            ? new StoreResult(StoreOutcome.Duplicate)
            : new StoreResult(StoreOutcome.Stored, reader.GetInt64(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3));
    }

    // Postgres text cannot hold NUL; a payload field carrying one is stored without it.
    private static NpgsqlParameter<string?> Text(string? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = value?.Replace("\0", "", StringComparison.Ordinal) };
}
