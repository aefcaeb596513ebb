// The Worker runs background jobs; its only HTTP surface is /health and /alive for the orchestrator.
var builder = WebApplication.CreateBuilder(args);

builder.AddWorkerDefaults();
builder.AddApplicationServices();

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
