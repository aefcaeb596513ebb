using System.ComponentModel.DataAnnotations;

namespace CoTeX.Shared.Auth;

/// <summary>
/// How Supabase-issued JWTs are validated. Either key system may be configured, or both: the project's HS256 secret
/// (<see cref="JwtSecret"/>) and the asymmetric signing keys published at <see cref="JwksUrl"/>.
/// </summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";

    /// <summary>Supabase's JWT secret (HS256). At least 32 characters.</summary>
    public string? JwtSecret { get; set; }

    /// <summary>Supabase's JWKS document, e.g. https://&lt;project&gt;.supabase.co/auth/v1/.well-known/jwks.json.</summary>
    public Uri? JwksUrl { get; set; }

    /// <summary>When set, the <c>iss</c> claim must equal it exactly (e.g. https://&lt;project&gt;.supabase.co/auth/v1).</summary>
    public string? Issuer { get; set; }

    /// <summary>The required <c>aud</c> claim; Supabase issues <c>authenticated</c> to signed-in users.</summary>
    [Required]
    public string Audience { get; set; } = "authenticated";

    /// <summary>Shortest time between two JWKS downloads caused by an unknown <c>kid</c>.</summary>
    [Range(1, 3600)]
    public int JwksMinimumRefreshSeconds { get; set; } = 30;

    /// <summary>How long a downloaded JWKS is trusted before it is fetched again.</summary>
    [Range(60, 86400)]
    public int JwksRefreshSeconds { get; set; } = 3600;

    /// <summary>Allowed clock difference when checking <c>exp</c> and <c>nbf</c>.</summary>
    [Range(0, 300)]
    public int ClockSkewSeconds { get; set; } = 30;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrEmpty(JwtSecret) && JwksUrl is null)
        {
            yield return new ValidationResult(
                "No JWT signing key is configured. Set Auth:JwtSecret (Supabase's HS256 project secret, environment " +
                "variable Auth__JwtSecret) and/or Auth:JwksUrl (Supabase's JWKS URL, Auth__JwksUrl).",
                [nameof(JwtSecret), nameof(JwksUrl)]);
        }
        if (JwtSecret is { Length: > 0 and < 32 })
        {
            yield return new ValidationResult("Auth:JwtSecret must be at least 32 characters long.", [nameof(JwtSecret)]);
        }
        if (JwksUrl is { IsAbsoluteUri: false } || JwksUrl is { Scheme: not ("https" or "http") })
        {
            yield return new ValidationResult("Auth:JwksUrl must be an absolute http(s) URL.", [nameof(JwksUrl)]);
        }
    }
}
