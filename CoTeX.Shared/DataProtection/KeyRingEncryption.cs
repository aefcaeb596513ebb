using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CoTeX.Shared.DataProtection;

/// <summary>
/// The key-encryption key of the Data Protection key ring, bound from <c>DataProtection</c>. The key ring (in
/// Postgres, next to the webhook secrets it protects) is only ever stored encrypted with it, so a dump of the database
/// alone reveals no secret. It is a secret the database never sees: an Aspire secret parameter
/// (<c>key-encryption-key</c>), required in every environment.
/// </summary>
public sealed class KeyRingOptions : IValidatableObject
{
    public const string Section = "DataProtection";

    /// <summary>32 random bytes in base64 (44 characters; <c>openssl rand -base64 32</c>).</summary>
    public string? KeyEncryptionKey { get; set; }

    /// <summary>
    /// Other key-encryption keys this service can read with: during a rotation, first the new key (before it becomes
    /// current anywhere), then the old one. Keys encrypted with one of them are read, then stored again under
    /// <see cref="KeyEncryptionKey"/>. Remove the old one once every replica has the new key as current. An older key
    /// from before keys had to be 32 random bytes is accepted here (at least 32 characters), so it can be rotated away.
    /// </summary>
    public string[] PreviousKeyEncryptionKeys { get; set; } = [];

    public const int KeySize = 32;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrEmpty(KeyEncryptionKey))
        {
            yield return new ValidationResult(
                "DataProtection:KeyEncryptionKey is not set (environment variable DataProtection__KeyEncryptionKey; the " +
                "AppHost's key-encryption-key parameter). It encrypts the key ring that protects the webhook secrets.",
                [nameof(KeyEncryptionKey)]);
        }
        else if (WhyNotRandomKey(KeyEncryptionKey) is { } problem)
        {
            yield return new ValidationResult(
                $"DataProtection:KeyEncryptionKey must be {KeySize} random bytes in base64 (make one with `openssl rand -base64 32`): " +
                $"{problem}. To move from an older key, see the README's key rotation.", [nameof(KeyEncryptionKey)]);
        }
        if (PreviousKeyEncryptionKeys.Any(k => k is not { Length: >= 32 }))
        {
            yield return new ValidationResult("Every DataProtection:PreviousKeyEncryptionKeys entry must be at least 32 characters long.",
                [nameof(PreviousKeyEncryptionKeys)]);
        }
        if (PreviousKeyEncryptionKeys.Contains(KeyEncryptionKey))
        {
            yield return new ValidationResult("DataProtection:PreviousKeyEncryptionKeys repeats DataProtection:KeyEncryptionKey.",
                [nameof(PreviousKeyEncryptionKeys)]);
        }
    }

    /// <summary>
    /// Why <paramref name="key"/> is not 32 random bytes in base64, or null when it looks like one. Randomness cannot be
    /// proven, but what a person types instead can be refused: too few distinct bytes (all zeros, a repeated word or
    /// pattern; 32 random bytes have about 30 distinct values, fewer than 16 happens with a probability below 10^-12),
    /// or bytes that count up or down by a fixed step.
    /// </summary>
    public static string? WhyNotRandomKey(string key)
    {
        var bytes = new byte[key.Length]; // base64 decodes to fewer bytes than characters
        if (!Convert.TryFromBase64String(key.Trim(), bytes, out var length))
        {
            return "it is not base64";
        }
        if (length != KeySize)
        {
            return $"it decodes to {length} bytes, not {KeySize}";
        }
        var material = bytes.AsSpan(0, KeySize);
        if (material.ToArray().Distinct().Count() < 16)
        {
            return "its bytes repeat too much to be random";
        }
        var step = (byte)(material[1] - material[0]);
        var progression = true;
        for (var i = 2; i < material.Length && progression; i++)
        {
            progression = (byte)(material[i] - material[i - 1]) == step;
        }
        return progression ? "its bytes follow a sequence" : null;
    }
}

