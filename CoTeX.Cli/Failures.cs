using System.Net;
using System.Text.Json;
using CoTeX.Client;

namespace CoTeX.Cli;

/// <summary>The exit codes of <c>cotex</c>, listed in <c>cotex --help</c>.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Unexpected = 1;
    public const int Usage = 2;
    public const int TokenRejected = 3;
    public const int PlanLimit = 4;
    public const int Refused = 5;
    public const int Unavailable = 6;

    public const string Help = """
        Exit codes:
          0  done
          1  unexpected error (please report it)
          2  usage or configuration: a missing COTEX_TOKEN, a malformed URL or argument
          3  the token was rejected or has expired: mint a new one, or see Token below
          4  the plan's repo limit is reached
          5  CoTeX refused the request (not found, already tracked, not allowed)
          6  CoTeX cannot be reached or is unavailable: retry later
        """;
}

/// <summary>A setting the user has to fix (COTEX_TOKEN, COTEX_API_URL).</summary>
internal sealed class ConfigurationException(string message) : Exception(message);

/// <summary>Turns what went wrong into one line a user can act on, and the exit code that goes with it.</summary>
internal static class Failures
{
    public static (int ExitCode, string Message) Describe(Exception exception, string apiUrl) => exception switch
    {
        ConfigurationException or UriFormatException => (ExitCodes.Usage, exception.Message),
        TokenExpiredException => (ExitCodes.TokenRejected, exception.Message),
        CoTeXApiException api => Describe(api),
        HttpRequestException { StatusCode: null } http =>
            (ExitCodes.Unavailable, $"Cannot reach CoTeX at {apiUrl}: {http.Message} Is it running (dotnet run --project CoTeX.AppHost)? COTEX_API_URL points elsewhere."),
        TaskCanceledException or TimeoutException =>
            (ExitCodes.Unavailable, $"CoTeX at {apiUrl} did not answer in time; try again."),
        _ => (ExitCodes.Unexpected, $"Unexpected error: {exception.GetType().Name}: {exception.Message}"),
    };

    private static (int, string) Describe(CoTeXApiException exception)
    {
        var (title, detail) = Problem(exception.Problem);
        var what = string.IsNullOrEmpty(detail) ? title : $"{title}: {detail}";
        return exception.Status switch
        {
            HttpStatusCode.Unauthorized => (ExitCodes.TokenRejected,
                $"CoTeX rejected the token ({detail ?? "unauthorized"}). Mint a new one (locally: export COTEX_TOKEN=$(eng/mint-token.sh)) or set COTEX_TOKEN."),
            HttpStatusCode.Forbidden when title == "Repo limit reached" => (ExitCodes.PlanLimit,
                $"{what} Upgrade to Pro in the CoTeX app, or make room: cotex repos list, cotex repos remove <repo-id>."),
            HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError => (ExitCodes.Unavailable,
                $"CoTeX is unavailable ({(int)exception.Status}): {what} Try again later."),
            _ => (ExitCodes.Refused, what),
        };
    }

    /// <summary>The title and detail of a ProblemDetails body (or the body itself when it is not one).</summary>
    private static (string Title, string? Detail) Problem(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            string? Text(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var value)
                && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            return (Text("title") ?? "Refused", Text("detail"));
        }
        catch (JsonException)
        {
            return (body.Trim(), null);
        }
    }
}
