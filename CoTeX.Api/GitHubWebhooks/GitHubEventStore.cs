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

public sealed record StoreResult(
    StoreOutcome Outcome, long Id = 0, long Position = 0, DateTimeOffset ReceivedAt = default, bool RepoPaused = false);

/// <summary>
/// Stores a delivery through <c>ingest_github_event</c> (migration 0002): one round trip, one transaction. The user's
/// position moves on (its row lock orders the user's events), the repo's last-delivery time is set, and the event is
/// inserted unless (repo, delivery id) is already there. When this returns, the event is committed.
/// </summary>
public sealed class GitHubEventStore(NpgsqlDataSource dataSource)
{
    // Migration 0002: one round trip, contiguous per-user positions, the repo's paused flag in the answer.
    private const string Sql = "select o_outcome, o_id, o_position, o_received_at, o_paused from ingest_github_event($1, $2, $3, $4, $5, $6, $7, $8, $9)";

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
        return reader.GetString(0) switch
        {
            "stored" => new StoreResult(StoreOutcome.Stored, reader.GetInt64(1), reader.GetInt64(2),
                reader.GetFieldValue<DateTimeOffset>(3), reader.GetBoolean(4)),
            "duplicate" => new StoreResult(StoreOutcome.Duplicate),
            _ => new StoreResult(StoreOutcome.RepoGone),
        };
    }

    // Postgres text cannot hold NUL; a payload field carrying one is stored without it.
    private static NpgsqlParameter<string?> Text(string? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = value?.Replace("\0", "", StringComparison.Ordinal) };
}
