using CoTeX.ServiceDefaults;
using Npgsql;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// Runs a database step of a GitHub delivery again while the database is unavailable (a restart, a failover), until
/// the delivery's deadline (<see cref="GitHubWebhookOptions.DatabaseRetrySeconds"/> after it arrived): GitHub waits
/// 10 s for an answer and never redelivers a failed delivery by itself, so a blip must cost latency, not the event.
/// Before each retry the pool's idle connections are dropped: a restart leaves every one of them broken.
/// </summary>
internal static partial class DatabaseRetry
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(1);

    public static async Task<T> RunAsync<T>(Func<Task<T>> step, NpgsqlDataSource dataSource, DateTimeOffset deadline,
        TimeProvider time, ILogger logger, CancellationToken cancellationToken = default)
    {
        var delay = FirstDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await step();
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

    [LoggerMessage(LogLevel.Warning, "Database unavailable ({Reason}); retrying for up to {Seconds:0.0} s")]
    private static partial void LogRetrying(ILogger logger, string reason, double seconds);
}
