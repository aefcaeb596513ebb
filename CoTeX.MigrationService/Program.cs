using CoTeX.Shared.Data;

var builder = Host.CreateApplicationBuilder(args);
builder.AddWorkerDefaults();
builder.AddCoTeXDatabase();

using var host = builder.Build();
var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CoTeX.Migrations");

try
{
    DatabaseMigrator.EnsureDatabase(builder.Configuration.GetConnectionString(DataExtensions.DatabaseConnectionName)!, logger);
    var applied = await host.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync();
    logger.LogInformation("Migrations complete: {AppliedCount} applied ({Applied})", applied.Count, string.Join(", ", applied));
    return 0;
}
catch (Exception ex)
{
    logger.LogCritical(ex, "Migrations failed");
    return 1;
}
