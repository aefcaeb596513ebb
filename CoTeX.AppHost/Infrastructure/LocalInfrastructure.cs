using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.AppHost.Infrastructure;

/// <summary>
/// Postgres and Redis from this machine's binaries (<c>eng/local-infra.sh</c>), for machines without a container
/// runtime. The resources have the container resources' names and connection strings, so everything downstream is
/// the same in both modes.
/// <list type="bullet">
/// <item><c>CoTeX:DataDirectory</c> (default <c>.data</c> in the repository): the Postgres cluster and Redis'
/// append-only file, kept across runs.</item>
/// <item><c>CoTeX:PostgresPort</c> (55432) and <c>CoTeX:RedisPort</c> (56379): loopback ports, fixed so that psql
/// and redis-cli find the servers from one run to the next.</item>
/// </list>
/// </summary>
internal static class LocalInfrastructure
{
    public static (IResourceBuilder<IResourceWithConnectionString> Database, IResourceBuilder<IResourceWithConnectionString> Redis)
        AddLocalInfrastructure(this IDistributedApplicationBuilder builder)
    {
        var repoRoot = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));
        var dataDirectory = Path.GetFullPath(builder.Configuration["CoTeX:DataDirectory"] ?? ".data", repoRoot);
        var postgresPort = builder.Configuration.GetValue("CoTeX:PostgresPort", 55432);
        var redisPort = builder.Configuration.GetValue("CoTeX:RedisPort", 56379);

        var postgres = builder.AddResource(new LocalPostgresResource("postgres", repoRoot))
            .WithServer("postgres", dataDirectory, postgresPort, "COTEX_PG_PORT")
            .WithIconName("DatabaseMultiple");
        builder.Services.AddHealthChecks().AddNpgSql(
            $"Host=127.0.0.1;Port={postgresPort};Username=postgres;Database=postgres;Timeout=3;Pooling=false",
            name: "postgres-accepts-queries");
        postgres.WithHealthCheck("postgres-accepts-queries");

        var redis = builder.AddResource(new LocalRedisResource("redis", repoRoot))
            .WithServer("redis", dataDirectory, redisPort, "COTEX_REDIS_PORT")
            .WithIconName("Memory");
        builder.Services.AddHealthChecks().AddRedis($"127.0.0.1:{redisPort},abortConnect=false", name: "redis-answers-ping");
        redis.WithHealthCheck("redis-answers-ping");

        // The database itself is created by the migration step (CoTeX.MigrationService) on first run.
        var database = builder.AddConnectionString(InfrastructureExtensions.DatabaseName,
                ReferenceExpression.Create($"{postgres.Resource};Database={InfrastructureExtensions.DatabaseName}"))
            .WaitFor(postgres);
        return (database, redis);
    }

    private static IResourceBuilder<T> WithServer<T>(this IResourceBuilder<T> server, string which, string dataDirectory,
        int port, string portVariable) where T : ExecutableResource =>
        server.WithArgs("eng/local-infra.sh", which)
            .WithEnvironment("COTEX_DATA_DIR", dataDirectory)
            // Not proxied: the server itself listens on the port, which stays the same from run to run.
            .WithEndpoint(port: port, scheme: "tcp", name: LocalServer.EndpointName, env: portVariable, isProxied: false);
}

internal static class LocalServer
{
    public const string EndpointName = "tcp";
}

/// <summary><c>eng/local-infra.sh postgres</c>: a Postgres server on loopback, trusted local connections.</summary>
public sealed class LocalPostgresResource(string name, string repoRoot)
    : ExecutableResource(name, "bash", repoRoot), IResourceWithConnectionString
{
    public EndpointReference Endpoint => new(this, LocalServer.EndpointName);

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"Host=127.0.0.1;Port={Endpoint.Property(EndpointProperty.Port)};Username=postgres");
}

/// <summary><c>eng/local-infra.sh redis</c>: a Redis server on loopback with an append-only file.</summary>
public sealed class LocalRedisResource(string name, string repoRoot)
    : ExecutableResource(name, "bash", repoRoot), IResourceWithConnectionString
{
    public EndpointReference Endpoint => new(this, LocalServer.EndpointName);

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"127.0.0.1:{Endpoint.Property(EndpointProperty.Port)}");
}
