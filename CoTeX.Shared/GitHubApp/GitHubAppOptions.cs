using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;

namespace CoTeX.Shared.GitHubApp;

/// <summary>
/// CoTeX's GitHub App, bound from <c>GitHubApp</c> (the AppHost's <c>github-app-*</c> parameters). The mode is on when
/// the app is configured (<see cref="IsEnabled"/>), and then every setting must be there, or the service does not
/// start; while it is off, its endpoints say so and the per-repo webhooks work as always.
/// </summary>
public sealed class GitHubAppOptions : IValidatableObject
{
    public const string Section = "GitHubApp";

    /// <summary>The app's id: the issuer of the JWTs the app signs to speak as itself.</summary>
    public string? AppId { get; set; }

    /// <summary>The app's OAuth client id and secret, for the users' authorization (Connect GitHub).</summary>
    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>The app's private key, PEM (as GitHub hands it out) or that PEM in base64.</summary>
    public string? PrivateKey { get; set; }

    /// <summary>The secret GitHub signs the app's webhook deliveries with.</summary>
    public string? WebhookSecret { get; set; }

    public Uri WebBaseUrl { get; set; } = new("https://github.com");
    public Uri ApiBaseUrl { get; set; } = new("https://api.github.com");

    /// <summary>How long a user has to approve the authorization after asking to connect.</summary>
    [Range(30, 3600)]
    public int ConnectSeconds { get; set; } = 600;

    /// <summary>
    /// Worker: how often every connected user's access is checked against GitHub again. A removal GitHub sends the app
    /// no event for (a member leaving an organisation whose installation does not send organization events) takes
    /// effect within this long.
    /// </summary>
    [Range(1, 86_400)]
    public int RecheckSeconds { get; set; } = 900;

    /// <summary>
    /// Api: a user may ask for a re-check (<c>POST /api/github-app/recheck</c>) once per this many seconds; sooner is a
    /// 429 with Retry-After. Each re-check makes a few GitHub calls on the user's token.
    /// </summary>
    [Range(0, 3600)]
    public int RecheckCooldownSeconds { get; set; } = 30;

    /// <summary>Worker: how often the app's failed deliveries are looked up and redelivered.</summary>
    [Range(1, 86_400)]
    public int RedeliverySeconds { get; set; } = 300;

    /// <summary>Worker: redeliveries asked for per run at most (GitHub rate-limits the app).</summary>
    [Range(1, 1000)]
    public int MaxRedeliveriesPerRun { get; set; } = 50;

    /// <summary>Worker: a failed delivery is asked for again at most this many times.</summary>
    [Range(1, 10)]
    public int MaxRedeliveryAttempts { get; set; } = 3;

    public bool IsEnabled => !string.IsNullOrEmpty(AppId);

    /// <summary>The RSA key the app signs its JWTs with.</summary>
    public RSA LoadPrivateKey()
    {
        var text = PrivateKey!.Trim();
        if (!text.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            text = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(text));
        }
        var rsa = RSA.Create();
        rsa.ImportFromPem(text);
        return rsa;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var any = new[] { AppId, ClientId, ClientSecret, PrivateKey, WebhookSecret }.Any(v => !string.IsNullOrEmpty(v));
        if (!any)
        {
            yield break;
        }
        foreach (var (name, value) in new[]
                 {
                     (nameof(AppId), AppId), (nameof(ClientId), ClientId), (nameof(ClientSecret), ClientSecret),
                     (nameof(PrivateKey), PrivateKey), (nameof(WebhookSecret), WebhookSecret),
                 })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                yield return new ValidationResult(
                    $"The GitHub App is partly configured: GitHubApp:{name} is not set (environment variable GitHubApp__{name}).", [name]);
            }
        }
        if (!string.IsNullOrWhiteSpace(PrivateKey))
        {
            string? error = null;
            try
            {
                using var _ = LoadPrivateKey();
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or CryptographicException)
            {
                error = ex.Message;
            }
            if (error is not null)
            {
                yield return new ValidationResult($"GitHubApp:PrivateKey is not an RSA private key in PEM: {error}", [nameof(PrivateKey)]);
            }
        }
    }
}
