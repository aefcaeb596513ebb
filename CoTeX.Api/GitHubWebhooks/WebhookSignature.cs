using System.Buffers;
using System.Security.Cryptography;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>
/// GitHub's webhook signatures: <c>X-Hub-Signature-256: sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c>, and the
/// legacy <c>X-Hub-Signature: sha1=&lt;hex&gt;</c>. Compared in constant time.
/// </summary>
public static class WebhookSignature
{
    public const string Sha256Header = "X-Hub-Signature-256";
    public const string Sha1Header = "X-Hub-Signature";

    public static bool IsValidSha256(string? header, byte[] key, ReadOnlySpan<byte> body) =>
        IsValid(header, "sha256=", HashAlgorithmName.SHA256, key, body);

    public static bool IsValidSha1(string? header, byte[] key, ReadOnlySpan<byte> body) =>
        IsValid(header, "sha1=", HashAlgorithmName.SHA1, key, body);

    public static bool IsValidSha256(string? header, byte[] key, in ReadOnlySequence<byte> body) =>
        body.IsSingleSegment ? IsValidSha256(header, key, body.FirstSpan) : IsValidChunked(header, "sha256=", HashAlgorithmName.SHA256, key, body);

    public static bool IsValidSha1(string? header, byte[] key, in ReadOnlySequence<byte> body) =>
        body.IsSingleSegment ? IsValidSha1(header, key, body.FirstSpan) : IsValidChunked(header, "sha1=", HashAlgorithmName.SHA1, key, body);

    /// <summary>A body still in the chunks it was read into (<see cref="WebhookIngress.UnverifiedBody"/>): hashed in place, not copied.</summary>
    private static bool IsValidChunked(string? header, string prefix, HashAlgorithmName algorithm, byte[] key, in ReadOnlySequence<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(algorithm, key);
        foreach (var segment in body)
        {
            hmac.AppendData(segment.Span);
        }
        Span<byte> expected = stackalloc byte[hmac.HashLengthInBytes];
        hmac.GetHashAndReset(expected);
        return Matches(header, prefix, expected);
    }

    private static bool Matches(string? header, string prefix, ReadOnlySpan<byte> expected)
    {
        Span<byte> given = stackalloc byte[expected.Length];
        return header is not null
               && header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
               && header.Length - prefix.Length == given.Length * 2
               && Convert.FromHexString(header.AsSpan(prefix.Length), given, out _, out _) == OperationStatus.Done
               && CryptographicOperations.FixedTimeEquals(expected, given);
    }

    private static bool IsValid(string? header, string prefix, HashAlgorithmName algorithm, byte[] key, ReadOnlySpan<byte> body)
    {
        var length = algorithm == HashAlgorithmName.SHA256 ? HMACSHA256.HashSizeInBytes : HMACSHA1.HashSizeInBytes;
        Span<byte> expected = stackalloc byte[length];
        Span<byte> given = stackalloc byte[length];

        if (header is null
            || !header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            || header.Length - prefix.Length != given.Length * 2
            || Convert.FromHexString(header.AsSpan(prefix.Length), given, out _, out _) != OperationStatus.Done)
        {
            return false;
        }

        if (algorithm == HashAlgorithmName.SHA256)
        {
            HMACSHA256.HashData(key, body, expected);
        }
        else
        {
            HMACSHA1.HashData(key, body, expected);
        }
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }
}
