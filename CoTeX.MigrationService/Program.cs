using CoTeX.MigrationService;

// Applies the database migrations once, then exits (0 when they are applied, 1 when they failed). The AppHost runs it
// before the services, which wait for it to finish.
var builder = Host.CreateApplicationBuilder(args);
builder.AddWorkerDefaults();
builder.AddCoTeXDatabase(maxPoolSize: 2);
builder.Services.AddHostedService<MigrationWorker>();

builder.Build().Run();
