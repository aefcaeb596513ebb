using CoTeX.Shared.Data;

var builder = Host.CreateApplicationBuilder(args);
builder.AddWorkerDefaults();
builder.AddCoTeXDatabase(maxPoolSize: 2);

using var host = builder.Build();
var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CoTeX.Migrations");

try
{
    // The server may still be starting (a fresh container or local cluster): retry for up to 30 s.
    for (var attempt = 1; ; attempt++)
    {
        try
        {
            DatabaseMigrator.EnsureDatabase(builder.Configuration.GetConnectionString(DataExtensions.DatabaseConnectionName)!, logger);
            break;
        }
        catch (Npgsql.NpgsqlException ex) when (attempt < 30)
        {
            logger.LogWarning("Postgres is not reachable yet (attempt {Attempt}): {Reason}", attempt, ex.Message);
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }
    var applied = await host.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync();
    logger.LogInformation("Migrations complete: {AppliedCount} applied ({Applied})", applied.Count, string.Join(", ", applied));
    return 0;
}
catch (Exception ex)
{
    logger.LogCritical(ex, "Migrations failed");
    return 1;
}
