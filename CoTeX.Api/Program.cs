using CoTeX.Api.Account;
using CoTeX.Api.Admin;
using CoTeX.Api.Billing;
using CoTeX.Api.GitHubApp;
using CoTeX.Api.GitHubEvents;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.Api.Repos;
using Scalar.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddApplicationServices();

var app = builder.Build();

app.UseForwardedHeaders();
app.UseServiceDefaults();
app.UseCors();
app.UseAuthentication();
app.UseAuthorization();

app.MapDefaultEndpoints();
app.MapOpenApi();
if (app.Environment.IsDevelopment())
{
    app.MapScalarApiReference();
}
app.MapReposApi();
app.MapGitHubEventsApi();
app.MapGitHubWebhooksApi();
app.MapGitHubAppApi();
app.MapGitHubAppWebhooksApi();
app.MapBillingApi();
app.MapStripeWebhooksApi();
app.MapAdminApi();
app.MapAccountApi();

app.Run();
