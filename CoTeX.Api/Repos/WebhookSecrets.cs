using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;

namespace CoTeX.Api.Repos;

/// <summary>
/// Makes webhook secrets and keeps them encrypted at rest with ASP.NET Data Protection (key ring in Postgres,
/// shared by every Api replica). The plain secret is shown to the user once and otherwise only exists in memory.
/// </summary>
public sealed class WebhookSecrets(IDataProtectionProvider provider)
{
    private readonly IDataProtector _protector = provider.CreateProtector("CoTeX.GitHubWebhookSecret.v1");

    /// <summary>256 random bits as 64 hex characters: easy to paste, far beyond guessing.</summary>
    public static string Generate() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public string Protect(string secret) => _protector.Protect(secret);

    /// <summary>The secret as the HMAC key GitHub uses: its UTF-8 bytes.</summary>
    public byte[] UnprotectToKey(string protectedSecret) => Encoding.UTF8.GetBytes(_protector.Unprotect(protectedSecret));
}
