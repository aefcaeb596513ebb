using CoTeX.Api.Billing;
using CoTeX.Api.GitHubEvents;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Api.Repos;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddApplicationServices();

var app = builder.Build();

app.UseServiceDefaults();
app.UseAuthentication();
app.UseAuthorization();

app.MapDefaultEndpoints();
app.MapReposApi();
app.MapGitHubEventsApi();
app.MapGitHubWebhooksApi();
app.MapBillingApi();
app.MapStripeWebhooksApi();

app.Run();
