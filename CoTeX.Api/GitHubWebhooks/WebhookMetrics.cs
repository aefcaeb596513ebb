using System.Diagnostics.Metrics;
using CoTeX.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// <c>cotex.github.webhooks</c>: GitHub deliveries by outcome (<c>stored</c>, <c>duplicate</c>, <c>rejected</c>, and
/// for the GitHub App's also <c>applied</c>, <c>no followers</c>, <c>ignored</c>, <c>pong</c>) and response status.
/// An endpoint filter on the receivers, so every way out of a handler is counted, thrown errors included (the rate
/// limiter's 429s come before it and are in ASP.NET Core's own rate-limiting metrics).
/// <para>
/// One instance, added with <see cref="WebhookMetricsExtensions.AddWebhookMetrics"/>: a filter added by type is
/// created for every request, and creating the counter each time took <c>IMeterFactory</c>'s lock on every delivery
/// (a profile under ingest, docs/benchmarks.md).
/// </para>
/// </summary>
public sealed class WebhookMetrics(IMeterFactory meters) : IEndpointFilter
{
    private readonly Counter<long> _deliveries = meters.Create(CoTeXTelemetry.Name).CreateCounter<long>(
        "cotex.github.webhooks", "{delivery}", "GitHub webhook deliveries by outcome (stored, duplicate, rejected)");

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        object? result;
        try
        {
            result = await next(context);
        }
        catch (Exception ex)
        {
            Add("rejected", ex is ServiceDefaults.ServiceUnavailableException || ServiceDefaults.ProblemExceptionHandler.IsDatabaseUnavailable(ex) ? 503 : 500);
            throw;
        }
        switch (result is INestedHttpResult nested ? nested.Result : result)
        {
            case IValueHttpResult { Value: IWebhookAnswer accepted }:
                Add(accepted.Status, StatusCodes.Status200OK);
                break;
            case IStatusCodeHttpResult { StatusCode: { } status }:
                Add("rejected", status);
                break;
        }
        return result;
    }

    private void Add(string outcome, int status) =>
        _deliveries.Add(1, new KeyValuePair<string, object?>("outcome", outcome),
            new KeyValuePair<string, object?>("http.response.status_code", status));
}

public static class WebhookMetricsExtensions
{
    public static TBuilder AddWebhookMetrics<TBuilder>(this TBuilder builder, IEndpointRouteBuilder app)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(app.ServiceProvider.GetRequiredService<WebhookMetrics>());
}

/// <summary>A receiver's 200 answer: <see cref="Status"/> is the delivery's outcome, counted by <see cref="WebhookMetrics"/>.</summary>
public interface IWebhookAnswer
{
    string Status { get; }
}
