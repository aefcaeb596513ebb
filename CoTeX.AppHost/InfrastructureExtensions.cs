using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CoTeX.AppHost;

internal static class InfrastructureExtensions
{
    /// <summary>Postgres (database <c>cotexdb</c>) and Redis as containers, with data volumes when run locally.</summary>
    public static (IResourceBuilder<IResourceWithConnectionString> Database, IResourceBuilder<IResourceWithConnectionString> Redis)
        AddContainerInfrastructure(this IDistributedApplicationBuilder builder)
    {
        var postgres = builder.AddPostgres("postgres");
        var redis = builder.AddRedis("redis");
        if (builder.ExecutionContext.IsRunMode)
        {
            postgres.WithDataVolume();
            redis.WithDataVolume();
        }
        return (postgres.AddDatabase("cotexdb"), redis);
    }

    /// <summary>
    /// Postgres and Redis as executable resources started from local binaries by eng/run-local.sh (which creates the
    /// cluster on first use, under .data/), with TCP readiness checks so dependents wait until they accept connections.
    /// Ports: COTEX_PG_PORT (55432) and COTEX_REDIS_PORT (56379), as for the script.
    /// </summary>
    public static (IResourceBuilder<IResourceWithConnectionString> Database, IResourceBuilder<IResourceWithConnectionString> Redis)
        AddLocalBinaryInfrastructure(this IDistributedApplicationBuilder builder)
    {
        var repoRoot = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));
        var pgPort = builder.Configuration["COTEX_PG_PORT"] ?? "55432";
        var redisPort = builder.Configuration["COTEX_REDIS_PORT"] ?? "56379";

        var postgres = builder.AddExecutable("postgres", "bash", repoRoot, "eng/run-local.sh", "postgres")
            .WithEnvironment("COTEX_PG_PORT", pgPort)
            .WithHealthCheck(builder.AddTcpCheck("postgres-accepts", int.Parse(pgPort)));
        var redisServer = builder.AddExecutable("redis-server", "bash", repoRoot, "eng/run-local.sh", "redis")
            .WithEnvironment("COTEX_REDIS_PORT", redisPort)
            .WithHealthCheck(builder.AddTcpCheck("redis-accepts", int.Parse(redisPort)));

        var database = builder.AddConnectionString("cotexdb",
                ReferenceExpression.Create($"Host=127.0.0.1;Port={pgPort};Username=postgres;Database=cotexdb"))
            .WaitFor(postgres);
        var redis = builder.AddConnectionString("redis", ReferenceExpression.Create($"127.0.0.1:{redisPort}"))
            .WaitFor(redisServer);
        return (database, redis);
    }

    private static string AddTcpCheck(this IDistributedApplicationBuilder builder, string name, int port)
    {
        builder.Services.AddHealthChecks().AddAsyncCheck(name, async cancellationToken =>
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port, cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (SocketException ex)
            {
                return HealthCheckResult.Unhealthy($"127.0.0.1:{port} refuses connections", ex);
            }
        });
        return name;
    }
}
