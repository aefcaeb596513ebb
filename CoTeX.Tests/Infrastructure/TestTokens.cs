using System.Text;
using CoTeX.AppHost;
using CoTeX.DevTools;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Supabase-shaped access tokens for tests, signed like Supabase signs them (or deliberately not): the dev tooling's
/// <see cref="DevTokens"/> with the test suite's secret, an hour's lifetime and an email of the user's own.
/// </summary>
public static class TestTokens
{
    /// <summary>The HS256 project secret every test host is configured with (the AppHost's map's development value).</summary>
    public static readonly string Secret = ServiceSettings.JwtSecret.Development!;

    /// <summary>The other secret every test Api gets: the Data Protection key ring's key-encryption key (32 random bytes, base64).</summary>
    public static readonly string KeyEncryptionKey = ServiceSettings.KeyEncryptionKey.Development!;

    public static SymmetricSecurityKey SecretKey { get; } = new(Encoding.UTF8.GetBytes(Secret));

    /// <summary>A valid HS256 token for <paramref name="userId"/>; <paramref name="customize"/> can change any part.</summary>
    public static string For(Guid userId, Action<SecurityTokenDescriptor>? customize = null, bool anonymous = false) =>
        Create(Descriptor(userId, anonymous, new SigningCredentials(SecretKey, SecurityAlgorithms.HmacSha256)), customize);

    public static string Create(SecurityTokenDescriptor descriptor, Action<SecurityTokenDescriptor>? customize = null)
    {
        customize?.Invoke(descriptor);
        return DevTokens.Create(descriptor);
    }

    public static SecurityTokenDescriptor Descriptor(Guid userId, bool anonymous, SigningCredentials credentials) =>
        DevTokens.Descriptor(credentials, userId, anonymous, lifetime: TimeSpan.FromHours(1), email: $"{userId:N}@example.test");

    /// <summary>An unsigned token (<c>alg: none</c>) with a valid-looking payload.</summary>
    public static string Unsigned(Guid userId)
    {
        static string Encode(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        return $"{Encode("""{"alg":"none","typ":"JWT"}""")}.{Encode($$"""{"sub":"{{userId}}","aud":"authenticated","exp":{{exp}}}""")}.";
    }

    public static HttpClient WithToken(this HttpClient client, string token)
    {
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
