using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace CoTeX.ServiceDefaults;

/// <summary>
/// The last writer the ProblemDetails service tries, for a client whose <c>Accept</c> header rules JSON out (a browser
/// opening an API URL sends <c>text/html</c>): the same status, with a short plain-text body such as
/// <c>401 Unauthorized: The token has expired.</c> Every error the services write goes through the ProblemDetails
/// service (endpoint results, the authentication challenge, the exception handler, the status-code pages), so with
/// this writer registered after the JSON one, no error depends on the Accept header for its status.
/// </summary>
internal sealed class PlainTextProblemWriter : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => true;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        var response = context.HttpContext.Response;
        var status = problem.Status ?? response.StatusCode;
        var title = string.IsNullOrEmpty(problem.Title) ? ReasonPhrases.GetReasonPhrase(status) : problem.Title;
        response.ContentType = "text/plain; charset=utf-8";
        return new ValueTask(response.WriteAsync(
            string.IsNullOrEmpty(problem.Detail) ? $"{status} {title}\n" : $"{status} {title}: {problem.Detail}\n"));
    }
}
