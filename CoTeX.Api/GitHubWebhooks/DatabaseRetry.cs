using CoTeX.ServiceDefaults;
using Npgsql;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// Runs a database step of a GitHub delivery again while the database is unavailable (a restart, a failover), until
/// the delivery's deadline (<see cref="GitHubWebhookOptions.DatabaseRetrySeconds"/> after it arrived): GitHub waits
/// 10 s for an answer and never redelivers a failed delivery by itself, so a blip must cost latency, not the event.
/// Before each retry the pool's idle connections are dropped: a restart leaves every one of them broken.
/// <para>
/// Each attempt is cancelled at the deadline too (the step gets a token that fires then): a database that accepts the
/// connection but does not answer (a stalled disk, a lock held for minutes) must not keep the attempt, its pooled
/// connection and the delivery's payload past the moment the delivery is answered 503.
/// </para>
/// </summary>
internal static partial class DatabaseRetry
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(1);

    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> step, NpgsqlDataSource dataSource,
        DateTimeOffset deadline, TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        var delay = FirstDelay;
        for (var attempt = 1; ; attempt++)
        {
            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                throw PastDeadline(null);
            }
            using var atDeadline = new CancellationTokenSource(remaining, time);
            using var attemptToken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, atDeadline.Token);
            try
            {
                return await step(attemptToken.Token);
            }
            catch (Exception ex) when (atDeadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                LogCancelledAtDeadline(logger, attempt);
                throw PastDeadline(ex);
            }
            catch (Exception ex) when (ProblemExceptionHandler.IsDatabaseUnavailable(ex) && time.GetUtcNow() + delay < deadline)
            {
                if (attempt == 1)
                {
                    LogRetrying(logger, ex.Message, (deadline - time.GetUtcNow()).TotalSeconds);
                }
                dataSource.Clear();
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
            }
        }
    }

    private static ServiceUnavailableException PastDeadline(Exception? inner) => new(
        "The database did not answer within this delivery's deadline; nothing more is attempted for it. Retry later.", inner);

    [LoggerMessage(LogLevel.Warning, "Database unavailable ({Reason}); retrying for up to {Seconds:0.0} s")]
    private static partial void LogRetrying(ILogger logger, string reason, double seconds);

    [LoggerMessage(LogLevel.Warning, "Database attempt {Attempt} cancelled at the delivery's deadline")]
    private static partial void LogCancelledAtDeadline(ILogger logger, int attempt);
}
