namespace CoTeX.Api;

/// <summary>Bound from <c>Api</c>.</summary>
public sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>
    /// The Api's address as GitHub and Stripe reach it (behind ingress, a custom domain). Webhook URLs handed to
    /// users start with it; when unset they are built from the request's own scheme and host.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>The public URL of <paramref name="path"/> (which starts with a slash) on this Api.</summary>
    public string PublicUrl(HttpRequest request, string path)
    {
        var baseUrl = string.IsNullOrEmpty(PublicBaseUrl) ? $"{request.Scheme}://{request.Host}" : PublicBaseUrl.TrimEnd('/');
        return baseUrl + path;
    }
}
