using System.Security.Claims;
using System.Security.Cryptography;
using CoTeX.Contracts;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Data;
using CoTeX.Shared.DataProtection;
using CoTeX.Shared.GitHubApp;
using CoTeX.Shared.Web;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CoTeX.Api.GitHubApp;

/// <summary>
/// Connect GitHub: the caller's GitHub account, through the GitHub App's user authorization.
/// <list type="number">
/// <item><c>POST /api/github-app/connect</c> (the desktop client) returns GitHub's authorization URL with a signed
/// state that names the CoTeX user and a one-time nonce, and expires after <see cref="GitHubAppOptions.ConnectSeconds"/>.</item>
/// <item>GitHub sends the browser to <c>GET /api/github-app/callback?code&amp;state</c>: the state is checked (400 page
/// when tampered with, expired or used), the code exchanged, and a page asks the person to confirm which CoTeX
/// account the GitHub account joins.</item>
/// <item>The page's <c>POST /api/github-app/callback</c> reads from GitHub what that account can access through the
/// app's installations, records it, and says what was connected; <c>GET /api/github-app</c> shows it to the client.</item>
/// </list>
/// </summary>
public static class GitHubAppApi
{
    private const string CallbackPath = "/api/github-app/callback";

    public static void MapGitHubAppApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/github-app").WithTags("GitHub App").RequireAuthorization().RequireRateLimit(RateLimitPolicy.PerUser)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapGet("/", StatusAsync).WithSummary("Whether GitHub App mode is on, and the caller's GitHub connection.");
        api.MapPost("/connect", ConnectAsync).WithSummary("Starts connecting the caller's GitHub account: returns the URL to open.")
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/recheck", RecheckAsync)
            .WithSummary("Asks GitHub again, now, what the caller can access through the app (once per GitHubApp:RecheckCooldownSeconds).")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        api.MapDelete("/", DisconnectAsync).WithSummary("Disconnects the caller's GitHub account; app-delivered repos receive nothing until they connect again.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        // The browser's half: GitHub's redirect and the confirmation form. No CoTeX token here; the state binds the user.
        var browser = app.MapGroup(CallbackPath).WithTags("GitHub App").AllowAnonymous().RequireRateLimit(RateLimitPolicy.PerIp)
            .WithMetadata(new Microsoft.AspNetCore.Cors.DisableCorsAttribute());
        browser.MapGet("/", CallbackAsync).WithSummary("GitHub's redirect after the user authorized the app: asks them to confirm.")
            .Produces(StatusCodes.Status200OK, contentType: "text/html").Produces(StatusCodes.Status400BadRequest, contentType: "text/html")
            .Produces(StatusCodes.Status503ServiceUnavailable, contentType: "text/html");
        browser.MapPost("/", ConfirmAsync).WithSummary("The confirmation form: connects the GitHub account.").DisableAntiforgery()
            .Produces(StatusCodes.Status200OK, contentType: "text/html").Produces(StatusCodes.Status400BadRequest, contentType: "text/html")
            .Produces(StatusCodes.Status503ServiceUnavailable, contentType: "text/html");
    }

    internal static async Task<Ok<GitHubAppStatus>> StatusAsync(ClaimsPrincipal user, NpgsqlDataSource dataSource,
        IOptions<GitHubAppOptions> app, CancellationToken cancellationToken)
    {
        var userId = user.GetUserId();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (await ConnectStateQueries.ConnectionAsync(connection, userId, cancellationToken) is not { } row)
        {
            return TypedResults.Ok(new GitHubAppStatus(app.Value.IsEnabled, null));
        }
        var repositories = (await GitHubAccessQueries.StatusAsync(connection, userId, cancellationToken))
            .Select(r => new AppRepository(r.FullName, r.Account, r.Suspended, r.Tracked, r.Role.ToString().ToLowerInvariant()))
            .ToArray();
        return TypedResults.Ok(new GitHubAppStatus(app.Value.IsEnabled, new GitHubConnection(row.Login, row.ConnectedAt.AsUtcOffset(),
            row.CheckedAt.AsUtcOffset(), row.RevokedAt.AsUtcOffset(), repositories)));
    }

