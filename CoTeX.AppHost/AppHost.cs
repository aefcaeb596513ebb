using CoTeX.AppHost;

var builder = DistributedApplication.CreateBuilder(args);

// Infrastructure: containers by default; local postgres/redis-server binaries where no container runtime exists
// (dotnet run -- --CoTeX:UseLocalBinaries=true, or CoTeX__UseLocalBinaries=true).
var (cotexdb, redis) = builder.Configuration.GetValue<bool>("CoTeX:UseLocalBinaries")
    ? builder.AddLocalBinaryInfrastructure()
    : builder.AddContainerInfrastructure();

// Schema first: every service waits for the migration step to finish.
var migrations = builder.AddProject<Projects.CoTeX_MigrationService>("migrations")
    .WithReference(cotexdb)
    .WaitFor(cotexdb);

// The REST API and both webhook receivers: GitHub and Stripe call it from outside.
builder.AddProject<Projects.CoTeX_Api>("api")
    .WithReference(cotexdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WaitForCompletion(migrations)
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health");

// The SignalR hub for desktop clients, scaled out through the Redis backplane.
builder.AddProject<Projects.CoTeX_Realtime>("realtime")
    .WithReplicas(2)
    .WithReference(cotexdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WaitForCompletion(migrations)
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/health");

// Background jobs (retention, Stripe reconciliation); internal only.
builder.AddProject<Projects.CoTeX_Worker>("worker")
    .WithReference(cotexdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WaitForCompletion(migrations)
    .WithHttpHealthCheck("/health");

builder.Build().Run();
