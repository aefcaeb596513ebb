using System.Net.Http.Headers;
using System.Net.Http.Json;
using CoTeX.Contracts;

namespace CoTeX.Client;

/// <summary>
/// CoTeX for a desktop client: the REST API (repos, event history) and <see cref="Watch"/>, the live feed that
/// resumes where it left off.
/// </summary>
public sealed class CoTeXClient : IDisposable
{
    private readonly CoTeXClientOptions _options;
    private readonly HttpClient _http;

    public CoTeXClient(CoTeXClientOptions options, HttpMessageHandler? handler = null)
    {
        _options = options;
        _http = new HttpClient(new BearerTokenHandler(options.AccessTokenProvider) { InnerHandler = handler ?? new SocketsHttpHandler() })
        {
            BaseAddress = options.ApiUrl,
        };
    }

    /// <summary>
    /// A live feed of the user's events. Pass the highest position you hold (persisted from
    /// <see cref="CoTeXFeed.Position"/>) to receive everything missed since, in order, before new events.
    /// </summary>
    public CoTeXFeed Watch(long? fromPosition = null) => new(_options, fromPosition);

    public Task<RepoList> ListReposAsync(CancellationToken cancellationToken = default) =>
        GetAsync<RepoList>("/api/repos", cancellationToken);

    public Task<CreatedRepo> AddRepoAsync(string fullName, CancellationToken cancellationToken) =>
        AddRepoAsync(fullName, source: null, cancellationToken);

    /// <summary>
    /// Tracks a repository: through CoTeX's GitHub App when the user can access it there (nothing to set up), else with
    /// a webhook whose URL and secret the answer holds. <paramref name="source"/> (<see cref="RepoSources"/>) insists
    /// on one of the two.
    /// </summary>
    public async Task<CreatedRepo> AddRepoAsync(string fullName, string? source = null, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync("/api/repos", new CreateRepoRequest(fullName, source), cancellationToken);
        return await ReadAsync<CreatedRepo>(response, cancellationToken);
    }

    /// <summary>Whether GitHub App mode is on, and the user's GitHub connection with the repositories it gives access to.</summary>
    public Task<GitHubAppStatus> GetGitHubAppAsync(CancellationToken cancellationToken = default) =>
        GetAsync<GitHubAppStatus>("/api/github-app", cancellationToken);

    /// <summary>Starts Connect GitHub: open the returned URL in a browser, then poll <see cref="GetGitHubAppAsync"/>.</summary>
    public async Task<GitHubConnectStart> ConnectGitHubAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsync("/api/github-app/connect", content: null, cancellationToken);
        return await ReadAsync<GitHubConnectStart>(response, cancellationToken);
    }

    /// <summary>A new webhook secret for the repo; the old one stops working at once.</summary>
    public async Task<RotatedSecret> RotateSecretAsync(Guid repoId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsync($"/api/repos/{repoId}/rotate-secret", content: null, cancellationToken);
        return await ReadAsync<RotatedSecret>(response, cancellationToken);
    }

    public async Task RemoveRepoAsync(Guid repoId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"/api/repos/{repoId}", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    public Task<GitHubEventPage> GetEventsAsync(Guid? repoId = null, string? type = null, int? limit = null,
        string? cursor = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (repoId is not null) query.Add($"repoId={repoId}");
        if (type is not null) query.Add($"type={Uri.EscapeDataString(type)}");
        if (limit is not null) query.Add($"limit={limit}");
        if (cursor is not null) query.Add($"cursor={Uri.EscapeDataString(cursor)}");
        return GetAsync<GitHubEventPage>("/api/github-events" + (query.Count > 0 ? "?" + string.Join('&', query) : ""), cancellationToken);
    }

    public Task<GitHubEventDetail> GetEventAsync(long id, CancellationToken cancellationToken = default) =>
        GetAsync<GitHubEventDetail>($"/api/github-events/event?id={id}", cancellationToken);

    private async Task<T> GetAsync<T>(string url, CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(url, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await EnsureSuccessAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync<T>(cancellationToken))!;
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new CoTeXApiException(response.StatusCode, body);
        }
    }

    public void Dispose() => _http.Dispose();

    private sealed class BearerTokenHandler(Func<CancellationToken, ValueTask<string>> tokens) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await tokens(cancellationToken));
            return await base.SendAsync(request, cancellationToken);
        }
    }
}

/// <summary>The Api answered with an error; <see cref="Problem"/> is its ProblemDetails body.</summary>
public sealed class CoTeXApiException(System.Net.HttpStatusCode status, string problem)
    : Exception($"CoTeX answered {(int)status} {status}: {problem}")
{
    public System.Net.HttpStatusCode Status { get; } = status;
    public string Problem { get; } = problem;
}