    internal static async Task<Results<Ok<GitHubConnectStart>, ProblemHttpResult>> ConnectAsync(
        ClaimsPrincipal user, HttpContext context, [AsParameters] GitHubAppServices services, CancellationToken cancellationToken)
    {
        var app = services.App;
        if (!app.Value.IsEnabled)
        {
            return ModeOff();
        }
        if (user.IsAnonymous())
        {
            // GitHub access is a person's: the confirmation page names the CoTeX account the GitHub account joins, and an
            // anonymous sign-in is nobody the person could recognise (nor keep: it is lost with the device).
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Sign in to connect GitHub",
                detail: "An anonymous CoTeX session cannot connect a GitHub account. Sign in with an email or a provider first.");
        }
        var userId = user.GetUserId();
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        await ConnectStateQueries.CreateAsync(services.DataSource, nonce, userId, cancellationToken);
        var expiresAt = services.Time.GetUtcNow().AddSeconds(app.Value.ConnectSeconds);
        var url = services.GitHub.AuthorizeUrl(services.States.Protect(userId, nonce, expiresAt),
            services.Api.Value.PublicUrl(context.Request, CallbackPath));
        return TypedResults.Ok(new GitHubConnectStart(url.ToString(), expiresAt));
    }

    /// <summary>
    /// One re-check per user at a time (across processes), and one per cooldown: each holds no database connection
    /// while GitHub answers, so however many a user sends, the pool stays free for GitHub's deliveries.
    /// </summary>
    internal static async Task<Results<Ok<GitHubAppStatus>, ProblemHttpResult>> RecheckAsync(
        ClaimsPrincipal user, HttpContext context, NpgsqlDataSource dataSource, GitHubConnections connections,
        IOptions<GitHubAppOptions> app, CancellationToken cancellationToken)
    {
        if (!app.Value.IsEnabled)
        {
            return ModeOff();
        }
        try
        {
            var result = await connections.RecheckAsync(user.GetUserId(), cancellationToken,
                cooldown: TimeSpan.FromSeconds(app.Value.RecheckCooldownSeconds));
            switch (result.Outcome)
            {
                case RecheckOutcome.NotConnected:
                    return NotConnected();
                case RecheckOutcome.Busy:
                    return TooSoon(context, result.RetryAfter, "A re-check of your access is under way.");
                case RecheckOutcome.TooSoon:
                    return TooSoon(context, result.RetryAfter, $"Access was re-checked less than {app.Value.RecheckCooldownSeconds} s ago.");
                case RecheckOutcome.Superseded:
                    context.Response.Headers.RetryAfter = "5";
                    return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Access kept changing",
                        detail: "Access changed on GitHub while it answered, three times. What GitHub took away is applied; " +
                                "what it added comes with the next re-check, due at once.");
            }
        }
        catch (Exception ex) when (IsGitHubUnavailable(ex, cancellationToken))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "GitHub is unavailable",
                detail: "GitHub did not answer the access check; nothing changed. Try again later.");
        }
        catch (CryptographicException)
        {
            // The stored tokens cannot be read for this user (the key ring is unreadable, or the row is not theirs):
            // nothing is sent to GitHub and nothing changes.
            context.Response.Headers.RetryAfter = "60";
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "GitHub connection unreadable",
                detail: "CoTeX cannot read the stored GitHub authorization for your account; nothing changed. Try again later, or connect GitHub again.");
        }
        return await StatusAsync(user, dataSource, app, cancellationToken);
    }

    private static ProblemHttpResult TooSoon(HttpContext context, TimeSpan retryAfter, string why)
    {
        context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Re-check not started",
            detail: $"{why} Try again after the Retry-After seconds; your access is re-checked on its own too.");
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DisconnectAsync(ClaimsPrincipal user,
        GitHubConnections connections, CancellationToken cancellationToken) =>
        await connections.DisconnectAsync(user.GetUserId(), cancellationToken) ? TypedResults.NoContent() : NotConnected();

    /// <summary>
    /// GitHub's redirect: check the state, take its one callback, exchange the code, keep the result until the person
    /// confirms which CoTeX account it joins, and show them the page that asks.
    /// </summary>
    internal static async Task<IResult> CallbackAsync(HttpContext context, string? code, string? state, string? error,
        [AsParameters] GitHubAppServices services, CancellationToken cancellationToken)
    {
        if (!services.App.Value.IsEnabled)
        {
            return ModeOffPage(context);
        }
        if (error is not null)
        {
            return ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "GitHub was not connected",
                $"GitHub said: {error}. Nothing was connected; start again from the CoTeX app if you want to connect.");
        }
        if (string.IsNullOrEmpty(code) || string.IsNullOrEmpty(state))
        {
            return ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "Incomplete link",
                "This page needs the code and state GitHub adds to the link. Start again from the CoTeX app.");
        }
        if (services.States.Unprotect(state) is not { } claim)
        {
            return await BadStateAsync(context, services.KeyRing, cancellationToken);
        }
        // One callback per state: whoever comes second (a replay, a leaked link) gets a 400.
        if (await ConnectStateQueries.TakeCallbackAsync(services.DataSource, claim, cancellationToken) is not { } account)
        {
            return UsedState(context);
        }

        PendingGitHubConnection pending;
        try
        {
            var tokens = await services.GitHub.ExchangeCodeAsync(code, services.Api.Value.PublicUrl(context.Request, CallbackPath),
                cancellationToken);
            pending = new PendingGitHubConnection(await services.GitHub.GetUserAsync(tokens.AccessToken, cancellationToken), tokens);
        }
        catch (GitHubApiException ex) when (ex.IsUnauthorized)
        {
            return ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "GitHub did not accept the authorization",
                "The authorization code is not valid any more (it is good for a few minutes, once). Start again from the CoTeX app.");
        }
        catch (Exception ex) when (IsGitHubUnavailable(ex, cancellationToken))
        {
            return GitHubUnavailable(context);
        }

        var confirmToken = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        await ConnectStateQueries.SavePendingAsync(services.DataSource, claim.Nonce, services.Connections.ProtectPending(claim.UserId, pending),
            confirmToken, cancellationToken);
        return ConnectPages.Confirm(context, pending.User.Login, account.Email ?? $"user {account.UserId}", state, confirmToken);
    }

    /// <summary>The confirmation form: take the pending connection once, read it back, and connect (reading GitHub again).</summary>
    internal static async Task<IResult> ConfirmAsync(HttpContext context, [AsParameters] GitHubAppServices services,
        CancellationToken cancellationToken)
    {
        var (connections, keyRing) = (services.Connections, services.KeyRing);
        if (!services.App.Value.IsEnabled)
        {
            return ModeOffPage(context);
        }
        if (!context.Request.HasFormContentType)
        {
            return ConnectPages.Problem(context, StatusCodes.Status415UnsupportedMediaType, "Not a form",
                "This address takes the confirmation form of the Connect GitHub page.");
        }
        var form = await context.Request.ReadFormAsync(cancellationToken);
        if (form["state"] is not { Count: 1 } state)
        {
            return BadState(context);
        }
        if (services.States.Unprotect(state[0]!) is not { } claim)
        {
            return await BadStateAsync(context, keyRing, cancellationToken);
        }
        if (form["confirm"] is not { Count: 1 } confirm || confirm[0] is not { Length: 64 } token || !IsHex(token))
        {
            return ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "Missing confirmation",
                "The form must come from the Connect GitHub page. Start again from the CoTeX app.");
        }

        // Once: the pending connection leaves the row as it is confirmed.
        var protectedPending = await ConnectStateQueries.TakePendingAsync(services.DataSource, claim, token, cancellationToken);
        if (protectedPending is null)
        {
            return UsedState(context);
        }

        PendingGitHubConnection pending;
        try
        {
            pending = connections.UnprotectPending(claim.UserId, protectedPending);
        }
        catch (Exception ex) when (ex is CryptographicException or System.Text.Json.JsonException)
        {
            if (!await keyRing.IsReadableAsync(cancellationToken))
            {
                return KeyRingUnreadable(context);
            }
            // Written by this service for this user, so unreadable only when the key ring changed under it (or the row
            // was tampered with): the person starts again, with nothing connected.
            return ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "This connection cannot be completed",
                "CoTeX could not read back what GitHub sent for this link. Nothing was connected; start again from the CoTeX app.");
        }
        GitHubAccess access;
        try
        {
            access = await connections.ConnectAsync(claim.UserId, pending, cancellationToken);
        }
        catch (AccountClosedException)
        {
            return ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "This CoTeX account is closed",
                "The CoTeX account this link was made for has been closed. Nothing was connected.");
        }
        catch (Exception ex) when (IsGitHubUnavailable(ex, cancellationToken))
        {
            return GitHubUnavailable(context);
        }
        return ConnectPages.Connected(context, pending.User.Login,
            access.Repositories.Select(r => r.Repository.FullName).Order(StringComparer.OrdinalIgnoreCase).ToArray(),
            access.Installations.Count);
    }

    /// <summary>GitHub failed, could not be reached, or timed out (not the caller going away).</summary>
    private static bool IsGitHubUnavailable(Exception exception, CancellationToken cancellationToken) =>
        exception is GitHubApiException or HttpRequestException or Polly.ExecutionRejectedException
        || exception is TaskCanceledException && !cancellationToken.IsCancellationRequested;

    private static bool IsHex(string value) => value.All(char.IsAsciiHexDigit);

    private static IResult ModeOffPage(HttpContext context) =>
        ConnectPages.Problem(context, StatusCodes.Status404NotFound, "GitHub App mode is off", "This CoTeX server has no GitHub App.");

    /// <summary>A state that does not read: tampered with or expired (400), unless this service cannot read its key ring (503).</summary>
    private static async Task<IResult> BadStateAsync(HttpContext context, KeyRingMonitor keyRing, CancellationToken cancellationToken) =>
        await keyRing.IsReadableAsync(cancellationToken) ? BadState(context) : KeyRingUnreadable(context);

    private static IResult KeyRingUnreadable(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "60";
        return ConnectPages.Problem(context, StatusCodes.Status503ServiceUnavailable, "CoTeX cannot complete this now",
            "This CoTeX server cannot read its encryption keys at the moment; nothing was connected. Try the link again in a few minutes.");
    }

    private static IResult BadState(HttpContext context) =>
        ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "This link is not valid",
            "The state in this link was not made by CoTeX for you, or it has expired. Start again from the CoTeX app.");

    private static IResult UsedState(HttpContext context) =>
        ConnectPages.Problem(context, StatusCodes.Status400BadRequest, "This link was used already",
            "Each Connect GitHub link works once. Start again from the CoTeX app.");

    private static IResult GitHubUnavailable(HttpContext context) =>
        ConnectPages.Problem(context, StatusCodes.Status502BadGateway, "GitHub is unavailable",
            "GitHub did not answer; nothing was connected. Start again from the CoTeX app in a moment.");

    private static ProblemHttpResult ModeOff() =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "GitHub App mode is off",
            detail: "This server has no GitHub App configured; track repos with their own webhooks.");

    private static ProblemHttpResult NotConnected() =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "GitHub is not connected",
            detail: "You have not connected a GitHub account: POST /api/github-app/connect.");

}

