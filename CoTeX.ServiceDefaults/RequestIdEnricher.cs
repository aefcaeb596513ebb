using Microsoft.AspNetCore.Http;
using Serilog.Core;
using Serilog.Events;

namespace CoTeX.ServiceDefaults;

/// <summary>
/// Stamps every log event written during a request with <c>RequestId</c> = the request's
/// <see cref="HttpContext.TraceIdentifier"/>, which <see cref="RequestIdMiddleware"/> set from <c>X-Request-Id</c>.
/// It overrides the hosting scope's own RequestId, which is captured before any middleware runs.
/// </summary>
internal sealed class RequestIdEnricher(IHttpContextAccessor accessor) : ILogEventEnricher
{
    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        if (accessor.HttpContext is { } context)
        {
            logEvent.AddOrUpdateProperty(propertyFactory.CreateProperty("RequestId", context.TraceIdentifier));
        }
    }
}
