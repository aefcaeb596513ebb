using System.Threading.Channels;
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
/// Stores deliveries through <c>ingest_github_event</c> (migrations 0002/0003), with group commit: deliveries that
/// arrive while a commit is under way are queued and written together in one batch — one round trip, one transaction,
/// one WAL flush — and each caller is answered once that transaction has committed. Deliveries are sharded by user,
/// so concurrent batches never lock the same user row (no deadlocks) and a user's positions stay in commit order.
/// A batch that fails on one bad row is retried row by row, so one delivery cannot fail its neighbours.
/// </summary>
public sealed class GitHubEventStore : IAsyncDisposable
{
    private const string Sql = "select o_outcome, o_id, o_position, o_received_at, o_paused from ingest_github_event($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    private const int Shards = 4;
    private const int MaxBatch = 64;

    private sealed record Pending(IncomingGitHubEvent Event, TaskCompletionSource<StoreResult> Result);

    private readonly NpgsqlDataSource _dataSource;
    private readonly Channel<Pending>[] _queues;
    private readonly Task[] _writers;

    public GitHubEventStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _queues = Enumerable.Range(0, Shards)
            .Select(_ => Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true }))
            .ToArray();
        _writers = _queues.Select(queue => Task.Run(() => WriteAsync(queue.Reader))).ToArray();
    }

    /// <summary>Returns once the delivery is committed (or known to be a duplicate, or its repo gone).</summary>
    public Task<StoreResult> StoreAsync(IncomingGitHubEvent incoming, CancellationToken cancellationToken)
    {
        var pending = new Pending(incoming, new TaskCompletionSource<StoreResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        var shard = (int)((uint)incoming.Repo.UserId.GetHashCode() % Shards);
        if (!_queues[shard].Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(GitHubEventStore), "The service is shutting down.");
        }
        // The caller may stop waiting; the write itself goes on (a retry by GitHub is then a duplicate).
        return pending.Result.Task.WaitAsync(cancellationToken);
    }

    private async Task WriteAsync(ChannelReader<Pending> queue)
    {
        var batch = new List<Pending>(MaxBatch);
        while (await queue.WaitToReadAsync())
        {
            while (batch.Count < MaxBatch && queue.TryRead(out var next))
            {
                batch.Add(next);
            }
            try
            {
                var results = await ExecuteAsync(batch);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Result.TrySetResult(results[i]);
                }
            }
            catch (PostgresException) when (batch.Count > 1)
            {
                // One row the database refused (e.g. a payload jsonb cannot hold) rolled back the batch: go row by row.
                foreach (var pending in batch)
                {
                    try
                    {
                        pending.Result.TrySetResult((await ExecuteAsync([pending]))[0]);
                    }
                    catch (Exception ex)
                    {
                        pending.Result.TrySetException(ex);
                    }
                }
            }
            catch (Exception ex)
            {
                foreach (var pending in batch)
                {
                    pending.Result.TrySetException(ex);
                }
            }
            batch.Clear();
        }
    }

    /// <summary>One batch, one implicit transaction: the results are returned after it has committed.</summary>
    private async Task<StoreResult[]> ExecuteAsync(List<Pending> pendings)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection);
        foreach (var pending in pendings)
        {
            var incoming = pending.Event;
            var command = new NpgsqlBatchCommand(Sql);
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = incoming.Repo.Id });
            command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = incoming.Repo.UserId });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = incoming.DeliveryId });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = incoming.EventType });
            command.Parameters.Add(Text(incoming.Fields.Action));
            command.Parameters.Add(Text(incoming.Fields.Sender));
            command.Parameters.Add(Text(incoming.Fields.Title));
            command.Parameters.Add(Text(incoming.Fields.HtmlUrl));
            command.Parameters.Add(new NpgsqlParameter<byte[]> { NpgsqlDbType = NpgsqlDbType.Jsonb, TypedValue = incoming.Payload });
            batch.BatchCommands.Add(command);
        }

        var results = new StoreResult[pendings.Count];
        await using (var reader = await batch.ExecuteReaderAsync())
        {
            for (var i = 0; i < results.Length; i++)
            {
                await reader.ReadAsync();
                results[i] = reader.GetString(0) switch
                {
                    "stored" => new StoreResult(StoreOutcome.Stored, reader.GetInt64(1), reader.GetInt64(2),
                        reader.GetFieldValue<DateTimeOffset>(3), reader.GetBoolean(4)),
                    "duplicate" => new StoreResult(StoreOutcome.Duplicate),
                    _ => new StoreResult(StoreOutcome.RepoGone),
                };
                await reader.NextResultAsync();
            }
        }
        return results;
    }

    // Postgres text cannot hold NUL; a payload field carrying one is stored without it.
    private static NpgsqlParameter<string?> Text(string? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = value?.Replace("\0", "", StringComparison.Ordinal) };

    public async ValueTask DisposeAsync()
    {
        foreach (var queue in _queues)
        {
            queue.Writer.TryComplete();
        }
        await Task.WhenAll(_writers);
    }
}
