using System.Globalization;
using CoTeX.Shared.GitHubApp;
using Dapper;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CoTeX.Worker.GitHubApp;

/// <summary>
/// Keeps GitHub App mode honest when GitHub's events are not enough:
/// <list type="bullet">
/// <item><b>Access re-checks</b>: every connection is checked against GitHub again at most
/// <see cref="GitHubAppOptions.RecheckSeconds"/> after the last check (at once when an event asked for it), so a
/// removal GitHub sends the app no event for is bounded. Each installation is checked too (with the app's JWT and an
/// installation token): gone, suspended, or no longer covering a repository, as a lost event would have said.</item>
/// <item><b>Redelivery</b>: GitHub does not retry a failed delivery, but lists the app's deliveries. Every
/// <see cref="GitHubAppOptions.RedeliverySeconds"/>, the deliveries since the last look whose every attempt failed
/// (a database outage past GitHub's 10 s, a bad deploy) are asked for again, oldest first, at most
/// <see cref="GitHubAppOptions.MaxRedeliveriesPerRun"/> per run and <see cref="GitHubAppOptions.MaxRedeliveryAttempts"/>
/// times each. They arrive as new attempts with the same delivery id, deduped like any other.</item>
/// </list>
/// </summary>
public sealed partial class GitHubAppMaintenance(
    NpgsqlDataSource dataSource,
    GitHubAppClient github,
    GitHubConnections connections,
    IOptions<GitHubAppOptions> options,
    TimeProvider time,
    ILogger<GitHubAppMaintenance> logger) : BackgroundService
{
    private const string DeliveriesCheckedUntil = "deliveries_checked_until";
    private const int ConnectionsPerPage = 100;
    // GitHub keeps an app's deliveries for three days; the first look goes back that far.
    private static readonly TimeSpan DeliveryHistory = TimeSpan.FromDays(3);
    // GitHub's clock and ours: each look starts a little before the last one ended.
    private static readonly TimeSpan LookOverlap = TimeSpan.FromMinutes(5);
    // A redelivery GitHub has not attempted after this long is asked for again.
    private static readonly TimeSpan PendingRedelivery = TimeSpan.FromHours(1);

    public sealed record RecheckReport(int Connections, int Revoked, int Failed);

    public sealed record RedeliveryReport(int Failed, int Requested, int Waiting, int GivenUp);

    private DateTimeOffset _nextInstallationCheck;
    private DateTimeOffset _nextRedelivery;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var app = options.Value;
        if (!app.IsEnabled)
        {
            return; // GitHubAppModeLog has said so
        }
        // Each job is due on the tick nearest its time, counted from the tick it last ran on. Counted from when its
        // work ended and run on the first tick after that, a job whose interval is one period ran every second tick.
        var period = TimeSpan.FromSeconds(Math.Min(60, Math.Min(app.RecheckSeconds, app.RedeliverySeconds)));
        var slack = period / 2;
        using var timer = new PeriodicTimer(period, time);
        do
        {
            var tick = time.GetUtcNow();
            await RunSafelyAsync(() => RecheckDueAsync(stoppingToken, slack));
            if (tick + slack >= _nextInstallationCheck)
            {
                _nextInstallationCheck = tick.AddSeconds(app.RecheckSeconds);
                await RunSafelyAsync(() => CheckInstallationsAsync(stoppingToken));
            }
            if (tick + slack >= _nextRedelivery)
            {
                _nextRedelivery = tick.AddSeconds(app.RedeliverySeconds);
                await RunSafelyAsync(() => RedeliverFailedAsync(stoppingToken));
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task RunSafelyAsync(Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // GitHub or the database is away: the next tick tries again.
            LogFailed(logger, ex);
        }
    }

    /// <summary>
    /// Checks every connection whose re-check is due (within <paramref name="slack"/> of now: on the tick nearest its
    /// time), oldest first, a page of them at a time. One whose re-check another process holds is left to it.
    /// </summary>
    public async Task<RecheckReport> RecheckDueAsync(CancellationToken cancellationToken, TimeSpan slack = default)
    {
        var now = time.GetUtcNow() + slack;
        int checkedCount = 0, revoked = 0, failed = 0;
        // Keyset paging: each page starts after the last one (a connection that is not re-checked cannot come round again).
        (DateTime RecheckAfter, Guid UserId)? after = null;
        while (true)
        {
            (DateTime RecheckAfter, Guid UserId)[] due;
            await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
            {
                due = (await connection.QueryAsync<(DateTime, Guid)>(new CommandDefinition(
                    """
                    select recheck_after, user_id from github_connections
                     where revoked_at is null and recheck_after <= @now
                       and (@afterTime::timestamptz is null or (recheck_after, user_id) > (@afterTime, @afterUser))
                     order by recheck_after, user_id limit @limit
                    """,
                    new { now, afterTime = after?.RecheckAfter, afterUser = after?.UserId ?? Guid.Empty, limit = ConnectionsPerPage },
                    cancellationToken: cancellationToken))).ToArray();
            }
            foreach (var (_, userId) in due)
            {
                try
                {
                    if ((await connections.RecheckAsync(userId, cancellationToken)).Outcome == RecheckOutcome.Revoked)
                    {
                        revoked++;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    failed++;
                    LogRecheckFailed(logger, userId, ex.Message);
                }
            }
            checkedCount += due.Length;
            if (due.Length < ConnectionsPerPage)
            {
                break;
            }
            after = due[^1];
        }
        if (checkedCount > 0)
        {
            LogRechecked(logger, checkedCount, revoked, failed);
        }
        return new RecheckReport(checkedCount, revoked, failed);
    }

    /// <summary>
    /// Each installation as GitHub has it now: a deleted one becomes a tombstone, a suspension is copied, and access
    /// to repositories the installation no longer covers goes.
    /// </summary>
    public async Task<int> CheckInstallationsAsync(CancellationToken cancellationToken)
    {
        long[] installations;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            installations = (await connection.QueryAsync<long>(new CommandDefinition(
                "select id from github_app_installations where deleted_at is null order by id", cancellationToken: cancellationToken))).ToArray();
        }
        foreach (var id in installations)
        {
            try
            {
                await CheckInstallationAsync(id, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One installation GitHub will not answer for (an IP allow list, an outage) does not stop the others.
                LogInstallationCheckFailed(logger, id, ex.Message);
            }
        }
        return installations.Length;
    }

    private async Task CheckInstallationAsync(long id, CancellationToken cancellationToken)
    {
        long seen;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            seen = await GitHubAccessQueries.NarrowingsSoFarAsync(connection, cancellationToken);
        }
        // GitHub's answers, with no database connection held while it answers.
        var installation = await github.GetInstallationAsync(id, cancellationToken);
        var covered = installation is { SuspendedAt: null }
            ? (await github.GetInstallationRepositoriesAsync(id, cancellationToken)).Select(r => r.Id).ToArray()
            : null;

        await using var db = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await db.BeginTransactionAsync(cancellationToken);
        var stored = await db.QuerySingleOrDefaultAsync<(long NarrowedAt, bool Suspended)?>(new CommandDefinition(
            "select narrowed_at, suspended_at is not null from github_app_installations where id = @id and deleted_at is null for update",
            new { id }, transaction, cancellationToken: cancellationToken));
        if (stored is not { } current)
        {
            return; // uninstalled meanwhile
        }
        if (installation is null)
        {
            await GitHubAccessQueries.DeleteInstallationAsync(db, transaction, id, "", "", cancellationToken);
        }
        else
        {
            var narrows = installation.SuspendedAt is not null && !current.Suspended
                          || covered is not null && await GitHubAccessQueries.CoversLessAsync(db, transaction, id, covered, cancellationToken);
            if (narrows)
            {
                await GitHubAccessQueries.NarrowInstallationAsync(db, transaction, id, cancellationToken);
            }
            // A state GitHub showed before an event CoTeX applied since is not written over it (that event is newer);
            // what it takes away still is.
            if (narrows || current.NarrowedAt <= seen)
            {
                await GitHubAccessQueries.UpsertInstallationAsync(db, transaction, id, installation.Account.Login,
                    installation.Account.Type, installation.SuspendedAt, installation.UpdatedAt, cancellationToken);
            }
            if (covered is not null)
            {
                await GitHubAccessQueries.KeepOnlyRepositoriesAsync(db, transaction, id, covered, cancellationToken);
            }
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Asks GitHub to send again the app's deliveries that failed since the last look.</summary>
    public async Task<RedeliveryReport> RedeliverFailedAsync(CancellationToken cancellationToken)
    {
        var app = options.Value;
        var started = time.GetUtcNow();
        // Each database step opens its own connection: none is held while GitHub answers.
        string? stored;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            stored = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
                "select value from github_app_state where key = @key", new { key = DeliveriesCheckedUntil },
                cancellationToken: cancellationToken));
        }
        var since = stored is not null ? DateTimeOffset.Parse(stored, CultureInfo.InvariantCulture) - LookOverlap : started - DeliveryHistory;

        // Newest first: a guid's first entry is its latest attempt; one that ever succeeded needs nothing.
        var latestFailure = new Dictionary<string, GitHubHookDelivery>();
        var succeeded = new HashSet<string>();
        await foreach (var delivery in github.GetDeliveriesAsync(cancellationToken))
        {
            if (delivery.DeliveredAt < since)
            {
                break;
            }
            if (delivery.Succeeded)
            {
                succeeded.Add(delivery.Guid);
            }
            else
            {
                latestFailure.TryAdd(delivery.Guid, delivery);
            }
        }
        var failed = latestFailure.Values.Where(d => !succeeded.Contains(d.Guid)).OrderBy(d => d.DeliveredAt).ToList();
        Dictionary<string, (string Guid, int Attempts, long DeliveryId, DateTime RequestedAt)> asked;
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            asked = (await connection.QueryAsync<(string Guid, int Attempts, long DeliveryId, DateTime RequestedAt)>(new CommandDefinition(
                    "select guid, attempts, delivery_id, requested_at from github_app_redeliveries where guid = any(@guids)",
                    new { guids = failed.Select(d => d.Guid).ToArray() }, cancellationToken: cancellationToken)))
                .ToDictionary(r => r.Guid);
        }

        int requested = 0, waiting = 0, givenUp = 0;
        foreach (var delivery in failed)
        {
            if (asked.TryGetValue(delivery.Guid, out var before))
            {
                // The latest failure is still the one asked about: GitHub has not made that attempt yet (by delivery
                // ids, not clocks), unless the request is long gone.
                if (delivery.Id <= before.DeliveryId && before.RequestedAt > started.UtcDateTime - PendingRedelivery)
                {
                    continue;
                }
                if (before.Attempts >= app.MaxRedeliveryAttempts)
                {
                    givenUp++;
                    continue;
                }
            }
            if (requested == app.MaxRedeliveriesPerRun)
            {
                waiting++;
                continue;
            }
            await github.RedeliverAsync(delivery.Id, cancellationToken);
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                """
                insert into github_app_redeliveries (guid, delivery_id, requested_at) values (@guid, @deliveryId, now())
                on conflict (guid) do update
                   set attempts = github_app_redeliveries.attempts + 1, delivery_id = excluded.delivery_id, requested_at = now()
                """, new { guid = delivery.Guid, deliveryId = delivery.Id }, cancellationToken: cancellationToken));
            requested++;
        }
        if (waiting == 0)
        {
            // Everything up to the start of this look is handled; the next look starts there (less the overlap).
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(
                """
                insert into github_app_state (key, value) values (@key, @value)
                on conflict (key) do update set value = excluded.value
                """, new { key = DeliveriesCheckedUntil, value = started.ToString("O", CultureInfo.InvariantCulture) },
                cancellationToken: cancellationToken));
        }
        var report = new RedeliveryReport(failed.Count, requested, waiting, givenUp);
        if (failed.Count > 0)
        {
            LogRedelivered(logger, report.Failed, report.Requested, report.Waiting, report.GivenUp);
        }
        return report;
    }

    [LoggerMessage(LogLevel.Information, "GitHub App access re-checked for {Connections} connections: {Revoked} revoked, {Failed} failed")]
    private static partial void LogRechecked(ILogger logger, int connections, int revoked, int failed);

    [LoggerMessage(LogLevel.Warning, "GitHub App access re-check failed for user {UserId}: {Reason}; retrying in a minute")]
    private static partial void LogRecheckFailed(ILogger logger, Guid userId, string reason);

    [LoggerMessage(LogLevel.Information,
        "GitHub App deliveries: {Failed} failed since the last look, {Requested} redeliveries asked for, {Waiting} left for the next run, {GivenUp} given up")]
    private static partial void LogRedelivered(ILogger logger, int failed, int requested, int waiting, int givenUp);

    [LoggerMessage(LogLevel.Warning, "GitHub App installation {InstallationId} could not be checked: {Reason}; the next round retries")]
    private static partial void LogInstallationCheckFailed(ILogger logger, long installationId, string reason);

    [LoggerMessage(LogLevel.Warning, "GitHub App maintenance step failed; the next round retries")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
