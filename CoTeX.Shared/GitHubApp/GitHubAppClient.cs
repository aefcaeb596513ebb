using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Shared.GitHubApp;

/// <summary>
/// The GitHub calls GitHub App mode makes, over plain HttpClient (a dozen endpoints; Octokit would bring a large
/// object model for them). Three identities:
/// <list type="bullet">
/// <item>the <b>user</b>, with the user access token from the app's user authorization: who they are, and which
/// installations and repositories they can access;</item>
/// <item>the <b>app</b>, with a JWT signed by the app's private key (RS256, ten minutes at most; one is reused for
/// eight): installations, and the app webhook's deliveries and redeliveries;</item>
/// <item>an <b>installation</b>, with an installation access token minted with the app JWT and cached until five
/// minutes before it expires: the repositories the installation covers.</item>
/// </list>
/// Tokens never reach a log or an exception message: errors name the method, the path and GitHub's message only.
/// A singleton, for its caches (the app JWT and the installation tokens).
/// </summary>
public sealed partial class GitHubAppClient(IHttpClientFactory httpClients, IOptions<GitHubAppOptions> options, TimeProvider time)
{
    /// <summary>The named HttpClient for GETs, retried on transient failures like every client.</summary>
    public const string HttpClientName = "github";

    /// <summary>The named HttpClient for POSTs, never retried (a code exchange or a redelivery must not happen twice).</summary>
    public const string UnretriedHttpClientName = "github-unretried";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };
    private static readonly TimeSpan AppJwtLifetime = TimeSpan.FromMinutes(9);
    private static readonly TimeSpan AppJwtReuse = TimeSpan.FromMinutes(8);
    private static readonly TimeSpan InstallationTokenMargin = TimeSpan.FromMinutes(5);

    private readonly GitHubAppOptions _options = options.Value;
    private readonly Lazy<RsaSecurityKey> _signingKey = new(() => new RsaSecurityKey(options.Value.LoadPrivateKey()));
    private readonly ConcurrentDictionary<long, (string Token, DateTimeOffset ExpiresAt)> _installationTokens = new();
    private readonly SemaphoreSlim _minting = new(1, 1);
    private (string Jwt, DateTimeOffset IssuedAt)? _appJwt;

    /// <summary>Where the user approves the app's authorization; GitHub then sends the browser to <paramref name="redirectUri"/>.</summary>
    public Uri AuthorizeUrl(string state, string redirectUri) =>
        new($"{Web("login/oauth/authorize")}?client_id={Uri.EscapeDataString(_options.ClientId!)}" +
            $"&redirect_uri={Uri.EscapeDataString(redirectUri)}&state={Uri.EscapeDataString(state)}");

    public Task<GitHubUserTokens> ExchangeCodeAsync(string code, string redirectUri, CancellationToken cancellationToken) =>
        TokenAsync(new Dictionary<string, string> { ["code"] = code, ["redirect_uri"] = redirectUri }, cancellationToken);

    public Task<GitHubUserTokens> RefreshAsync(string refreshToken, CancellationToken cancellationToken) =>
        TokenAsync(new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken },
            cancellationToken);

    public async Task<GitHubUser> GetUserAsync(string userToken, CancellationToken cancellationToken) =>
        await GetAsync<GitHubUser>(Api("user"), userToken, cancellationToken);

    public async Task<IReadOnlyList<GitHubInstallation>> GetUserInstallationsAsync(string userToken, CancellationToken cancellationToken)
    {
        var all = new List<GitHubInstallation>();
        await foreach (var page in PagesAsync<InstallationPage>(Api("user/installations?per_page=100"), () => userToken, cancellationToken))
        {
            all.AddRange(page.Installations);
        }
        return all;
    }

    public Task<IReadOnlyList<GitHubRepository>> GetUserInstallationRepositoriesAsync(string userToken, long installationId,
        CancellationToken cancellationToken) =>
        RepositoriesAsync(Api($"user/installations/{installationId}/repositories?per_page=100"), () => userToken, cancellationToken);

    /// <summary>The installation as the app sees it; null when it no longer exists.</summary>
    public async Task<GitHubInstallation?> GetInstallationAsync(long installationId, CancellationToken cancellationToken)
    {
        try
        {
            return await GetAsync<GitHubInstallation>(Api($"app/installations/{installationId}"), AppJwt(), cancellationToken);
        }
        catch (GitHubApiException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    public async Task<IReadOnlyList<GitHubRepository>> GetInstallationRepositoriesAsync(long installationId,
        CancellationToken cancellationToken)
    {
        var token = await InstallationTokenAsync(installationId, cancellationToken);
        return await RepositoriesAsync(Api("installation/repositories?per_page=100"), () => token, cancellationToken);
    }

    /// <summary>The app webhook's deliveries, newest first, a page of 100 at a time as the caller reads on.</summary>
    public async IAsyncEnumerable<GitHubHookDelivery> GetDeliveriesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var page in PagesAsync<GitHubHookDelivery[]>(Api("app/hook/deliveries?per_page=100"), AppJwt, cancellationToken))
        {
            foreach (var delivery in page)
            {
                yield return delivery;
            }
        }
    }

    /// <summary>Asks GitHub to send a delivery again (it arrives as a new attempt with the same delivery guid).</summary>
    public async Task RedeliverAsync(long deliveryId, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Post, Api($"app/hook/deliveries/{deliveryId}/attempts"), AppJwt());
        using var response = await SendAsync(request, cancellationToken);
        await EnsureSuccessAsync(request, response, cancellationToken);
    }

    private async Task<GitHubUserTokens> TokenAsync(Dictionary<string, string> grant, CancellationToken cancellationToken)
    {
        grant["client_id"] = _options.ClientId!;
        grant["client_secret"] = _options.ClientSecret!;
        using var request = new HttpRequestMessage(HttpMethod.Post, Web("login/oauth/access_token"))
        {
            Content = new FormUrlEncodedContent(grant),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await SendAsync(request, cancellationToken);
        await EnsureSuccessAsync(request, response, cancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
        // OAuth errors (an expired or used code, a revoked refresh token) come back as 200 with an error field.
        if (body.TryGetProperty("error", out var error))
        {
            var description = body.TryGetProperty("error_description", out var d) ? d.GetString() : null;
            // Only these say the grant itself is gone (and a connection holding it is revoked); the others (wrong client
            // credentials after a secret rotation, a redirect mismatch) are CoTeX's configuration, not the user's choice.
            var grantGone = error.GetString() is "bad_refresh_token" or "bad_verification_code";
            throw new GitHubApiException(grantGone ? HttpStatusCode.Unauthorized : null,
                $"GitHub refused the grant: {error.GetString()} ({description})");
        }
        var now = time.GetUtcNow();
        DateTimeOffset? After(string name) =>
            body.TryGetProperty(name, out var seconds) && seconds.ValueKind == JsonValueKind.Number ? now.AddSeconds(seconds.GetInt64()) : null;
        return new GitHubUserTokens(body.GetProperty("access_token").GetString()!, After("expires_in"),
            body.TryGetProperty("refresh_token", out var refresh) ? refresh.GetString() : null, After("refresh_token_expires_in"));
    }

    private async Task<string> InstallationTokenAsync(long installationId, CancellationToken cancellationToken)
    {
        if (_installationTokens.TryGetValue(installationId, out var cached) && cached.ExpiresAt - InstallationTokenMargin > time.GetUtcNow())
        {
            return cached.Token;
        }
        await _minting.WaitAsync(cancellationToken);
        try
        {
            if (_installationTokens.TryGetValue(installationId, out cached) && cached.ExpiresAt - InstallationTokenMargin > time.GetUtcNow())
            {
                return cached.Token;
            }
            using var request = Request(HttpMethod.Post, Api($"app/installations/{installationId}/access_tokens"), AppJwt());
            using var response = await SendAsync(request, cancellationToken);
            await EnsureSuccessAsync(request, response, cancellationToken);
            var minted = (await response.Content.ReadFromJsonAsync<InstallationToken>(Json, cancellationToken))!;
            _installationTokens[installationId] = (minted.Token, minted.ExpiresAt);
            return minted.Token;
        }
        finally
        {
            _minting.Release();
        }
    }

    /// <summary>A JWT the app signs to speak as itself (issued a minute early, as GitHub advises against clock drift).</summary>
    private string AppJwt()
    {
        var now = time.GetUtcNow();
        if (_appJwt is { } current && now - current.IssuedAt < AppJwtReuse)
        {
            return current.Jwt;
        }
        var issuedAt = now.AddSeconds(-60);
        var jwt = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _options.AppId,
            IssuedAt = issuedAt.UtcDateTime,
            Expires = issuedAt.Add(AppJwtLifetime).UtcDateTime,
            SigningCredentials = new SigningCredentials(_signingKey.Value, SecurityAlgorithms.RsaSha256),
        });
        _appJwt = (jwt, now);
        return jwt;
    }

    private async Task<IReadOnlyList<GitHubRepository>> RepositoriesAsync(Uri first, Func<string> token, CancellationToken cancellationToken)
    {
        var all = new List<GitHubRepository>();
        await foreach (var page in PagesAsync<RepositoryPage>(first, token, cancellationToken))
        {
            all.AddRange(page.Repositories);
        }
        return all;
    }

    /// <summary>Follows <c>Link: rel="next"</c>, only ever to GitHub's own API host (tokens go nowhere else).</summary>
    private async IAsyncEnumerable<T> PagesAsync<T>(Uri first, Func<string> token,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (Uri? next = first; next is not null;)
        {
            using var request = Request(HttpMethod.Get, next, token());
            using var response = await SendAsync(request, cancellationToken);
            await EnsureSuccessAsync(request, response, cancellationToken);
            yield return (await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken))!;
            next = response.Headers.TryGetValues("Link", out var links) && NextLink().Match(string.Join(',', links)) is { Success: true } match
                   && Uri.TryCreate(match.Groups[1].Value, UriKind.Absolute, out var link)
                   && Uri.Compare(link, _options.ApiBaseUrl, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0
                ? link
                : null;
        }
    }

    private async Task<T> GetAsync<T>(Uri uri, string token, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Get, uri, token);
        using var response = await SendAsync(request, cancellationToken);
        await EnsureSuccessAsync(request, response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken))!;
    }

    private static HttpRequestMessage Request(HttpMethod method, Uri uri, string token)
    {
        var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.github+json"));
        request.Headers.Add("X-GitHub-Api-Version", "2022-11-28");
        return request;
    }

    private static async Task EnsureSuccessAsync(HttpRequestMessage request, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        string? message = null;
        try
        {
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            message = body.TryGetProperty("message", out var m) ? m.GetString() : null;
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException)
        {
        }
        throw new GitHubApiException(response.StatusCode,
            $"GitHub answered {(int)response.StatusCode} to {request.Method} {request.RequestUri!.AbsolutePath}: {message ?? response.ReasonPhrase}");
    }


    private Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        httpClients.CreateClient(request.Method == HttpMethod.Get ? HttpClientName : UnretriedHttpClientName)
            .SendAsync(request, cancellationToken);

    private Uri Api(string relative) => new($"{_options.ApiBaseUrl.ToString().TrimEnd('/')}/{relative}");

    private Uri Web(string relative) => new($"{_options.WebBaseUrl.ToString().TrimEnd('/')}/{relative}");

    [GeneratedRegex("<([^>]+)>\\s*;\\s*rel=\"next\"")]
    private static partial Regex NextLink();

    private sealed record InstallationPage(GitHubInstallation[] Installations);

    private sealed record RepositoryPage(GitHubRepository[] Repositories);

    private sealed record InstallationToken(string Token, DateTimeOffset ExpiresAt);
}
