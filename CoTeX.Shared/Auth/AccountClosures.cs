using CoTeX.Shared.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace CoTeX.Shared.Auth;

/// <summary>
/// Makes a closed account's tokens refused at once by every Api and Realtime process, and its live connections close.
/// Each process remembers for a few minutes whom it has provisioned (<see cref="UserProvisioner"/>) and would accept
/// the account's tokens meanwhile. So the process that closes an account announces it on Redis, and every process
/// forgets the user (its next request meets the tombstone) and raises <see cref="Closed"/> (Realtime closes the
/// user's connections). Pub/sub keeps nothing: a process whose Redis connection was interrupted forgets everyone it had
/// provisioned, so each user's next request is checked against the database again.
/// </summary>
public sealed partial class AccountClosures(
    IConnectionMultiplexer redis, UserProvisioner provisioner, ILogger<AccountClosures> logger) : BackgroundService
{
    public static readonly RedisChannel Channel = RedisChannel.Literal("cotex:account-closures");

    /// <summary>Raised in this process for every closed account, announced here or by another process.</summary>
    public event Action<Guid>? Closed;

    /// <summary>Tells every process (this one at once, the others through Redis) that the account is closed.</summary>
    public async Task AnnounceAsync(Guid userId)
    {
        Forget(userId);
        try
        {
            await redis.GetSubscriber().PublishAsync(Channel, userId.ToString());
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
            LogAnnounceFailed(logger, ex, userId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await redis.GetSubscriber().SubscribeAsync(Channel, (_, message) =>
                    {
                        if (Guid.TryParse(message.ToString(), out var userId))
                        {
                            Forget(userId);
                        }
                    });
                    break;
                }
                catch (Exception ex) when (RedisFailures.IsOutage(ex))
                {
                    LogSubscribeFailed(logger, ex);
                    await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
                }
            }
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            redis.ConnectionRestored -= OnConnectionRestored;
        }
    }

    private void Forget(Guid userId)
    {
        provisioner.Forget(userId);
        Closed?.Invoke(userId);
    }

    // Announcements may have been missed while the connection was down.
    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e) => provisioner.ForgetAll();

    [LoggerMessage(LogLevel.Warning, "Could not announce the closing of account {UserId}; other processes refuse its tokens once their cache of it expires")]
    private static partial void LogAnnounceFailed(ILogger logger, Exception exception, Guid userId);

    [LoggerMessage(LogLevel.Warning, "Could not subscribe to account closures; retrying")]
    private static partial void LogSubscribeFailed(ILogger logger, Exception exception);
}
