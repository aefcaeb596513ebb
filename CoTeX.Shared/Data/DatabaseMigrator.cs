using DbUp;
using DbUp.Engine;
using DbUp.Postgresql;
using DbUp.Support;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CoTeX.Shared.Data;

/// <summary>
/// Migrates the database with DbUp in two passes, each script in its own transaction: first the versioned scripts in
/// <c>Data/Migrations</c> (tables, indexes, data changes: embedded, run in name order, each once, journaled in
/// <c>schemaversions</c>), then every script in <c>Data/Functions</c> (<c>create or replace function</c>, in name
/// order), which runs on every migration and is not journaled. So a function's current definition is in one file, and
/// a database migrated by any earlier version ends with the same functions as a fresh one; the whole result is
/// <c>Data/schema.sql</c>, which a test compares with a freshly migrated database. A versioned script that calls a
/// function while it runs must create the function itself (0003 does), since the functions come after it.
/// Safe to run from several processes at once: a Postgres advisory lock serialises them, both passes included.
/// </summary>
public sealed class DatabaseMigrator(NpgsqlDataSource dataSource, ILoggerFactory loggerFactory)
{
    // Any constant works; it only has to be the same for every CoTeX migrator.
    private const long AdvisoryLockKey = 0x436F5465_58_4442; // "CoTeXDB"

    /// <summary>Creates the database named in the connection string when it does not exist (local runs, tests).</summary>
    public static void EnsureDatabase(string connectionString, ILogger logger) =>
        DbUp.EnsureDatabase.For.PostgresqlDatabase(connectionString, new UpgradeLogAdapter(logger));

    public async Task<IReadOnlyList<string>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var lockConnection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var acquire = new NpgsqlCommand("select pg_advisory_lock(@key)", lockConnection))
        {
            acquire.Parameters.AddWithValue("key", AdvisoryLockKey);
            await acquire.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            var result = Engine(log: true).PerformUpgrade();
            if (!result.Successful)
            {
                throw new InvalidOperationException(
                    $"Migration {result.ErrorScript?.Name ?? "(unknown)"} failed: {result.Error.Message}", result.Error);
            }
            // The functions ran too, as on every run; what was applied is the versioned scripts.
            return Versioned(result.Scripts);
        }
        finally
        {
            // Released here, not left to the connection: a pooled connection goes back to the pool open, and with
            // No Reset On Close (DataExtensions) nothing would release the lock until the pool closed it.
            try
            {
                await using var release = new NpgsqlCommand("select pg_advisory_unlock(@key)", lockConnection);
                release.Parameters.AddWithValue("key", AdvisoryLockKey);
                await release.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch (NpgsqlException)
            {
                // The connection broke, and its session's lock went with it; the migration's own error, if any, stands.
            }
        }
    }

    /// <summary>Versioned scripts this build knows that the database has not applied yet.</summary>
    public IReadOnlyList<string> PendingScripts() => Versioned(Engine(log: false).GetScriptsToExecute());

    private static List<string> Versioned(IEnumerable<SqlScript> scripts) =>
        scripts.Where(s => s.SqlScriptOptions.ScriptType == ScriptType.RunOnce).Select(s => s.Name).ToList();

    private UpgradeEngine Engine(bool log)
    {
        var assembly = typeof(DatabaseMigrator).Assembly;
        var builder = DeployChanges.To
            .PostgresqlDatabase(new PostgresqlConnectionManager(dataSource))
            .WithScriptsEmbeddedInAssembly(assembly, name => name.Contains(".Data.Migrations."))
            // One engine, so one call and one lock: DbUp orders scripts by run group, then by name, so a later group
            // runs after every versioned script. Run-always scripts are never journaled (nor counted as pending).
            .WithScriptsEmbeddedInAssembly(assembly, name => name.Contains(".Data.Functions."), new SqlScriptOptions
            {
                ScriptType = ScriptType.RunAlways,
                RunGroupOrder = DbUpDefaults.DefaultRunGroupOrder + 1,
            })
            .WithTransactionPerScript();
        builder = log ? builder.LogTo(loggerFactory) : builder.LogToNowhere();
        return builder.Build();
    }

    private sealed class UpgradeLogAdapter(ILogger logger) : DbUp.Engine.Output.IUpgradeLog
    {
        public void LogTrace(string format, params object[] args) => logger.LogTrace(format, args);
        public void LogDebug(string format, params object[] args) => logger.LogDebug(format, args);
        public void LogInformation(string format, params object[] args) => logger.LogInformation(format, args);
        public void LogWarning(string format, params object[] args) => logger.LogWarning(format, args);
        public void LogError(string format, params object[] args) => logger.LogError(format, args);
        public void LogError(Exception ex, string format, params object[] args) => logger.LogError(ex, format, args);
    }
}
