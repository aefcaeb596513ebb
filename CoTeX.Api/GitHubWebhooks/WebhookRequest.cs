using System.Text;
using CoTeX.Api.WebhookIngress;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// What the two GitHub receivers (a repo's webhook, the GitHub App's) read from a request, with the same checks and
/// the same answers: the body fits (413) in the unverified budget (503), then, after the caller has checked the signature, GitHub's headers are there
/// (400) and the body is JSON or GitHub's form encoding (415/400).
/// </summary>
internal static partial class WebhookRequest
{
    public const string EventHeader = "X-GitHub-Event";
    public const string DeliveryHeader = "X-GitHub-Delivery";

    /// <summary>
    /// The whole body, unverified and held within the process's budget (<see cref="UnverifiedBody"/>), or a 413 as
    /// soon as it passes GitHub's size limit, a 503 when the budget is full, a 408 when it trickles. The caller checks
    /// the signature on it before anything parses it, and disposes it.
    /// </summary>
    public static Task<(UnverifiedBody? Body, ProblemHttpResult? Problem)> ReadBodyAsync(HttpContext context, CancellationToken cancellationToken) =>
        UnverifiedBody.ReadAsync(context, GitHubWebhookOptions.MaxBodyBytes,
            $"Webhook bodies are limited to {GitHubWebhookOptions.MaxBodyBytes / (1024 * 1024)} MB, as on GitHub.", cancellationToken);

    /// <summary>Exactly one of each header, shaped as GitHub sends them (event names snake_case words, delivery ids GUIDs).</summary>
    public static (string EventType, string DeliveryId, ProblemHttpResult? Problem) Headers(IHeaderDictionary headers)
    {
        var eventType = SingleHeader(headers, EventHeader);
        var deliveryId = SingleHeader(headers, DeliveryHeader);
        if (eventType is null || !EventTypePattern().IsMatch(eventType))
        {
            return ("", "", Problem(StatusCodes.Status400BadRequest, "Missing event type",
                $"Exactly one {EventHeader} header is required, an event name such as push (GitHub always sends it)."));
        }
        if (deliveryId is null || !DeliveryIdPattern().IsMatch(deliveryId))
        {
            return ("", "", Problem(StatusCodes.Status400BadRequest, "Missing delivery id",
                $"Exactly one {DeliveryHeader} header is required: up to 100 letters, digits, '-', '_' or '.'."));
        }
        return (eventType, deliveryId, null);
    }

    /// <summary>The payload's JSON: the body itself, or the <c>payload</c> field of GitHub's form encoding.</summary>
    public static async Task<(byte[] Json, ProblemHttpResult? Problem)> PayloadAsync(string? contentType, byte[] body)
    {
        MediaTypeHeaderValue.TryParse(contentType, out var mediaType);
        var type = mediaType?.MediaType.Value?.ToLowerInvariant();
        if (type is null or "application/json" || type.EndsWith("+json", StringComparison.Ordinal))
        {
            // Stored as delivered and served as JSON text later: it must be UTF-8 (RFC 8259), as GitHub sends it.
            return System.Text.Unicode.Utf8.IsValid(body)
                ? (body, null)
                : ([], Problem(StatusCodes.Status400BadRequest, "Invalid payload", "The payload is not valid UTF-8."));
        }
        if (type == "application/x-www-form-urlencoded")
        {
            // GitHub's form encoding: payload=<url-encoded JSON>.
            using var stream = new MemoryStream(body, writable: false);
            using var form = new FormReader(stream, Encoding.UTF8)
            {
                ValueLengthLimit = (int)GitHubWebhookOptions.MaxBodyBytes,
                KeyLengthLimit = 1024,
                ValueCountLimit = 64,
            };
            Dictionary<string, Microsoft.Extensions.Primitives.StringValues> fields;
            try
            {
                fields = await form.ReadFormAsync();
            }
            catch (InvalidDataException ex)
            {
                return ([], Problem(StatusCodes.Status400BadRequest, "Invalid form body", ex.Message));
            }
            return fields.TryGetValue("payload", out var json) && json.Count == 1 && !string.IsNullOrEmpty(json[0])
                ? (Encoding.UTF8.GetBytes(json[0]!), null)
                : ([], Problem(StatusCodes.Status400BadRequest, "Missing payload",
                    "A form-encoded delivery must have exactly one non-empty payload field."));
        }
        return ([], Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported content type",
            $"Content-Type '{contentType}' is not supported: use application/json or application/x-www-form-urlencoded."));
    }

    public static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail);

    private static string? SingleHeader(IHeaderDictionary headers, string name) =>
        headers[name] is { Count: 1 } values ? values[0] : null;

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z][a-z_]{0,99}$")]
    private static partial System.Text.RegularExpressions.Regex EventTypePattern();

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9._-]{1,100}$")]
    private static partial System.Text.RegularExpressions.Regex DeliveryIdPattern();
}
