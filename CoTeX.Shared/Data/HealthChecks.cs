using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using StackExchange.Redis;

namespace CoTeX.Shared.Data;

/// <summary>Postgres answers a query.</summary>
internal sealed class PostgresHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = dataSource.CreateCommand("select 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy("Postgres is reachable.");
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"Postgres is unreachable: {ex.Message}");
        }
    }
}

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

/// <summary>Redis answers PING.</summary>
internal sealed class RedisHealthCheck(IConnectionMultiplexer redis) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var latency = await redis.GetDatabase().PingAsync();
            return HealthCheckResult.Healthy($"Redis answered PING in {latency.TotalMilliseconds:0.0} ms.");
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"Redis is unreachable: {ex.Message}");
        }
    }
}
