using CoTeX.DevTools;

namespace CoTeX.Tests.Hostile;

/// <summary>One generated bad request and what it must get.</summary>
/// <param name="MediaType">The body an error must have: ProblemDetails JSON unless the client's Accept rules it out.</param>
/// <param name="Status">The status the case must get, when it is known exactly (any 4xx otherwise).</param>
internal sealed record HostileCase(string Category, string Name, Func<HttpRequestMessage> Build, HttpClient Client,
    string MediaType = HostileRequests.ProblemJson, int? Status = null)
{
    /// <summary>Kestrel itself refuses some requests (a NUL in the path) with a bare 400 before any app code runs.</summary>
    public bool ServerMayRefuseBeforeTheApp => Name.Contains("%00", StringComparison.Ordinal);
}

/// <summary>How the generators build requests.</summary>
internal static class HostileRequests
{
    public const string ProblemJson = "application/problem+json";

    /// <summary>A push delivery to <paramref name="path"/> as GitHub sends it, signed when a secret is given.</summary>
    public static HttpRequestMessage GitHubDelivery(string path, byte[] body, string? secret, Action<HttpRequestMessage>? tamper,
        string contentType)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Content(body, contentType) };
        request.Headers.Add("X-GitHub-Event", "push");
        request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        if (secret is not null)
        {
            request.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(secret, body));
        }
        tamper?.Invoke(request);
        return request;
    }

    public static bool IsJsonObject(byte[] body)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(body);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    public static HttpRequestMessage Webhook(Guid repoId, string signature, string contentType, byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repoId}") { Content = Content(body, contentType) };
        request.Headers.Add("X-GitHub-Event", "push");
        request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        request.Headers.Add("X-Hub-Signature-256", signature);
        return request;
    }

    public static HttpRequestMessage Get(string path) => new(HttpMethod.Get, path);

    public static ByteArrayContent Content(byte[] body, string contentType)
    {
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return content;
    }

    public static string Truncate(string value, int length = 200) => value.Length > length ? value[..length] + "…" : value;
}
