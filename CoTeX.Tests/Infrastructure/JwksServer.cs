using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Plays Supabase's <c>/auth/v1/.well-known/jwks.json</c>: serves the public halves of ES256 keys the test creates,
/// counts downloads, and can rotate to a new key.
/// </summary>
public sealed class JwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ECDsaSecurityKey> _keys = [];
    private int _downloads;

    private JwksServer(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;
    public int Downloads => Volatile.Read(ref _downloads);
    public ECDsaSecurityKey CurrentKey => _keys[^1];

    public static async Task<JwksServer> StartAsync()
    {
        var server = new JwksServer(LoopbackApp.Create());
        server.AddKey();
        server._app.MapGet("/auth/v1/.well-known/jwks.json", server.ServeKeys);
        var address = await LoopbackApp.StartAsync(server._app);
        server.Url = new Uri($"{address}/auth/v1/.well-known/jwks.json");
        return server;
    }

    /// <summary>Publishes a new signing key (the old ones stay published, as during a real rotation).</summary>
    public ECDsaSecurityKey AddKey()
    {
        lock (_keys)
        {
            var key = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = $"key-{_keys.Count + 1}" };
            _keys.Add(key);
            return key;
        }
    }

    /// <summary>The public JWK of <paramref name="key"/> as JSON, as the JWKS publishes it.</summary>
    public static string PublicJwk(ECDsaSecurityKey key)
    {
        var publicOnly = new ECDsaSecurityKey(ECDsa.Create(key.ECDsa.ExportParameters(includePrivateParameters: false)))
        {
            KeyId = key.KeyId,
        };
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(publicOnly);
        return JsonSerializer.Serialize(new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = jwk.Kid, alg = "ES256", use = "sig" });
    }

    private IResult ServeKeys()
    {
        Interlocked.Increment(ref _downloads);
        lock (_keys)
        {
            var keys = string.Join(",", _keys.Select(PublicJwk));
            return Results.Text($$"""{"keys":[{{keys}}]}""", "application/json");
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
