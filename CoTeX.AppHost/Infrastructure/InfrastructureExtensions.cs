using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CoTeX.AppHost.Infrastructure;

/// <summary>Where Postgres and Redis come from in a local run (<c>CoTeX:Infrastructure</c>).</summary>
public enum InfrastructureMode
{
    /// <summary>Containers when a container runtime answers, this machine's binaries otherwise.</summary>
    Auto,
    Containers,
    LocalBinaries,
}

internal static class InfrastructureExtensions
{
    public const string ModeSetting = "CoTeX:Infrastructure";

    /// <summary>
    /// Postgres (with the database <c>cotexdb</c>) and Redis (<c>redis</c>), the connection names the services read.
    /// A deployment (publish mode) always gets the container resources, which azd turns into Azure Container Apps.
    /// A local run uses containers where a runtime answers and this machine's binaries otherwise; the setting
    /// <c>CoTeX:Infrastructure</c> (Auto, Containers, LocalBinaries) overrides the choice, and the log says which it is.
    /// </summary>
    public static (IResourceBuilder<IResourceWithConnectionString> Database, IResourceBuilder<IResourceWithConnectionString> Redis)
        AddCoTeXInfrastructure(this IDistributedApplicationBuilder builder)
    {
        var (useContainers, reason) = ChooseContainers(builder);
        builder.Eventing.Subscribe<BeforeStartEvent>((e, _) =>
        {
            e.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CoTeX.AppHost")
                .LogInformation("Postgres and Redis: {Source} ({Reason}; set {Setting} to Containers or LocalBinaries to choose)",
                    useContainers ? "containers" : "local binaries", reason, ModeSetting);
            return Task.CompletedTask;
        });
        return useContainers ? builder.AddContainerInfrastructure()
            : builder.AddLocalInfrastructure(LocalInfrastructureOptions.FromConfiguration(builder));
    }

    private static (bool UseContainers, string Reason) ChooseContainers(IDistributedApplicationBuilder builder)
    {
        if (builder.ExecutionContext.IsPublishMode)
        {
            return (true, "publishing");
        }
        var mode = builder.Configuration.GetValue(ModeSetting, InfrastructureMode.Auto);
        if (mode != InfrastructureMode.Auto)
        {
            return (mode == InfrastructureMode.Containers, $"{ModeSetting}={mode}");
        }
        var runtime = ContainerRuntime.Probe(builder.Configuration);
        return (runtime.Answers, runtime.Description);
    }

    /// <summary>Postgres and Redis containers, with data volumes in a local run.</summary>
    private static (IResourceBuilder<IResourceWithConnectionString>, IResourceBuilder<IResourceWithConnectionString>)
        AddContainerInfrastructure(this IDistributedApplicationBuilder builder)
    {
        var postgres = builder.AddPostgres("postgres");
        var redis = builder.AddRedis("redis");
        if (builder.ExecutionContext.IsRunMode)
        {
            postgres.WithDataVolume();
            redis.WithDataVolume();
        }
        return (postgres.AddDatabase(DatabaseName), redis);
    }

    public const string DatabaseName = "cotexdb";
}
