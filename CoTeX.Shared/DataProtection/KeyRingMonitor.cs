using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CoTeX.Shared.DataProtection;

/// <summary>
/// Whether every key of the Data Protection key ring can be decrypted with this service's key-encryption keys: the
/// <c>key-ring</c> check of /health, and an error in the log at start when not. A service started with another
/// key-encryption key than the one the ring was encrypted with cannot read the webhook secrets the ring protects.
/// </summary>
public sealed partial class KeyRingMonitor(IKeyManager keyManager, ILogger<KeyRingMonitor> logger) : BackgroundService, IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (healthy, description) = await Task.Run(Check, cancellationToken);
        return healthy ? HealthCheckResult.Healthy(description) : new HealthCheckResult(context.Registration.FailureStatus, description);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var (healthy, description) = await Task.Run(Check, stoppingToken);
        if (!healthy)
        {
            LogUnreadable(logger, description);
        }
    }

    private (bool Healthy, string Description) Check()
    {
        IReadOnlyCollection<IKey> keys;
        try
        {
            keys = keyManager.GetAllKeys();
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            return (false, $"Cannot read the Data Protection key ring: {ex.Message}");
        }
        var unreadable = 0;
        string? reason = null;
        foreach (var key in keys)
        {
            try
            {
                _ = key.Descriptor; // decrypts the key's secret
            }
            catch (CryptographicException ex)
            {
                unreadable++;
                reason ??= ex.Message;
            }
        }
        return unreadable == 0
            ? (true, $"{keys.Count} Data Protection keys, all readable.")
            : (false, $"{unreadable} of {keys.Count} Data Protection keys cannot be decrypted: {reason}");
    }

    [LoggerMessage(LogLevel.Error, "Webhook secrets cannot be read: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string reason);
}
