using System.ComponentModel.DataAnnotations;
using Dapper;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CoTeX.Worker.Retention;

/// <summary>Bound from <c>Retention</c>.</summary>
public sealed class RetentionOptions
{
    public const string Section = "Retention";

    /// <summary>How long GitHub events, their dedupe keys and processed Stripe events are kept.</summary>
    [Range(1, 3650)]
    public int Days { get; set; } = 14;

    [Range(1, 1440)]
    public int IntervalMinutes { get; set; } = 60;

    public bool Enabled { get; set; } = true;

    /// <summary>Rows per delete statement where rows are deleted (keeps each statement's locks short).</summary>
    [Range(100, 1_000_000)]
    public int BatchSize { get; set; } = 10_000;
}

/// <summary>
/// Removes what is older than the retention window. GitHub events are in daily partitions: a day entirely past the
/// window is dropped as a whole (no row deletes, no bloat, a brief lock on that partition only); the one partition
/// that straddles the cut-off, and the default partition, lose their expired rows in small batches. Before events
/// go, each user's <c>pruned_through_seq</c> records the highest position removed, so a client resuming from before
/// it gets a reset instead of silently missing events. The payloads a delivery's followers share
/// (<c>github_event_payloads</c>, migration 0009) are partitioned by the same days, with the same <c>received_at</c> as
/// their events: a day's partition of them is dropped with that day's events, and the straddling day's are deleted
/// after its events. Dedupe keys (the GitHub App's too) and processed Stripe events
/// follow the same window; Connect GitHub flows a day old go (the pending ones hold GitHub tokens).
/// Also creates the daily partitions for the coming week, through the database function
/// <c>ensure_github_event_partitions</c> (<c>CoTeX.Shared/Data/Functions/ensure_github_event_partitions.sql</c>): a
/// partition <c>github_events_pYYYYMMDD</c> (and <c>github_event_payloads_pYYYYMMDD</c>) for each UTC day of the range
/// that has none, so no event lands in the default partition.
/// </summary>
public sealed partial class RetentionJob(NpgsqlDataSource dataSource, IOptions<RetentionOptions> options, TimeProvider time,
    ILogger<RetentionJob> logger) : BackgroundService
{
    public sealed record Report(int PartitionsCreated, IReadOnlyList<string> PartitionsDropped, long EventsDeleted,
        long DeliveriesDeleted, long StripeEventsDeleted, long PayloadsDeleted);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(options.Value.IntervalMinutes), time);
        do
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One failed run must not stop the Worker (and with it reconciliation); the next run retries.
                LogFailed(logger, ex);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task<Report> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var cutoff = now.AddDays(-options.Value.Days);
        var batch = options.Value.BatchSize;
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);

        var created = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "select ensure_github_event_partitions(@today::date, @until::date)",
            new { today = now.UtcDateTime.Date, until = now.UtcDateTime.Date.AddDays(7) },
            cancellationToken: cancellationToken));

        var dropped = new List<string>();
        foreach (var partition in await ExpiredPartitionsAsync(connection, "github_events", cutoff, cancellationToken))
        {
            // The day's shared payloads go in the same transaction: no event of the day is left without its payload.
            var payloads = "github_event_payloads_p" + partition["github_events_p".Length..];
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                $"""
                update users u set pruned_through_seq = greatest(u.pruned_through_seq, p.max_seq)
                  from (select user_id, max(seq) as max_seq from {partition} group by user_id) p
                 where u.id = p.user_id
                """, transaction: transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition($"drop table {partition}; drop table if exists {payloads}",
                transaction: transaction, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
            dropped.Add(partition);
        }
        // A day of payloads whose events' partition was already gone (none is made without the other; this is for safety).
        foreach (var partition in await ExpiredPartitionsAsync(connection, "github_event_payloads", cutoff, cancellationToken))
        {
            await connection.ExecuteAsync(new CommandDefinition($"drop table {partition}", cancellationToken: cancellationToken));
            dropped.Add(partition);
        }

        long events = 0, deleted;
        do
        {
            // Rows past the cut-off in the partition that straddles it (and in the default partition).
            deleted = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                """
                with expired as (
                    delete from github_events
                     where (id, received_at) in (select id, received_at from github_events where received_at < @cutoff limit @batch)
                    returning user_id, seq
                ), pruned as (
                    update users u set pruned_through_seq = greatest(u.pruned_through_seq, e.max_seq)
                      from (select user_id, max(seq) as max_seq from expired group by user_id) e
                     where u.id = e.user_id
                )
                select count(*) from expired
                """, new { cutoff, batch }, cancellationToken: cancellationToken));
            events += deleted;
        } while (deleted == batch);

        // The straddling day's (and the default partition's) shared payloads, once their events are gone. (Deleting
        // those events released them already where they were the last references: release_github_event_payloads.)
        var payloadsDeleted = await DeleteInBatchesAsync(connection,
            """
            delete from github_event_payloads
             where (id, received_at) in (select id, received_at from github_event_payloads where received_at < @cutoff limit @batch)
            """, cutoff, batch, cancellationToken);

        var deliveries = await DeleteInBatchesAsync(connection,
            "delete from github_deliveries where ctid in (select ctid from github_deliveries where received_at < @cutoff limit @batch)",
            cutoff, batch, cancellationToken);
        // The GitHub App's: dedupe keys of its access events and redelivery bookkeeping, in the same window.
        deliveries += await DeleteInBatchesAsync(connection,
            "delete from github_app_deliveries where ctid in (select ctid from github_app_deliveries where received_at < @cutoff limit @batch)",
            cutoff, batch, cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            delete from github_app_redeliveries where requested_at < @cutoff;
            delete from github_app_connect_states where created_at < @staleConnects;
            """, new { cutoff, staleConnects = now.AddDays(-1) }, cancellationToken: cancellationToken));
        var stripeEvents = await DeleteInBatchesAsync(connection,
            "delete from stripe_events where ctid in (select ctid from stripe_events where processed_at is not null and received_at < @cutoff limit @batch)",
            cutoff, batch, cancellationToken);

        var report = new Report(created, dropped, events, deliveries, stripeEvents, payloadsDeleted);
        LogReport(logger, options.Value.Days, created, dropped.Count, string.Join(", ", dropped), events, payloadsDeleted, deliveries, stripeEvents);
        return report;
    }

    private static async Task<IReadOnlyList<string>> ExpiredPartitionsAsync(NpgsqlConnection connection, string parent,
        DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        // Daily partitions are named <parent>_pYYYYMMDD; a day is expired when its end is at or before the cut-off.
        var prefix = parent + "_p";
        var names = await connection.QueryAsync<string>(new CommandDefinition(
            """
            select c.relname from pg_inherits i
              join pg_class c on c.oid = i.inhrelid
              join pg_class p on p.oid = i.inhparent
             where p.relname = @parent and c.relname ~ ('^' || @parent || '_p[0-9]{8}$')
            """, new { parent }, cancellationToken: cancellationToken));
        return names
            .Where(n => DateOnly.TryParseExact(n[prefix.Length..], "yyyyMMdd", out var day)
                        && day.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) <= cutoff.UtcDateTime)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    private static async Task<long> DeleteInBatchesAsync(NpgsqlConnection connection, string sql, DateTimeOffset cutoff, int batch,
        CancellationToken cancellationToken)
    {
        long total = 0;
        int deleted;
        do
        {
            deleted = await connection.ExecuteAsync(new CommandDefinition(sql, new { cutoff, batch }, cancellationToken: cancellationToken));
            total += deleted;
        } while (deleted == batch);
        return total;
    }

    [LoggerMessage(LogLevel.Information,
        "Retention ({Days} days): {PartitionsCreated} days of partitions created, {PartitionsDropped} dropped [{DroppedNames}], {EventsDeleted} events, {PayloadsDeleted} shared payloads, {DeliveriesDeleted} dedupe keys and {StripeEventsDeleted} Stripe events deleted")]
    private static partial void LogReport(ILogger logger, int days, int partitionsCreated, int partitionsDropped, string droppedNames,
        long eventsDeleted, long payloadsDeleted, long deliveriesDeleted, long stripeEventsDeleted);

    [LoggerMessage(LogLevel.Warning, "Retention run failed; next run in the usual interval")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
