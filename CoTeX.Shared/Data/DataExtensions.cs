using CoTeX.Shared.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using StackExchange.Redis;

namespace Microsoft.Extensions.Hosting;

public static class DataExtensions
{
    /// <summary>The connection names the AppHost's resources inject (<c>ConnectionStrings__cotexdb</c>, ...).</summary>
    public const string DatabaseConnectionName = "cotexdb";
    public const string RedisConnectionName = "redis";

    private static readonly TimeSpan HealthCheckTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Postgres through Aspire's Npgsql integration (<see cref="NpgsqlDataSource"/>, tracing, the Npgsql meter), with
    /// what it does not know: this service's pool cap and the readiness checks <c>postgres</c> and <c>migrations</c>.
    /// </summary>
    /// <param name="maxPoolSize">
    /// This service's share of the server's connections, unless the connection string sets <c>Maximum Pool Size</c>
    /// or <c>Database:MaxPoolSize</c> is set (which wins). Every service gets the same connection string, and
    /// Npgsql's default of 100 per process let two Realtime replicas, with 1,000 clients connecting at once, take all
    /// of Postgres' 100 connections ("too many clients" in an end-to-end benchmark run); the Api would have been next.
    /// </param>
    /// <param name="configureDataSource">More for the data source (e.g. what every new physical connection runs first).</param>
    public static TBuilder AddCoTeXDatabase<TBuilder>(this TBuilder builder, int maxPoolSize,
        Action<NpgsqlDataSourceBuilder>? configureDataSource = null) where TBuilder : IHostApplicationBuilder
    {
        var configuredCap = builder.Configuration.GetValue<int?>("Database:MaxPoolSize");
        builder.AddNpgsqlDataSource(DatabaseConnectionName, settings =>
        {
            settings.ConnectionString = WithPoolCap(settings.ConnectionString, configuredCap, maxPoolSize);
            // Registered below under the name /health has always used.
            settings.DisableHealthChecks = true;
        }, configureDataSource);
        builder.Services.AddSingleton<DatabaseMigrator>();
        builder.Services.AddHealthChecks()
            .AddNpgSql(sp => sp.GetRequiredService<NpgsqlDataSource>(), name: "postgres", timeout: HealthCheckTimeout)
            .AddCheck<MigrationsHealthCheck>("migrations", timeout: HealthCheckTimeout);
        return builder;
    }

    /// <summary>
    /// Redis through Aspire's StackExchange.Redis integration (<see cref="IConnectionMultiplexer"/>, reconnecting on
    /// its own), with its I/O on the .NET thread pool and the readiness check <c>redis</c>.
    /// </summary>
    public static TBuilder AddCoTeXRedis<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.AddRedisClient(RedisConnectionName,
            settings =>
            {
                settings.DisableHealthChecks = true;
                // The integration's per-command tracing (the OpenTelemetry Redis instrumentation it vendors) throws
                // ObjectDisposedException when a command runs after the tracer provider is disposed, which is what
                // SignalR's Redis backplane does while the host shuts down (fixed upstream in
                // opentelemetry-dotnet-contrib #4905, not in the copy Aspire 13.6.5 carries). It also profiles every
                // command. The one Redis operation worth a span, the live-event publish, gets its own (LiveEvents).
                settings.DisableTracing = true;
            },
            // StackExchange.Redis' own dedicated I/O threads spun and cost the Api ~10% of its CPU under webhook load
            // (docs/benchmarks.md). The integration already keeps retrying while Redis is down (AbortOnConnectFail).
            options => options.SocketManager = SocketManager.ThreadPool);
        builder.Services.AddHealthChecks()
            .AddRedis(sp => sp.GetRequiredService<IConnectionMultiplexer>(), name: "redis", timeout: HealthCheckTimeout);
        return builder;
    }

    private static string? WithPoolCap(string? connectionString, int? configuredCap, int serviceCap)
    {
        if (string.IsNullOrEmpty(connectionString))
        {
            return connectionString; // the integration names the missing setting
        }
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            // Npgsql otherwise resets a pooled connection's session state (RESET ALL, CLOSE ALL, UNLISTEN *, advisory
            // locks, DISCARD ...) before its next use: five statements before every ingest batch and catch-up page,
            // ~0.15 ms of Postgres each time. The services leave no session state behind (the migrator releases its
            // advisory lock itself).
            NoResetOnClose = true,
        };
        if (configuredCap is { } cap)
        {
            builder.MaxPoolSize = cap;
        }
        else if (!SetsMaxPoolSize(connectionString))
        {
            builder.MaxPoolSize = serviceCap;
        }
        return builder.ConnectionString;
    }

    // Npgsql accepts "Maximum Pool Size" and "MaxPoolSize", in any case.
    private static bool SetsMaxPoolSize(string connectionString) =>
        new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Select(key => key.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant())
            .Any(key => key is "maximumpoolsize" or "maxpoolsize");
}
