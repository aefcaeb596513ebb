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
/// /health answers anyone, so its description names the setting but no key-encryption key id; the log line has them.
/// </summary>
public sealed partial class KeyRingMonitor(IKeyManager keyManager, ILogger<KeyRingMonitor> logger) : BackgroundService, IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (healthy, description, _) = await Task.Run(Check, cancellationToken);
        return healthy ? HealthCheckResult.Healthy(description) : new HealthCheckResult(context.Registration.FailureStatus, description);
    }

    /// <summary>
    /// Whether this service can read every key of the ring now: when a protected value fails to read, this tells a
    /// value that was tampered with (the caller's fault, a 4xx) from a ring this service cannot read (a 503).
    /// </summary>
    public Task<bool> IsReadableAsync(CancellationToken cancellationToken) =>
        Task.Run(() => Check().Healthy, cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var (healthy, description, reason) = await Task.Run(Check, stoppingToken);
        if (!healthy)
        {
            LogUnreadable(logger, reason ?? description);
        }
    }

    /// <returns>The public description, and for the log the first reason a key could not be read.</returns>
    private (bool Healthy, string Description, string? Reason) Check()
    {
        IReadOnlyCollection<IKey> keys;
        try
        {
            keys = keyManager.GetAllKeys();
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            return (false, "Cannot read the Data Protection key ring from the database.", ex.Message);
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
            ? (true, $"{keys.Count} Data Protection keys, all readable.", null)
            : (false, $"{unreadable} of {keys.Count} Data Protection keys cannot be decrypted with this service's " +
                      "DataProtection:KeyEncryptionKey (or PreviousKeyEncryptionKeys): secrets cannot be read and no new " +
                      "one is made until it is the ring's key; the log names the keys.", reason);
    }

    [LoggerMessage(LogLevel.Error, "Webhook secrets cannot be read: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string reason);
}
