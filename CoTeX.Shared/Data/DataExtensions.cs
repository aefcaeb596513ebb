using CoTeX.Shared.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using StackExchange.Redis;

namespace Microsoft.Extensions.Hosting;

public static class DataExtensions
{
    /// <summary>The connection-string names an Aspire AppHost injects (<c>ConnectionStrings__cotexdb</c>, ...).</summary>
    public const string DatabaseConnectionName = "cotexdb";
    public const string RedisConnectionName = "redis";

    /// <summary>
    /// Postgres (<see cref="Npgsql.NpgsqlDataSource"/>) and its readiness checks: reachable, migrations applied.
    /// A missing connection string fails at start, naming the setting.
    /// </summary>
    /// <param name="maxPoolSize">
    /// This service's share of the server's connections, unless the connection string sets <c>Maximum Pool Size</c>
    /// or <c>Database:MaxPoolSize</c> is set (which wins). Every service gets the same connection string, and
    /// Npgsql's default of 100 per process let two Realtime replicas, with 1,000 clients connecting at once, take all
    /// of Postgres' 100 connections ("too many clients" in an end-to-end benchmark run); the Api would have been next.
    /// </param>
    public static TBuilder AddCoTeXDatabase<TBuilder>(this TBuilder builder, int maxPoolSize) where TBuilder : IHostApplicationBuilder
    {
        var configured = RequiredConnectionString(builder.Configuration, DatabaseConnectionName);
        var connectionString = new NpgsqlConnectionStringBuilder(configured);
        if (builder.Configuration.GetValue<int?>("Database:MaxPoolSize") is { } setting)
        {
            connectionString.MaxPoolSize = setting;
        }
        else if (!SetsMaxPoolSize(configured))
        {
            connectionString.MaxPoolSize = maxPoolSize;
        }
        builder.Services.AddNpgsqlDataSource(connectionString.ConnectionString);
        builder.Services.AddSingleton<DatabaseMigrator>();
        builder.Services.AddHealthChecks()
            .AddCheck<PostgresHealthCheck>("postgres", timeout: TimeSpan.FromSeconds(5))
            .AddCheck<MigrationsHealthCheck>("migrations", timeout: TimeSpan.FromSeconds(5));
        return builder;
    }

    /// <summary>Redis (<see cref="IConnectionMultiplexer"/>), reconnecting on its own, and its readiness check.</summary>
    public static TBuilder AddCoTeXRedis<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var options = ConfigurationOptions.Parse(RequiredConnectionString(builder.Configuration, RedisConnectionName));
        // Start even while Redis is down and keep retrying; /health reports it meanwhile.
        options.AbortOnConnectFail = false;
        // I/O on the .NET thread pool instead of StackExchange.Redis' own dedicated threads, whose spinning cost the
        // Api ~10% of its CPU under webhook load (docs/benchmarks.md).
        options.SocketManager = SocketManager.ThreadPool;
        builder.Services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(options));
        builder.Services.AddHealthChecks()
            .AddCheck<RedisHealthCheck>("redis", timeout: TimeSpan.FromSeconds(5));
        return builder;
    }

    // Npgsql accepts "Maximum Pool Size" and "MaxPoolSize", in any case.
    private static bool SetsMaxPoolSize(string connectionString) =>
        new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Select(key => key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant())
            .Any(key => key is "maximumpoolsize" or "maxpoolsize");

    private static string RequiredConnectionString(IConfiguration configuration, string name) =>
        configuration.GetConnectionString(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"The connection string '{name}' is not set. Set ConnectionStrings:{name} " +
                $"(environment variable ConnectionStrings__{name}); the Aspire AppHost and eng/run-local.sh both do.");
}
