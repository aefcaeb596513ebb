using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.AppHost.Infrastructure;

/// <summary>
/// Where and how this machine's Postgres and Redis run (<c>eng/local-infra.sh</c>). The AppHost reads them from its
/// configuration (<see cref="FromConfiguration"/>); the tests and the benchmark tool give their own (free ports, a
/// temporary folder, no fsync) to <see cref="LocalServers"/>.
/// </summary>
public sealed record LocalInfrastructureOptions
{
    /// <summary>The Postgres cluster and Redis' append-only file, kept across runs.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Loopback ports, fixed so that psql and redis-cli find the servers from one run to the next.</summary>
    public int PostgresPort { get; init; } = 55432;
    public int RedisPort { get; init; } = 56379;

    /// <summary>More server arguments (<c>-c name=value</c> for Postgres, <c>--name value</c> for Redis).</summary>
    public IReadOnlyList<string> PostgresArguments { get; init; } = [];
    public IReadOnlyList<string> RedisArguments { get; init; } = [];

    /// <summary>
    /// <c>CoTeX:DataDirectory</c> (default <c>.data</c> in the repository), <c>CoTeX:PostgresPort</c> (55432) and
    /// <c>CoTeX:RedisPort</c> (56379).
    /// </summary>
    public static LocalInfrastructureOptions FromConfiguration(IDistributedApplicationBuilder builder) => new()
    {
        DataDirectory = Path.GetFullPath(builder.Configuration["CoTeX:DataDirectory"] ?? ".data", LocalInfrastructure.RepositoryRoot(builder)),
        PostgresPort = builder.Configuration.GetValue("CoTeX:PostgresPort", 55432),
        RedisPort = builder.Configuration.GetValue("CoTeX:RedisPort", 56379),
    };
}

/// <summary>
/// Postgres and Redis from this machine's binaries (<c>eng/local-infra.sh</c>), for machines without a container
/// runtime, and for the tests and the benchmark tool (<see cref="LocalServers"/>). The resources have the container
/// resources' names and connection strings, so everything downstream is the same in both modes.
/// </summary>
public static class LocalInfrastructure
{
    public const string Postgres = "postgres";
    public const string Redis = "redis";

    public static (IResourceBuilder<IResourceWithConnectionString> Database, IResourceBuilder<IResourceWithConnectionString> Redis)
        AddLocalInfrastructure(this IDistributedApplicationBuilder builder, LocalInfrastructureOptions options)
    {
        var repoRoot = RepositoryRoot(builder);

        var postgres = builder.AddResource(new LocalPostgresResource(Postgres, repoRoot))
            .WithServer(Postgres, options.DataDirectory, options.PostgresPort, "COTEX_PG_PORT", options.PostgresArguments)
            .WithIconName("DatabaseMultiple");
        builder.Services.AddHealthChecks().AddNpgSql(
            $"Host=127.0.0.1;Port={options.PostgresPort};Username=postgres;Database=postgres;Timeout=3;Pooling=false",
            name: "postgres-accepts-queries");
        postgres.WithHealthCheck("postgres-accepts-queries");

        var redis = builder.AddResource(new LocalRedisResource(Redis, repoRoot))
            .WithServer(Redis, options.DataDirectory, options.RedisPort, "COTEX_REDIS_PORT", options.RedisArguments)
            .WithIconName("Memory");
        builder.Services.AddHealthChecks().AddRedis($"127.0.0.1:{options.RedisPort},abortConnect=false", name: "redis-answers-ping");
        redis.WithHealthCheck("redis-answers-ping");

        // The database itself is created by the migration step (CoTeX.MigrationService) on first run.
        var database = builder.AddConnectionString(InfrastructureExtensions.DatabaseName,
                ReferenceExpression.Create($"{postgres.Resource};Database={InfrastructureExtensions.DatabaseName}"))
            .WaitFor(postgres);
        return (database, redis);
    }

    /// <summary>The repository (the AppHost's parent folder), where <c>eng/local-infra.sh</c> is.</summary>
    internal static string RepositoryRoot(IDistributedApplicationBuilder builder) =>
        Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));

    private static IResourceBuilder<T> WithServer<T>(this IResourceBuilder<T> server, string which, string dataDirectory,
        int port, string portVariable, IReadOnlyList<string> arguments) where T : ExecutableResource =>
        server.WithArgs(["eng/local-infra.sh", which, .. arguments])
            .WithEnvironment("COTEX_DATA_DIR", dataDirectory)
            // Not proxied: the server itself listens on the port, which stays the same from run to run.
            .WithEndpoint(port: port, scheme: "tcp", name: LocalServerEndpoint.Name, env: portVariable, isProxied: false);
}

internal static class LocalServerEndpoint
{
    public const string Name = "tcp";
}

/// <summary><c>eng/local-infra.sh postgres</c>: a Postgres server on loopback, trusted local connections.</summary>
public sealed class LocalPostgresResource(string name, string repoRoot)
    : ExecutableResource(name, "bash", repoRoot), IResourceWithConnectionString
{
    public EndpointReference Endpoint => new(this, LocalServerEndpoint.Name);

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"Host=127.0.0.1;Port={Endpoint.Property(EndpointProperty.Port)};Username=postgres");
}

/// <summary><c>eng/local-infra.sh redis</c>: a Redis server on loopback with an append-only file.</summary>
public sealed class LocalRedisResource(string name, string repoRoot)
    : ExecutableResource(name, "bash", repoRoot), IResourceWithConnectionString
{
    public EndpointReference Endpoint => new(this, LocalServerEndpoint.Name);

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"127.0.0.1:{Endpoint.Property(EndpointProperty.Port)}");
}
