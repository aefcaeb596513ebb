using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CoTeX.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Tests.Auth;

/// <summary>
/// The Supabase JWT matrix against a real Api: HS256 with the project secret, ES256 with keys from a JWKS the test
/// serves, and every way a token can be wrong.
/// </summary>
public sealed class JwtAuthenticationTests(TestInfrastructure infra)
{
    private const string Issuer = "https://project.supabase.test/auth/v1";

    [Fact]
    public async Task Valid_hs256_token_is_accepted_and_creates_the_user_on_first_sight()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var userId = Guid.NewGuid();

        var response = await app.ClientFor(userId).GetAsync("/api/repos");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await app.ScalarAsync<string>($"select email from users where id = '{userId}'")).Should().Be($"{userId:N}@example.test");
    }

    [Fact]
    public async Task A_returning_users_token_check_reads_and_writes_only_when_their_last_seen_time_is_an_hour_old()
    {
        // Each ApiApp is a process of its own as far as the check is concerned (its own memory of whom it has seen).
        var db = await infra.CreateMigratedDatabaseAsync();
        var userId = Guid.NewGuid();
        async Task<string> RowVersionAsync(ApiApp app) =>
            (await app.ScalarAsync<string>($"select xmin::text from users where id = '{userId}'"))!;
        await using (var first = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            (await first.ClientFor(userId).GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK);
        }

        await using var second = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        var created = await RowVersionAsync(second);
        (await second.ClientFor(userId).GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await RowVersionAsync(second)).Should().Be(created, "seen minutes ago: a reconnect storm's checks are reads");

        await second.ScalarAsync<int>($"update users set last_seen_at = now() - interval '2 hours' where id = '{userId}' returning 1");
        await using var third = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        (await third.ClientFor(userId).GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await third.ScalarAsync<bool>($"select last_seen_at > now() - interval '1 minute' from users where id = '{userId}'"))
            .Should().BeTrue("last seen two hours ago: the check writes the time again");
    }

    [Fact]
    public async Task Valid_es256_token_from_the_jwks_is_accepted_alongside_hs256()
    {
        await using var jwks = await JwksServer.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, new() { ["Auth:JwksUrl"] = jwks.Url.ToString() });

        var es256 = Es256Token(jwks.CurrentKey, Guid.NewGuid());

        (await Get(app, es256)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await app.ClientFor().GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK, "both key systems are configured");
    }

    [Fact]
    public async Task A_rotated_jwks_key_is_fetched_on_first_use_and_forged_kids_do_not_cause_a_download_storm()
    {
        await using var jwks = await JwksServer.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, new()
        {
            ["Auth:JwksUrl"] = jwks.Url.ToString(),
            ["Auth:JwksMinimumRefreshSeconds"] = "1",
        });
        (await Get(app, Es256Token(jwks.CurrentKey, Guid.NewGuid()))).StatusCode.Should().Be(HttpStatusCode.OK);
        await Task.Delay(TimeSpan.FromSeconds(1.1));

        var rotated = jwks.AddKey();
        (await Get(app, Es256Token(rotated, Guid.NewGuid()))).StatusCode.Should().Be(HttpStatusCode.OK);

        var downloadsBefore = jwks.Downloads;
        var forger = new ECDsaSecurityKey(System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256));
        for (var i = 0; i < 20; i++)
        {
            forger.KeyId = $"forged-{i}";
            (await Get(app, Es256Token(forger, Guid.NewGuid()))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }
        (jwks.Downloads - downloadsBefore).Should().BeLessThanOrEqualTo(2, "unknown kids refresh the key set at most once a second");
    }

    public static TheoryData<string, string> RejectedTokens => new()
    {
        { "expired", "expired" },
        { "not yet valid", "not valid yet" },
        { "wrong audience", "audience" },
        { "wrong issuer", "issuer" },
        { "alg none", "rejected" },
        { "hs256 signed with the jwks public key", "rejected" },
        { "hs256 signed with another secret", "signature" },
        { "missing sub", "sub" },
        { "sub that is not a uuid", "sub" },
        { "tampered payload", "signature" },
        { "no expiry", "rejected" },
        { "garbage", "well-formed" },
        { "oversized", "rejected" },
        { "es256 key not in the jwks", "rejected" },
    };

    [Theory]
    [MemberData(nameof(RejectedTokens))]
    public async Task Bad_tokens_are_401_with_a_problem_saying_why(string kind, string detailMentions)
    {
        await using var jwks = await JwksServer.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, new()
        {
            ["Auth:JwksUrl"] = jwks.Url.ToString(),
            ["Auth:Issuer"] = Issuer,
        });
        var userId = Guid.NewGuid();
        var valid = TestTokens.For(userId, d => d.Issuer = Issuer);
        (await Get(app, valid)).StatusCode.Should().Be(HttpStatusCode.OK, "the baseline token is valid");

        var token = kind switch
        {
            "expired" => TestTokens.For(userId, d =>
            {
                d.Issuer = Issuer;
                (d.IssuedAt, d.NotBefore, d.Expires) = (DateTime.UtcNow.AddHours(-2), DateTime.UtcNow.AddHours(-2), DateTime.UtcNow.AddHours(-1));
            }),
            "not yet valid" => TestTokens.For(userId, d =>
            {
                d.Issuer = Issuer;
                (d.NotBefore, d.Expires) = (DateTime.UtcNow.AddHours(1), DateTime.UtcNow.AddHours(2));
            }),
            "wrong audience" => TestTokens.For(userId, d => (d.Issuer, d.Audience) = (Issuer, "anon")),
            "wrong issuer" => TestTokens.For(userId, d => d.Issuer = "https://evil.example/auth/v1"),
            "alg none" => TestTokens.Unsigned(userId),
            "hs256 signed with the jwks public key" => TestTokens.Create(
                TestTokens.Descriptor(userId, false, new SigningCredentials(
                    new SymmetricSecurityKey(Encoding.UTF8.GetBytes(JwksServer.PublicJwk(jwks.CurrentKey))) { KeyId = jwks.CurrentKey.KeyId },
                    SecurityAlgorithms.HmacSha256)),
                d => d.Issuer = Issuer),
            "hs256 signed with another secret" => TestTokens.Create(
                TestTokens.Descriptor(userId, false, new SigningCredentials(
                    new SymmetricSecurityKey(Encoding.UTF8.GetBytes("another-secret-that-is-long-enough-0123456789")),
                    SecurityAlgorithms.HmacSha256)),
                d => d.Issuer = Issuer),
            "missing sub" => TestTokens.For(userId, d => { d.Issuer = Issuer; d.Claims.Remove("sub"); }),
            "sub that is not a uuid" => TestTokens.For(userId, d => { d.Issuer = Issuer; d.Claims["sub"] = "admin"; }),
            "tampered payload" => Tamper(valid),
            "no expiry" => TestTokens.For(userId, d => (d.Issuer, d.Expires) = (Issuer, null)),
            "garbage" => "not-a-jwt",
            "oversized" => TestTokens.For(userId, d => { d.Issuer = Issuer; d.Claims["padding"] = new string('x', 300_000); }),
            "es256 key not in the jwks" => Es256Token(
                new ECDsaSecurityKey(System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256))
                    { KeyId = jwks.CurrentKey.KeyId },
                userId, Issuer),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var response = await Get(app, token);

        response.StatusCode.Should().BeOneOf([HttpStatusCode.Unauthorized, HttpStatusCode.RequestHeaderFieldsTooLarge], kind);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            problem.GetProperty("detail").GetString().Should().Contain(detailMentions, kind);
        }
    }

    [Fact]
    public async Task A_deleted_accounts_tokens_are_refused_and_the_account_is_not_recreated()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        var repo = await ApiRequests.TrackRepoAsync(user);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", repo.FullName)))
            .EnsureSuccessStatusCode();

        (await user.DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        var refused = await user.GetAsync("/api/repos");
        refused.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("deleted");
        (await app.CountEventsAsync()).Should().Be(0);
        (await app.ScalarAsync<long>($"select count(*) from users where id = '{userId}' and deleted_at is not null")).Should().Be(1);
    }

    [Fact]
    public async Task A_missing_token_is_401_and_health_stays_open()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var anonymous = app.AnonymousClient();

        var response = await anonymous.GetAsync("/api/repos");

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.ToString().Should().Be("Bearer");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("Authorization: Bearer");
        (await anonymous.GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_service_without_any_signing_key_refuses_to_start_and_names_the_setting()
    {
        var db = await infra.CreateMigratedDatabaseAsync();

        var (exitCode, output) = await ServiceProcess.RunToExitAsync("CoTeX.Api", new()
        {
            ["ConnectionStrings__cotexdb"] = db,
            ["ConnectionStrings__redis"] = infra.Redis.ConnectionString,
            ["DataProtection__KeyEncryptionKey"] = TestTokens.KeyEncryptionKey,
        }, TimeSpan.FromSeconds(60));

        exitCode.Should().NotBe(0);
        output.Should().Contain("Auth:JwtSecret").And.Contain("Auth:JwksUrl");
    }

    private static Task<HttpResponseMessage> Get(ApiApp app, string token) =>
        app.AnonymousClient().WithToken(token).GetAsync("/api/repos");

    private static string Es256Token(ECDsaSecurityKey key, Guid userId, string? issuer = null) =>
        TestTokens.Create(
            TestTokens.Descriptor(userId, false, new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256)),
            d => d.Issuer = issuer);

    private static string Tamper(string token)
    {
        var parts = token.Split('.');
        var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1]))
            .Replace("\"role\":\"authenticated\"", "\"role\":\"service_role\"", StringComparison.Ordinal);
        return $"{parts[0]}.{Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(payload))}.{parts[2]}";
    }
}
