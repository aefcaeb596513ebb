using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.DevTools;

/// <summary>
/// Supabase-shaped access tokens for local runs, tests and benchmarks: what a Supabase access token carries that
/// CoTeX reads (<c>sub</c>, <c>aud</c>, <c>role</c>, <c>email</c>, <c>is_anonymous</c>, <c>app_metadata</c>,
/// <c>iat</c>, <c>exp</c>), signed HS256 with the project secret the services are configured with. Like Supabase's
/// there is no <c>iss</c> (the services check it only when <c>Auth:Issuer</c> is set) and no <c>nbf</c>.
/// </summary>
public static class DevTokens
{
    /// <summary>The local dev user: the dashboard's commands and <c>eng/mint-token.sh</c> without a uuid mint for it.</summary>
    public static readonly Guid DevUserId = Guid.Parse("00000000-0000-4000-8000-000000000001");

    /// <summary>Supabase's audience for a signed-in user's token (the services' <c>Auth:Audience</c> default).</summary>
    public const string Audience = "authenticated";

    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(24);

    /// <summary>A token for <paramref name="userId"/> signed with the HS256 project <paramref name="secret"/>.</summary>
    /// <param name="admin">Puts <c>app_metadata.role = "admin"</c> in it, which the admin endpoints require.</param>
    /// <param name="lifetime">From now to <c>exp</c> (24 hours when omitted; negative for an expired token).</param>
    /// <param name="email">The <c>email</c> claim; the first 8 characters of the user id <c>@local.test</c> when omitted.</param>
    public static string Mint(string secret, Guid userId, bool anonymous = false, bool admin = false,
        TimeSpan? lifetime = null, string? email = null) =>
        Create(Descriptor(HmacCredentials(secret), userId, anonymous, admin, lifetime, email));

    public static SigningCredentials HmacCredentials(string secret) =>
        new(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256);

    /// <summary>
    /// The token <see cref="Mint"/> makes, before it is written: tests change any part of it (a past <c>exp</c>, an
    /// issuer, other credentials) and write it with <see cref="Create"/>.
    /// </summary>
    public static SecurityTokenDescriptor Descriptor(SigningCredentials credentials, Guid userId, bool anonymous = false,
        bool admin = false, TimeSpan? lifetime = null, string? email = null)
    {
        var now = DateTime.UtcNow;
        return new SecurityTokenDescriptor
        {
            Audience = Audience,
            IssuedAt = now,
            Expires = now + (lifetime ?? DefaultLifetime),
            SigningCredentials = credentials,
            Claims = new Dictionary<string, object>
            {
                ["sub"] = userId.ToString(),
                ["role"] = "authenticated",
                ["email"] = email ?? $"{userId.ToString()[..8]}@local.test",
                ["is_anonymous"] = anonymous,
                // Supabase sets app_metadata server-side; the services read only its role (AdminPolicy).
                ["app_metadata"] = admin ? new Dictionary<string, object> { ["role"] = "admin" } : new Dictionary<string, object>(),
            },
        };
    }

    /// <summary>Writes <paramref name="descriptor"/> as it is: no time claim added that it does not set.</summary>
    public static string Create(SecurityTokenDescriptor descriptor) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
}
