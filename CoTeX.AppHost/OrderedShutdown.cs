using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CoTeX.AppHost;

/// <summary>
/// Stops the application in dependency order when the AppHost stops (Ctrl-C, SIGTERM, a test disposing it): first
/// the services, which finish the work they accepted while Postgres and Redis are still there, then the
/// infrastructure, so Postgres ends with a clean shutdown checkpoint and Redis with its append-only file flushed.
/// Left to itself the orchestrator stops every resource at once. Registered after Aspire's own hosted services, it
/// stops before the orchestrator does (hosted services stop in reverse order).
/// </summary>
internal sealed partial class OrderedShutdown(
    DistributedApplicationModel model,
    ResourceCommandService commands,
    ILogger<OrderedShutdown> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Postgres and Redis are the processes that other resources connect to.
        var infrastructure = model.Resources.OfType<IResourceWithConnectionString>().Select(r => r.Name).ToHashSet();
        var processes = model.Resources.Where(r => r is ProjectResource or ExecutableResource or ContainerResource).ToList();
        var stopwatch = Stopwatch.StartNew();
        await StopAsync(processes.Where(r => !infrastructure.Contains(r.Name)), cancellationToken);
        var services = stopwatch.Elapsed;
        await StopAsync(processes.Where(r => infrastructure.Contains(r.Name)), cancellationToken);
        LogStopped(logger, services.TotalSeconds, (stopwatch.Elapsed - services).TotalSeconds);
    }

    private async Task StopAsync(IEnumerable<IResource> resources, CancellationToken cancellationToken) =>
        await Task.WhenAll(resources.Select(async resource =>
        {
            try
            {
                var result = await commands.ExecuteCommandAsync(resource, KnownResourceCommands.StopCommand, cancellationToken);
                if (!result.Success)
                {
                    // E.g. the migration step, which has finished already.
                    LogNotStopped(logger, resource.Name, result.Message);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException)
            {
                LogStopFailed(logger, resource.Name, ex.Message);
            }
        }));

    [LoggerMessage(LogLevel.Information, "Stopped the services in {ServicesSeconds:0.0} s, then Postgres and Redis in {InfrastructureSeconds:0.0} s")]
    private static partial void LogStopped(ILogger logger, double servicesSeconds, double infrastructureSeconds);

    [LoggerMessage(LogLevel.Debug, "{Resource} was not stopped: {Reason}")]
    private static partial void LogNotStopped(ILogger logger, string resource, string? reason);

    [LoggerMessage(LogLevel.Warning, "Could not stop {Resource} in order: {Reason}")]
    private static partial void LogStopFailed(ILogger logger, string resource, string? reason);
}