/// <summary>What the Connect GitHub handlers need besides the request, bound with <c>[AsParameters]</c>.</summary>
public sealed class GitHubAppServices(
    NpgsqlDataSource dataSource,
    GitHubAppClient gitHub,
    GitHubConnections connections,
    ConnectStates states,
    KeyRingMonitor keyRing,
    IOptions<GitHubAppOptions> app,
    IOptions<ApiOptions> api,
    TimeProvider time)
{
    public NpgsqlDataSource DataSource { get; } = dataSource;
    public GitHubAppClient GitHub { get; } = gitHub;
    public GitHubConnections Connections { get; } = connections;
    public ConnectStates States { get; } = states;
    public KeyRingMonitor KeyRing { get; } = keyRing;
    public IOptions<GitHubAppOptions> App { get; } = app;
    public IOptions<ApiOptions> Api { get; } = api;
    public TimeProvider Time { get; } = time;
}

/// <summary>
/// The connect flow's <c>state</c>: the CoTeX user and a one-time nonce, protected (signed and encrypted) with a
/// time-limited Data Protection purpose of its own, so it cannot be forged, altered, or used after it expires.
/// </summary>
public sealed class ConnectStates(IDataProtectionProvider protection)
{
    public sealed record Claim(Guid UserId, string Nonce);

    private readonly ITimeLimitedDataProtector _protector =
        protection.CreateProtector("CoTeX.GitHubApp.ConnectState.v1").ToTimeLimitedDataProtector();

    public string Protect(Guid userId, string nonce, DateTimeOffset expiresAt) => _protector.Protect($"{userId:N}.{nonce}", expiresAt);

    /// <summary>The claim, or null when the state is not CoTeX's, was altered, or has expired.</summary>
    public Claim? Unprotect(string state)
    {
        try
        {
            var parts = _protector.Unprotect(state).Split('.');
            return parts.Length == 2 && Guid.TryParseExact(parts[0], "N", out var userId) ? new Claim(userId, parts[1]) : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
