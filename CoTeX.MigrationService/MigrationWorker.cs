using System.Diagnostics;
using CoTeX.ServiceDefaults;
using CoTeX.Shared.Data;
using Npgsql;

namespace CoTeX.MigrationService;

/// <summary>
/// Creates the database when it does not exist, applies the pending migrations (one span, "migrate database"), and
/// stops the host. It runs as a hosted service so that logging and telemetry are up while it works and flushed when
/// it stops.
/// </summary>
internal sealed partial class MigrationWorker(
    IConfiguration configuration,
    DatabaseMigrator migrator,
    IHostApplicationLifetime lifetime,
    ILogger<MigrationWorker> logger) : BackgroundService
{
    private const int MaxAttempts = 30;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var activity = CoTeXTelemetry.ActivitySource.StartActivity("migrate database");
        try
        {
            await EnsureDatabaseAsync(stoppingToken);
            var applied = await migrator.MigrateAsync(stoppingToken);
            activity?.SetTag("cotex.migrations.applied", applied.Count);
            LogComplete(logger, applied.Count, string.Join(", ", applied));
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            activity?.AddException(ex).SetStatus(ActivityStatusCode.Error, ex.Message);
            LogFailed(logger, ex);
            Environment.ExitCode = 1;
        }
        finally
        {
            lifetime.StopApplication();
        }
    }

    /// <summary>The server may still be starting (a fresh container or local cluster): retry for up to 30 s.</summary>
    private async Task EnsureDatabaseAsync(CancellationToken cancellationToken)
    {
        var connectionString = configuration.GetConnectionString(DataExtensions.DatabaseConnectionName)!;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                DatabaseMigrator.EnsureDatabase(connectionString, logger);
                return;
            }
            catch (NpgsqlException ex) when (attempt < MaxAttempts)
            {
                LogNotReachable(logger, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Migrations complete: {AppliedCount} applied ({Applied})")]
    private static partial void LogComplete(ILogger logger, int appliedCount, string applied);

    [LoggerMessage(LogLevel.Critical, "Migrations failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(LogLevel.Warning, "Postgres is not reachable yet (attempt {Attempt}): {Reason}")]
    private static partial void LogNotReachable(ILogger logger, int attempt, string reason);
}
