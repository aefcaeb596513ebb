using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace CoTeX.Shared.Data;

/// <summary>
/// Every migration this build knows has been applied. Once true it stays true for the life of the process
/// (migrations are never rolled back), so afterwards the check costs nothing.
/// </summary>
internal sealed class MigrationsHealthCheck(DatabaseMigrator migrator) : IHealthCheck
{
    private volatile bool _applied;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (_applied)
        {
            return HealthCheckResult.Healthy("All migrations are applied.");
        }
        try
        {
            // DbUp is synchronous; keep it off the request thread.
            var pending = await Task.Run(migrator.PendingScripts, cancellationToken);
            if (pending.Count == 0)
            {
                _applied = true;
                return HealthCheckResult.Healthy("All migrations are applied.");
            }
            return new HealthCheckResult(context.Registration.FailureStatus,
                $"{pending.Count} migration(s) pending, first {pending[0]}. Run CoTeX.MigrationService.");
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"Cannot read the migration journal: {ex.Message}");
        }
    }
}
