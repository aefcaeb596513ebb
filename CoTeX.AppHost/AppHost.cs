using CoTeX.AppHost;
using CoTeX.AppHost.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

var builder = DistributedApplication.CreateBuilder(args);

// Postgres (database cotexdb) and Redis: containers where a runtime answers and in deployments, this machine's
// postgres and redis-server otherwise (CoTeX:Infrastructure = Auto | Containers | LocalBinaries).
var (cotexdb, redis) = builder.AddCoTeXInfrastructure();

// Secrets and deployment settings, as parameters (Parameters:<name>): the one map of them is ServiceSettings
// (Parameters.cs); .WithSettings gives each service the ones it reads.
var parameters = CoTeXParameters.Add(builder);

// Schema first: every service waits for the migration step to finish.
var migrations = builder.AddProject<Projects.CoTeX_MigrationService>("migrations")
    .WithReference(cotexdb)
    .WaitFor(cotexdb);

// The REST API and the webhook receivers (GitHub's, the GitHub App's, Stripe's): GitHub, Stripe and desktop clients
// call it from outside.
var api = builder.AddProject<Projects.CoTeX_Api>("api")
    .WithReference(cotexdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WaitForCompletion(migrations)
    .WithSettings(parameters, CoTeXService.Api)
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health")
    .WithDeveloperCommands(parameters[ServiceSettings.JwtSecret]);
if (builder.ExecutionContext.IsPublishMode)
{
    // Deployed, every request reaches the Api from the platform's ingress (Container Apps' Envoy), whose address is in
    // private space: trust it to name the client in X-Forwarded-For, or the per-address webhook limit would count every
    // sender, GitHub included, as one. Nothing on the internet can connect from these ranges. Narrow it to the
    // environment's infrastructure subnet when it is known (README, "Webhook receivers").
    string[] privateRanges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];
    for (var i = 0; i < privateRanges.Length; i++)
    {
        api.WithEnvironment($"Api__TrustedProxies__{i}", privateRanges[i]);
    }
}

// The SignalR hub for desktop clients, scaled out through the Redis backplane.
builder.AddProject<Projects.CoTeX_Realtime>("realtime")
    .WithReplicas(2)
    .WithReference(cotexdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WaitForCompletion(migrations)
    .WithSettings(parameters, CoTeXService.Realtime)
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health");

// Background jobs (retention, Stripe reconciliation, GitHub App re-checks and redelivery); internal only.
builder.AddProject<Projects.CoTeX_Worker>("worker")
    .WithReference(cotexdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WaitForCompletion(migrations)
    .WithSettings(parameters, CoTeXService.Worker)
    .WithHttpHealthCheck("/health");

if (builder.ExecutionContext.IsRunMode)
{
    // Services first, then Postgres and Redis, when the AppHost stops (Ctrl-C, SIGTERM).
    builder.Services.AddHostedService<OrderedShutdown>();
    // The services serve plain HTTP on loopback (in a deployment TLS ends at the ingress): no development certificate,
    // and no "no trusted development certificate" alarm on a machine without one. (An evaluation API in Aspire 13.6.)
#pragma warning disable ASPIRECERTIFICATES001
    foreach (var project in builder.Resources.OfType<ProjectResource>())
    {
        builder.CreateResourceBuilder(project).WithoutHttpsCertificate();
    }
#pragma warning restore ASPIRECERTIFICATES001
}

builder.Build().Run();
