using System.Security.Cryptography;
using System.Text;

namespace CoTeX.DevTools;

/// <summary>
/// Signs a webhook body as GitHub does: the hex HMAC of the raw body, keyed with the secret's UTF-8 bytes. The Api's
/// <c>WebhookSignature</c> is the verifier; it stays in the Api so no service depends on dev tooling.
/// </summary>
public static class WebhookSigning
{
    public const string Sha256Header = "X-Hub-Signature-256";

    /// <summary>GitHub's legacy header, sent alongside (or, by old setups, instead of) the SHA-256 one.</summary>
    public const string Sha1Header = "X-Hub-Signature";

    /// <summary>The <c>X-Hub-Signature-256</c> value: <c>sha256=&lt;hex&gt;</c>.</summary>
    public static string Sign(string secret, ReadOnlySpan<byte> body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>The legacy <c>X-Hub-Signature</c> value: <c>sha1=&lt;hex&gt;</c>.</summary>
    public static string SignSha1(string secret, ReadOnlySpan<byte> body) =>
        "sha1=" + Convert.ToHexStringLower(HMACSHA1.HashData(Encoding.UTF8.GetBytes(secret), body));
}
