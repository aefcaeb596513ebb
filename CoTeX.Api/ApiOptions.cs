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

    /// <summary>
    /// CIDR ranges of the reverse proxies in front of the Api (Azure Container Apps' ingress: the environment's
    /// infrastructure subnet). A request whose peer is inside one is taken to come from the last address that proxy
    /// appended to <c>X-Forwarded-For</c>; from anyone else the header is ignored, so it cannot be forged. Empty (the
    /// default): the peer's own address counts, which behind a proxy is the proxy's, and then the per-address limits
    /// count every sender as one.
    /// </summary>
    public string[] TrustedProxies { get; set; } = [];

    /// <summary>The public URL of <paramref name="path"/> (which starts with a slash) on this Api.</summary>
    public string PublicUrl(HttpRequest request, string path)
    {
        var baseUrl = string.IsNullOrEmpty(PublicBaseUrl) ? $"{request.Scheme}://{request.Host}" : PublicBaseUrl.TrimEnd('/');
        return baseUrl + path;
    }
}
