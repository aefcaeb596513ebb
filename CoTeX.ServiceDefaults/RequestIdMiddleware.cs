using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace CoTeX.ServiceDefaults;

/// <summary>
/// Accepts the caller's <c>X-Request-Id</c> when it is a sane token, or makes one, and makes it the request's
/// <see cref="HttpContext.TraceIdentifier"/> (which <see cref="RequestIdEnricher"/> puts on every log line of the
/// request) and a response header. Unusable ids (too long, odd characters) are replaced, never echoed.
/// </summary>
public sealed class RequestIdMiddleware(RequestDelegate next)
{
    public const string HeaderName = "X-Request-Id";
    private const int MaxLength = 128;
    private static readonly SearchValues<char> Allowed =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:");

    public Task InvokeAsync(HttpContext context)
    {
        var requestId = context.Request.Headers[HeaderName] is { Count: 1 } values && IsUsable(values[0])
            ? values[0]!
            : Guid.NewGuid().ToString("N");

        context.TraceIdentifier = requestId;
        context.Response.OnStarting(() =>
        {
            context.Response.Headers[HeaderName] = requestId;
            return Task.CompletedTask;
        });

        return next(context);
    }

    private static bool IsUsable(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= MaxLength && !value.AsSpan().ContainsAnyExcept(Allowed);
}
