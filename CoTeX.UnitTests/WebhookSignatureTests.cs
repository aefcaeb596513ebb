using System.Text;
using CoTeX.Api.GitHubWebhooks;
using CoTeX.DevTools;

namespace CoTeX.UnitTests;

/// <summary>The Api's verifier against the one signer the tests, the dashboard and the benchmarks use.</summary>
public sealed class WebhookSignatureTests
{
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("""{"zen":"Keep it logically awesome."}""");

    [Fact]
    public void A_body_signed_with_the_secret_verifies_in_both_of_GitHubs_schemes()
    {
        WebhookSignature.IsValidSha256(WebhookSigning.Sign("s3cr3t", Body), "s3cr3t"u8.ToArray(), Body).Should().BeTrue();
        WebhookSignature.IsValidSha1(WebhookSigning.SignSha1("s3cr3t", Body), "s3cr3t"u8.ToArray(), Body).Should().BeTrue();
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("sha256=")]
    [InlineData("sha256=zz")]
    [InlineData("sha1=0000000000000000000000000000000000000000")]
    [InlineData("SHA256=deadbeef")]
    public void A_missing_malformed_or_other_scheme_signature_does_not_verify(string? header) =>
        WebhookSignature.IsValidSha256(header, "s3cr3t"u8.ToArray(), Body).Should().BeFalse();

    [Fact]
    public void Another_secret_or_one_changed_byte_does_not_verify()
    {
        var signature = WebhookSigning.Sign("s3cr3t", Body);
        WebhookSignature.IsValidSha256(signature, "other"u8.ToArray(), Body).Should().BeFalse();
        WebhookSignature.IsValidSha256(signature, "s3cr3t"u8.ToArray(), [.. Body, (byte)' ']).Should().BeFalse();
    }

    [Fact]
    public void The_signature_is_GitHubs_documented_example()
    {
        // GitHub's "Validating webhook deliveries" page: secret "It's a Secret to Everybody", payload "Hello, World!".
        WebhookSigning.Sign("It's a Secret to Everybody", "Hello, World!"u8)
            .Should().Be("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    }
}