/// <summary>
/// The AES-256 keys derived (HKDF-SHA256) from the configured key-encryption keys, each named by a short id derived
/// the same way, so an encrypted element says which key it needs without revealing anything about it.
/// </summary>
public sealed class KeyEncryptionKeys
{
    private readonly Dictionary<string, byte[]> _keys = new(StringComparer.Ordinal);

    public KeyEncryptionKeys(IOptions<KeyRingOptions> options)
    {
        CurrentId = Add(options.Value.KeyEncryptionKey!);
        foreach (var previous in options.Value.PreviousKeyEncryptionKeys)
        {
            Add(previous);
        }
    }

    public string CurrentId { get; }
    public byte[] Current => _keys[CurrentId];

    public byte[]? Find(string id) => _keys.GetValueOrDefault(id);

    // The key is derived from the configured text as written (not its decoded bytes), so a ring sealed under a key
    // from before keys had to be base64 stays readable when that key is listed as a previous one.
    private string Add(string secret)
    {
        var material = Encoding.UTF8.GetBytes(secret);
        var id = Convert.ToHexStringLower(HKDF.DeriveKey(HashAlgorithmName.SHA256, material, 8, info: "CoTeX key ring key id v1"u8.ToArray()));
        _keys[id] = HKDF.DeriveKey(HashAlgorithmName.SHA256, material, 32, info: "CoTeX key ring encryption v1"u8.ToArray());
        return id;
    }
}

/// <summary>
/// Encrypts a key ring secret (a key's master key) with AES-256-GCM under the current key-encryption key:
/// <c>&lt;keyRingSecret kek="id" nonce tag&gt;ciphertext&lt;/keyRingSecret&gt;</c>, the id bound in as associated data.
/// </summary>
public sealed class KeyRingEncryptor(KeyEncryptionKeys keys) : IXmlEncryptor
{
    public static readonly XName ElementName = XName.Get("keyRingSecret", "urn:cotex:data-protection");
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public EncryptedXmlInfo Encrypt(XElement plaintextElement) =>
        new(Seal(plaintextElement, keys.CurrentId, keys.Current), typeof(KeyRingDecryptor));

    public static XElement Seal(XElement plaintextElement, string keyId, byte[] key)
    {
        var plaintext = Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting));
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[TagSize];
        using (var aes = new AesGcm(key, TagSize))
        {
            aes.Encrypt(nonce, plaintext, ciphertext, tag, Encoding.ASCII.GetBytes(keyId));
        }
        CryptographicOperations.ZeroMemory(plaintext);
        return new XElement(ElementName,
            new XAttribute("kek", keyId), new XAttribute("nonce", Convert.ToBase64String(nonce)),
            new XAttribute("tag", Convert.ToBase64String(tag)), Convert.ToBase64String(ciphertext));
    }

    public static XElement Open(XElement encryptedElement, KeyEncryptionKeys keys)
    {
        var keyId = (string?)encryptedElement.Attribute("kek") ?? "";
        var key = keys.Find(keyId) ?? throw new CryptographicException(
            $"The Data Protection key ring holds a key encrypted with key-encryption key {keyId}, but this service has " +
            $"{keys.CurrentId} (DataProtection:KeyEncryptionKey). Set the key it was encrypted with, or add it to " +
            "DataProtection:PreviousKeyEncryptionKeys while rotating; until then webhook secrets cannot be read.");
        var nonce = Convert.FromBase64String((string)encryptedElement.Attribute("nonce")!);
        var tag = Convert.FromBase64String((string)encryptedElement.Attribute("tag")!);
        var ciphertext = Convert.FromBase64String(encryptedElement.Value);
        var plaintext = new byte[ciphertext.Length];
        using (var aes = new AesGcm(key, TagSize))
        {
            aes.Decrypt(nonce, ciphertext, tag, plaintext, Encoding.ASCII.GetBytes(keyId));
        }
        try
        {
            return XElement.Parse(Encoding.UTF8.GetString(plaintext));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}

/// <summary>Decrypts what <see cref="KeyRingEncryptor"/> wrote (Data Protection creates it by type name, with the app's services).</summary>
public sealed class KeyRingDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement) =>
        KeyRingEncryptor.Open(encryptedElement, services.GetRequiredService<KeyEncryptionKeys>());
}
