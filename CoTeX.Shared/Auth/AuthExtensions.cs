using System.Security.Claims;
using System.Text;
using CoTeX.Shared.Auth;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Supabase JWT authentication, the same in every service that has users (Api and Realtime).
/// </summary>
public static class AuthExtensions
{
    /// <summary>The only algorithms a token may use: HS256 with the project secret, ES256/RS256 with JWKS keys.</summary>
    private static readonly string[] SymmetricAlgorithms = [SecurityAlgorithms.HmacSha256];
    private static readonly string[] AsymmetricAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256];

    /// <param name="hubPaths">
    /// SignalR paths whose WebSocket and SSE requests may carry the token in the <c>access_token</c> query string
    /// (browsers cannot set headers on those). Everywhere else only the Authorization header counts.
    /// </param>
    public static TBuilder AddCoTeXAuthentication<TBuilder>(this TBuilder builder, params string[] hubPaths)
        where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddOptions<AuthOptions>()
            .BindConfiguration(AuthOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        builder.Services.AddMemoryCache();
        builder.Services.AddSingleton<UserProvisioner>();
        builder.Services.AddSingleton<AccountClosures>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AccountClosures>());
        builder.Services.AddHttpClient(JwksKeyCache.HttpClientName);
        builder.Services.AddSingleton<JwksKeyCache>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<JwksKeyCache>());

        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<AuthOptions>, JwksKeyCache>((jwt, authOptions, jwks) =>
                Configure(jwt, authOptions.Value, jwks, hubPaths));
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AdminPolicy.Name, policy => policy.RequireAuthenticatedUser().RequireAssertion(c => c.User.IsAdmin()));

        return builder;
    }

    private static void Configure(JwtBearerOptions jwt, AuthOptions auth, JwksKeyCache jwks, string[] hubPaths)
    {
        SecurityKey[] symmetricKeys = string.IsNullOrEmpty(auth.JwtSecret)
            ? []
            : [new SymmetricSecurityKey(Encoding.UTF8.GetBytes(auth.JwtSecret))];

        jwt.MapInboundClaims = false;
        jwt.RequireHttpsMetadata = false;
        // Nothing reads the raw token back (GetTokenAsync); not keeping a copy in the authentication properties saves
        // memory for every open Realtime connection.
        jwt.SaveToken = false;
        jwt.TokenValidationParameters = new TokenValidationParameters
        {
            ValidAlgorithms = [.. SymmetricAlgorithms, .. AsymmetricAlgorithms],
            // The key follows from the token's algorithm: HS256 only ever meets the project secret and ES256/RS256
            // only the JWKS keys, so a token "signed" with a public key as an HMAC secret finds nothing to verify.
            IssuerSigningKeyResolver = (_, token, kid, _) =>
                token is JsonWebToken { Alg: var alg } && SymmetricAlgorithms.Contains(alg) ? symmetricKeys
                : token is JsonWebToken { Alg: var asymmetric } && AsymmetricAlgorithms.Contains(asymmetric)
                    ? jwks.Keys.Where(k => kid is null || k.KeyId == kid)
                : [],
            ValidateIssuerSigningKey = true,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ClockSkew = TimeSpan.FromSeconds(auth.ClockSkewSeconds),
            ValidateAudience = true,
            ValidAudience = auth.Audience,
            ValidateIssuer = !string.IsNullOrEmpty(auth.Issuer),
            ValidIssuer = auth.Issuer,
            NameClaimType = CurrentUser.SubjectClaim,
            RoleClaimType = "role",
        };

        jwt.Events = new JwtBearerEvents
        {
            OnMessageReceived = async context =>
            {
                if (IsHubRequest(context.Request, hubPaths)
                    && context.Request.Query["access_token"] is { Count: 1 } queryToken
                    && !string.IsNullOrEmpty(queryToken[0]))
                {
                    context.Token = queryToken[0];
                }

                // A token naming a key we have not seen may be signed with a freshly rotated one: fetch the set again.
                var token = context.Token ?? BearerToken(context.Request);
                if (jwks.Enabled && token is not null && TryReadHeader(token, out var alg, out var kid)
                    && AsymmetricAlgorithms.Contains(alg) && !jwks.Knows(kid))
                {
                    await jwks.RefreshIfAllowedAsync(context.HttpContext.RequestAborted);
                }
            },
            OnTokenValidated = async context =>
            {
                if (context.Principal is null || !context.Principal.TryGetUserId(out var userId))
                {
                    context.Fail("The token's sub claim must be a user id (UUID).");
                    return;
                }
                var provisioner = context.HttpContext.RequestServices.GetRequiredService<UserProvisioner>();
                if (!await provisioner.EnsureUserAsync(context.Principal, context.HttpContext.RequestAborted))
                {
                    context.Fail("The token's account has been deleted.");
                    return;
                }
                if (IsHubRequest(context.Request, hubPaths))
                {
                    // SignalR closes a hub connection when its token expires (CloseOnAuthenticationExpiration reads the
                    // ExpiresUtc the handler set from exp). A token already past exp would be closed at once, so it is
                    // refused here: the clock skew allowance does not apply to a hub connection's exp.
                    var now = (context.Options.TimeProvider ?? TimeProvider.System).GetUtcNow();
                    if (context.Properties.ExpiresUtc is not { } expires || expires <= now)
                    {
                        context.Fail(ExpiredHubTokenMessage);
                        return;
                    }
                    // A hub connection keeps its request for hours. Keep only what the hub and SignalR read (the user
                    // id, the expiry), not the parsed token with its claims nor the raw header: ~2 KB per open
                    // connection (docs/benchmarks.md).
                    context.Principal = new ClaimsPrincipal(new ClaimsIdentity(
                        [new Claim(CurrentUser.SubjectClaim, userId.ToString())], context.Scheme.Name, CurrentUser.SubjectClaim, "role"));
                    context.Properties.IssuedUtc = null;
                    context.Request.Headers.Authorization = default;
                }
            },
            // 401 and 403 say why in a ProblemDetails body, like every other error.
            OnChallenge = async context =>
            {
                context.HandleResponse();
                var detail = context.AuthenticateFailure is null
                    ? "This endpoint needs a Supabase access token: Authorization: Bearer <jwt>."
                    : $"The access token was rejected: {Describe(context.AuthenticateFailure)}";
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await WriteProblemAsync(context.HttpContext, StatusCodes.Status401Unauthorized, "Unauthorized", detail);
            },
            OnForbidden = context =>
                WriteProblemAsync(context.HttpContext, StatusCodes.Status403Forbidden, "Forbidden",
                    "The access token is valid but does not allow this request."),
        };
    }

    /// <summary>Why a hub connection's token is refused once its exp has passed (within the clock skew allowance).</summary>
    private const string ExpiredHubTokenMessage = "The token's exp has passed; a hub connection needs a token that has not expired.";

    private static bool IsHubRequest(HttpRequest request, string[] hubPaths) =>
        hubPaths.Length > 0 && hubPaths.Any(p => request.Path.StartsWithSegments(p));

    private static string? BearerToken(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        return header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? header["Bearer ".Length..].Trim()
            : null;
    }

    private static bool TryReadHeader(string token, out string? alg, out string? kid)
    {
        alg = kid = null;
        try
        {
            var jwt = new JsonWebToken(token);
            (alg, kid) = (jwt.Alg, jwt.Kid);
            return true;
        }
        catch (ArgumentException)
        {
            return false; // Not a JWT at all; validation will say so.
        }
    }

    /// <summary>A short, safe reason: which check failed, never the token or key material.</summary>
    private static string Describe(Exception failure) => failure switch
    {
        SecurityTokenExpiredException => "it has expired.",
        SecurityTokenNotYetValidException => "it is not valid yet.",
        SecurityTokenInvalidAudienceException => "its audience (aud) is not accepted.",
        SecurityTokenInvalidIssuerException => "its issuer (iss) is not accepted.",
        SecurityTokenInvalidAlgorithmException => "its signing algorithm is not allowed.",
        SecurityTokenSignatureKeyNotFoundException => "no known key matches its signature.",
        SecurityTokenInvalidSignatureException => "its signature is invalid.",
        SecurityTokenNoExpirationException => "it has no expiry (exp).",
        SecurityTokenMalformedException => "it is not a well-formed JWT.",
        AuthenticationFailureException => failure.Message,
        _ when failure.Message.StartsWith("The token's", StringComparison.Ordinal) => failure.Message,
        _ => "it could not be validated.",
    };

    private static async Task WriteProblemAsync(HttpContext context, int status, string title, string detail)
    {
        context.Response.StatusCode = status;
        var problems = context.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }
}
