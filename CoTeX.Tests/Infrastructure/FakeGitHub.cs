using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CoTeX.DevTools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A stateful stand-in for the GitHub a GitHub App sees, on loopback: the user authorization (codes, user tokens that
/// expire, refresh tokens), who can access which repositories of which installation, app JWTs checked against the
/// app's public key, installation tokens, and the app's webhook: it delivers signed events to CoTeX, records each
/// attempt's status as GitHub does, lists them, and redelivers on request. Lists are paged by
/// <see cref="PageSize"/> (2 by default) with Link headers, so the product's paging is exercised.
/// </summary>
public sealed class FakeGitHub : IAsyncDisposable
{
    public const string AppId = "424242";
    public const string ClientId = "Iv23cotextestclient";
    public const string ClientSecret = "cotex-test-client-secret";
    public const string WebhookSecret = "cotex-test-app-webhook-secret";

    private readonly WebApplication _app;
    private readonly RSA _appKey = RSA.Create(2048);
    private readonly object _lock = new();
    private readonly Dictionary<long, string> _users = [];
    private readonly Dictionary<long, Installation> _installations = [];
    private readonly Dictionary<long, HashSet<long>> _access = [];          // GitHub user id → repository ids
    private readonly Dictionary<(long User, long Repository), string> _roles = []; // read unless set: read, triage, write, maintain, admin
    private TaskCompletionSource? _listingArrived;
    private TaskCompletionSource? _listingReleased;
    private readonly Dictionary<string, long> _codes = [];
    private readonly Dictionary<string, (long User, DateTimeOffset ExpiresAt)> _userTokens = [];
    private readonly Dictionary<string, long> _refreshTokens = [];
    private readonly Dictionary<string, long> _installationTokens = [];
    private readonly List<Delivery> _deliveries = [];
    private readonly ConcurrentQueue<(DateTimeOffset At, string Call)> _calls = new();
    private long _nextDeliveryId = 1000;

    private FakeGitHub(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = null!;

    /// <summary>Where the app's webhook deliveries go (the Api under test).</summary>
    public HttpClient? WebhookClient { get; set; }

    public int PageSize { get; set; } = 2;

    /// <summary>How long every call made with a user's token takes to answer (a slow GitHub).</summary>
    public TimeSpan UserCallLatency { get; set; } = TimeSpan.Zero;

    /// <summary>How long user tokens live (GitHub: 8 hours).</summary>
    public TimeSpan UserTokenLifetime { get; set; } = TimeSpan.FromHours(8);

    /// <summary>Every API call the product made, as "GET /user/installations".</summary>
    public IReadOnlyList<string> Calls => _calls.Select(c => c.Call).ToArray();

    /// <summary>When each API call arrived.</summary>
    public IReadOnlyList<(DateTimeOffset At, string Call)> TimedCalls => _calls.ToArray();

    public int InstallationTokensMinted { get; private set; }

    public IReadOnlyList<Delivery> Deliveries { get { lock (_lock) { return _deliveries.ToList(); } } }

    /// <summary>The settings that point the product at this fake, as the AppHost's github-app-* parameters would.</summary>
    public Dictionary<string, string?> Settings => new()
    {
        ["GitHubApp:AppId"] = AppId,
        ["GitHubApp:ClientId"] = ClientId,
        ["GitHubApp:ClientSecret"] = ClientSecret,
        ["GitHubApp:PrivateKey"] = _appKey.ExportRSAPrivateKeyPem(),
        ["GitHubApp:WebhookSecret"] = WebhookSecret,
        ["GitHubApp:WebBaseUrl"] = BaseUrl,
        ["GitHubApp:ApiBaseUrl"] = BaseUrl,
    };

    public sealed record Installation(long Id, string Account, string AccountType, Dictionary<long, string> Repositories)
    {
        public DateTimeOffset? SuspendedAt { get; set; }
        public DateTimeOffset UpdatedAt { get; set; } = DateTimeOffset.UtcNow;
    }

    public sealed record Delivery(long Id, string Guid, string Event, string? Action, byte[] Body, DateTimeOffset DeliveredAt,
        bool Redelivery, int StatusCode, string Response);

    public static async Task<FakeGitHub> StartAsync()
    {
        var fake = new FakeGitHub(LoopbackApp.Create());
        fake.Map();
        fake.BaseUrl = await LoopbackApp.StartAsync(fake._app);
        return fake;
    }

    public void AddUser(long id, string login)
    {
        lock (_lock)
        {
            _users[id] = login;
            _access.TryAdd(id, []);
        }
    }

    public Installation AddInstallation(long id, string account, string accountType, params (long Id, string FullName)[] repositories)
    {
        lock (_lock)
        {
            return _installations[id] = new Installation(id, account, accountType, repositories.ToDictionary(r => r.Id, r => r.FullName));
        }
    }

    /// <summary>The user can now (or no longer) access these repositories on GitHub.</summary>
    public void Grant(long userId, params long[] repositories)
    {
        lock (_lock)
        {
            _access[userId].UnionWith(repositories);
        }
    }

    /// <summary>
    /// The user's role on these repositories (GitHub's five: read, triage, write, maintain, admin), as GitHub lists it
    /// in each repository's <c>permissions</c> for the user's token. Read unless set.
    /// </summary>
    public void SetRole(long userId, string role, params long[] repositories)
    {
        lock (_lock)
        {
            foreach (var repository in repositories)
            {
                _roles[(userId, repository)] = role;
            }
        }
    }

    /// <summary>
    /// The next listing of a user's repositories in an installation waits, after GitHub has read its answer, until
    /// <paramref name="release"/> completes. Returns when that listing has arrived, so the caller can change things
    /// (as someone on GitHub or in CoTeX would) while the product waits on GitHub.
    /// </summary>
    public Task HoldNextRepositoryListing(Task release)
    {
        lock (_lock)
        {
            _listingArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            release.ContinueWith(_ => released.TrySetResult(), TaskScheduler.Default);
            _listingReleased = released;
            return _listingArrived.Task;
        }
    }

    public void Deny(long userId, params long[] repositories)
    {
        lock (_lock)
        {
            _access[userId].ExceptWith(repositories);
        }
    }

    /// <summary>An owner suspends (or unsuspends) the installation; GitHub moves its <c>updated_at</c> as it does for any change.</summary>
    public Installation Suspend(long installationId, bool suspended)
    {
        lock (_lock)
        {
            var installation = _installations[installationId];
            installation.SuspendedAt = suspended ? DateTimeOffset.UtcNow : null;
            installation.UpdatedAt = DateTimeOffset.UtcNow;
            return installation;
        }
    }

    /// <summary>An owner takes the repository out of the installation.</summary>
    public void RemoveRepository(long installationId, long repositoryId)
    {
        lock (_lock)
        {
            _installations[installationId].Repositories.Remove(repositoryId);
        }
    }

    public void Uninstall(long installationId)
    {
        lock (_lock)
        {
            _installations.Remove(installationId);
        }
    }

    /// <summary>The user revokes the app's authorization on GitHub: their tokens stop working.</summary>
    public void RevokeTokens(long userId)
    {
        lock (_lock)
        {
            foreach (var token in _userTokens.Where(t => t.Value.User == userId).Select(t => t.Key).ToList())
            {
                _userTokens.Remove(token);
            }
            foreach (var token in _refreshTokens.Where(t => t.Value == userId).Select(t => t.Key).ToList())
            {
                _refreshTokens.Remove(token);
            }
        }
    }

    /// <summary>Every user token expires now (the refresh tokens stay good).</summary>
    public void ExpireUserTokens()
    {
        lock (_lock)
        {
            foreach (var token in _userTokens.Keys.ToList())
            {
                _userTokens[token] = (_userTokens[token].User, DateTimeOffset.UtcNow.AddSeconds(-1));
            }
        }
    }

    /// <summary>
    /// What the user's browser does at GitHub's authorize URL when <paramref name="userId"/> is signed in and approves:
    /// the callback URL GitHub redirects to, with a fresh code and the state.
    /// </summary>
    public string Approve(string authorizeUrl, long userId)
    {
        var query = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(authorizeUrl).Query);
        query["client_id"].ToString().Should().Be(ClientId);
        var code = "code_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        lock (_lock)
        {
            _codes[code] = userId;
        }
        return $"{query["redirect_uri"]}?code={code}&state={Uri.EscapeDataString(query["state"]!)}";
    }

    /// <summary>Sends an event to the app's webhook as GitHub does (signed, with a new delivery guid) and records the attempt.</summary>
    public async Task<Delivery> DeliverAsync(string eventType, byte[] body, string? guid = null, bool redelivery = false,
        string secret = WebhookSecret)
    {
        var client = WebhookClient ?? throw new InvalidOperationException("Set WebhookClient first.");
        guid ??= Guid.NewGuid().ToString();
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/webhooks/github-app")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        request.Headers.Add("X-GitHub-Event", eventType);
        request.Headers.Add("X-GitHub-Delivery", guid);
        request.Headers.Add("X-GitHub-Hook-Installation-Target-Type", "integration");
        request.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(secret, body));
        request.Headers.UserAgent.ParseAdd("GitHub-Hookshot/fake");
        int status;
        string answer;
        try
        {
            using var response = await client.SendAsync(request);
            status = (int)response.StatusCode;
            answer = await response.Content.ReadAsStringAsync();
        }
        catch (HttpRequestException ex)
        {
            (status, answer) = (0, ex.Message); // GitHub records a failed connection as status 0 too
        }
        string? action = null;
        try
        {
            action = JsonNode.Parse(body)?["action"]?.GetValue<string>();
        }
        catch (System.Text.Json.JsonException)
        {
        }
        var delivery = new Delivery(Interlocked.Increment(ref _nextDeliveryId), guid, eventType, action, body, DateTimeOffset.UtcNow,
            redelivery, status, answer);
        lock (_lock)
        {
            _deliveries.Add(delivery);
        }
        return delivery;
    }

    private void Map()
    {
        _app.Use(async (context, next) =>
        {
            _calls.Enqueue((DateTimeOffset.UtcNow, $"{context.Request.Method} {context.Request.Path}"));
            if (UserCallLatency > TimeSpan.Zero && context.Request.Path.StartsWithSegments("/user"))
            {
                await Task.Delay(UserCallLatency);
            }
            await next(context);
        });

        _app.MapPost("/login/oauth/access_token", async (HttpRequest request) =>
        {
            var form = await request.ReadFormAsync();
            if (form["client_id"] != ClientId || form["client_secret"] != ClientSecret)
            {
                return Results.Json(new { error = "incorrect_client_credentials", error_description = "The client_id and/or client_secret passed are incorrect." });
            }
            long user;
            lock (_lock)
            {
                if (form["grant_type"] == "refresh_token")
                {
                    if (!_refreshTokens.Remove(form["refresh_token"].ToString(), out user))
                    {
                        return Results.Json(new { error = "bad_refresh_token", error_description = "The refresh token passed is incorrect or expired." });
                    }
                }
                else if (!_codes.Remove(form["code"].ToString(), out user))
                {
                    return Results.Json(new { error = "bad_verification_code", error_description = "The code passed is incorrect or expired." });
                }
                var token = "ghu_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
                var refresh = "ghr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
                _userTokens[token] = (user, DateTimeOffset.UtcNow + UserTokenLifetime);
                _refreshTokens[refresh] = user;
                return Results.Json(new
                {
                    access_token = token, expires_in = (long)UserTokenLifetime.TotalSeconds, refresh_token = refresh,
                    refresh_token_expires_in = 15_897_600, token_type = "bearer", scope = "",
                });
            }
        });

        _app.MapGet("/user", (HttpRequest request) =>
            UserOf(request) is { } user ? Results.Json(new { id = user, login = _users[user], type = "User" }) : Unauthorized());

        _app.MapGet("/user/installations", (HttpRequest request) =>
        {
            if (UserOf(request) is not { } user)
            {
                return Unauthorized();
            }
            var visible = VisibleInstallations(user).Select(InstallationJson).ToList();
            return Page(request, visible, "installations");
        });

        _app.MapGet("/user/installations/{id:long}/repositories", async (long id, HttpRequest request) =>
        {
            if (UserOf(request) is not { } user)
            {
                return Unauthorized();
            }
            if (VisibleInstallations(user).FirstOrDefault(i => i.Id == id) is not { } installation)
            {
                return NotFound();
            }
            IResult answer;
            TaskCompletionSource? arrived, released;
            lock (_lock)
            {
                // GitHub lists each repository with the user's permissions on it (the five roles' flags).
                var repositories = installation.Repositories.Where(r => _access[user].Contains(r.Key))
                    .Select(r => UserRepositoryJson(r, _roles.GetValueOrDefault((user, r.Key), "read"))).ToList();
                answer = Page(request, repositories, "repositories");
                (arrived, released, _listingArrived, _listingReleased) = (_listingArrived, _listingReleased, null, null);
            }
            if (arrived is not null)
            {
                arrived.TrySetResult();
                await released!.Task; // the answer was read before the hold: it is as old as the hold is long
            }
            return answer;
        });

        _app.MapPost("/app/installations/{id:long}/access_tokens", (long id, HttpRequest request) =>
        {
            if (!IsAppJwt(request))
            {
                return Unauthorized();
            }
            lock (_lock)
            {
                if (!_installations.TryGetValue(id, out var installation))
                {
                    return NotFound();
                }
                if (installation.SuspendedAt is not null)
                {
                    return Results.Json(new { message = "This installation has been suspended" }, statusCode: 403);
                }
                var token = "ghs_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
                _installationTokens[token] = id;
                InstallationTokensMinted++;
                return Results.Json(new { token, expires_at = DateTimeOffset.UtcNow.AddHours(1) }, statusCode: 201);
            }
        });

        _app.MapGet("/app/installations/{id:long}", (long id, HttpRequest request) =>
        {
            if (!IsAppJwt(request))
            {
                return Unauthorized();
            }
            lock (_lock)
            {
                return _installations.TryGetValue(id, out var installation) ? Results.Json(InstallationJson(installation)) : NotFound();
            }
        });

        _app.MapGet("/installation/repositories", (HttpRequest request) =>
        {
            lock (_lock)
            {
                if (!_installationTokens.TryGetValue(Bearer(request) ?? "", out var id) || !_installations.TryGetValue(id, out var installation))
                {
                    return Unauthorized();
                }
                return Page(request, installation.Repositories.Select(RepositoryJson).ToList(), "repositories");
            }
        });

        _app.MapGet("/app/hook/deliveries", (HttpRequest request) =>
        {
            if (!IsAppJwt(request))
            {
                return Unauthorized();
            }
            var all = Deliveries.OrderByDescending(d => d.Id).Select(d => (JsonNode)new JsonObject
            {
                ["id"] = d.Id, ["guid"] = d.Guid, ["delivered_at"] = d.DeliveredAt.ToString("O", CultureInfo.InvariantCulture),
                ["redelivery"] = d.Redelivery, ["duration"] = 0.1,
                ["status"] = d.StatusCode is >= 200 and < 300 ? "OK" : "Invalid HTTP Response: " + d.StatusCode,
                ["status_code"] = d.StatusCode, ["event"] = d.Event, ["action"] = d.Action,
            }).ToList();
            return Page(request, all, itemsProperty: null);
        });

        _app.MapPost("/app/hook/deliveries/{id:long}/attempts", (long id, HttpRequest request) =>
        {
            if (!IsAppJwt(request))
            {
                return Unauthorized();
            }
            var original = Deliveries.FirstOrDefault(d => d.Id == id);
            if (original is null)
            {
                return NotFound();
            }
            // GitHub sends it again shortly after answering.
            _ = Task.Run(() => DeliverAsync(original.Event, original.Body, original.Guid, redelivery: true));
            return Results.Json(new { }, statusCode: 202);
        });
    }

    private long? UserOf(HttpRequest request)
    {
        lock (_lock)
        {
            return Bearer(request) is { } token && _userTokens.TryGetValue(token, out var entry) && entry.ExpiresAt > DateTimeOffset.UtcNow
                ? entry.User
                : null;
        }
    }

    /// <summary>Installations the user can reach: not suspended-hidden, with at least one repository they can access.</summary>
    private List<Installation> VisibleInstallations(long user)
    {
        lock (_lock)
        {
            return _installations.Values.Where(i => i.Repositories.Keys.Any(_access[user].Contains)).OrderBy(i => i.Id).ToList();
        }
    }

    /// <summary>A JWT signed with the app's key, issued by the app, living ten minutes at most, as GitHub requires.</summary>
    private bool IsAppJwt(HttpRequest request)
    {
        if (Bearer(request) is not { } jwt)
        {
            return false;
        }
        var result = new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = AppId,
            ValidateAudience = false,
            IssuerSigningKey = new RsaSecurityKey(_appKey.ExportParameters(false)),
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ClockSkew = TimeSpan.FromSeconds(60),
        }).GetAwaiter().GetResult();
        if (!result.IsValid)
        {
            return false;
        }
        var token = (JsonWebToken)result.SecurityToken;
        return token.ValidTo - token.IssuedAt <= TimeSpan.FromMinutes(10);
    }

    private static string? Bearer(HttpRequest request) =>
        AuthenticationHeaderValue.TryParse(request.Headers.Authorization, out var header) && header.Scheme == "Bearer" ? header.Parameter : null;

    /// <summary>One page (<c>page</c>, <see cref="PageSize"/> items), with a Link to the next as GitHub writes it.</summary>
    private IResult Page(HttpRequest request, List<JsonNode> items, string? itemsProperty)
    {
        var page = int.TryParse(request.Query["page"], out var p) ? p : 1;
        var slice = items.Skip((page - 1) * PageSize).Take(PageSize).Select(i => i.DeepClone()).ToArray();
        if (page * PageSize < items.Count)
        {
            var next = $"{BaseUrl}{request.Path}?per_page={request.Query["per_page"]}&page={page + 1}";
            request.HttpContext.Response.Headers["Link"] = $"<{next}>; rel=\"next\", <{BaseUrl}{request.Path}?page=999>; rel=\"last\"";
        }
        JsonNode body = itemsProperty is null
            ? new JsonArray(slice)
            : new JsonObject { ["total_count"] = items.Count, [itemsProperty] = new JsonArray(slice) };
        return Results.Text(body.ToJsonString(), "application/json");
    }

    private static JsonNode InstallationJson(Installation i) => new JsonObject
    {
        ["id"] = i.Id,
        ["account"] = new JsonObject { ["login"] = i.Account, ["type"] = i.AccountType },
        ["suspended_at"] = i.SuspendedAt?.ToString("O", CultureInfo.InvariantCulture),
        ["updated_at"] = i.UpdatedAt.ToString("O", CultureInfo.InvariantCulture),
    };

    private static JsonNode RepositoryJson(KeyValuePair<long, string> r) => new JsonObject { ["id"] = r.Key, ["full_name"] = r.Value };

    private static readonly string[] Roles = ["read", "triage", "write", "maintain", "admin"];

    /// <summary>A repository in a user's listing: GitHub's <c>permissions</c> has each role's flag, true up to the user's.</summary>
    private static JsonNode UserRepositoryJson(KeyValuePair<long, string> r, string role)
    {
        var rank = Array.IndexOf(Roles, role);
        var json = RepositoryJson(r);
        json["permissions"] = new JsonObject
        {
            ["admin"] = rank >= 4, ["maintain"] = rank >= 3, ["push"] = rank >= 2, ["triage"] = rank >= 1, ["pull"] = rank >= 0,
        };
        return json;
    }

    private static IResult Unauthorized() => Results.Json(new { message = "Bad credentials" }, statusCode: 401);

    private static IResult NotFound() => Results.Json(new { message = "Not Found" }, statusCode: 404);

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        _appKey.Dispose();
    }
}
