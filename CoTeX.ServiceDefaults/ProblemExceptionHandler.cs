using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CoTeX.ServiceDefaults;

/// <summary>
/// Turns the exceptions a client can do something about into ProblemDetails: a request the framework could not
/// read (bad JSON, wrong content type, body too large) keeps its 4xx and says why; a database that cannot be reached,
/// or a <see cref="ServiceUnavailableException"/> (also inside another, as ASP.NET Data Protection wraps what its key
/// repository throws in a CryptographicException), is a 503 with <c>Retry-After</c>, so callers such as GitHub and
/// Stripe redeliver later. Anything else stays a 500.
/// </summary>
public sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger)
    : IExceptionHandler
{
    public const int RetryAfterSeconds = 5;

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, title, detail) = exception switch
        {
            BadHttpRequestException bad => (bad.StatusCode, "Bad request", bad.Message),
            _ when Find<ServiceUnavailableException>(exception) is { } unavailable =>
                (StatusCodes.Status503ServiceUnavailable, "Service unavailable", unavailable.Message),
            _ when IsDatabaseUnavailable(exception) => (StatusCodes.Status503ServiceUnavailable, "Service unavailable",
                "The database is unavailable; nothing was changed. Retry later."),
            _ => (0, null, null),
        };
        if (status == 0)
        {
            return false;
        }

        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            LogDatabaseUnavailable(logger, exception.GetType().Name, exception.Message);
            context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        context.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }

    private static T? Find<T>(Exception exception) where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }
        return null;
    }

    /// <summary>Connection failures, timeouts and server shutdowns: not a fault of the request, worth a retry.</summary>
    public static bool IsDatabaseUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException npgsql && (npgsql.IsTransient || npgsql is not PostgresException))
            {
                return true;
            }
        }
        return false;
    }

    [LoggerMessage(LogLevel.Warning, "Database unavailable, answering 503: {ExceptionType}: {ExceptionMessage}")]
    private static partial void LogDatabaseUnavailable(ILogger logger, string exceptionType, string exceptionMessage);
}
