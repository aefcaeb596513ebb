using System.ComponentModel.DataAnnotations;
using System.Globalization;
using CoTeX.Shared.Auth;
using CoTeX.Shared.Data;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CoTeX.Shared.Web;

/// <summary>Bound from <c>RateLimiting</c>. Limits are per window and shared by every replica (kept in Redis).</summary>
public sealed class RateLimitingOptions
{
    public const string Section = "RateLimiting";

    public bool Enabled { get; set; } = true;

    [Range(1, 3600)]
    public int WindowSeconds { get; set; } = 60;

    /// <summary>Requests per window per authenticated user on <c>/api/*</c>.</summary>
    [Range(1, 1_000_000)]
    public int PerUser { get; set; } = 600;

    /// <summary>Requests per window per client IP on anonymous routes.</summary>
    [Range(1, 1_000_000)]
    public int PerIp { get; set; } = 120;

    /// <summary>Deliveries per window per repo on the GitHub webhook receiver (generous: busy repos are bursty).</summary>
    [Range(1, 10_000_000)]
    public int PerRepoWebhooks { get; set; } = 6000;

    /// <summary>
    /// Requests per window per client IP on the webhook receivers, for addresses outside GitHub's and Stripe's
    /// published delivery ranges (<see cref="IWebhookSenderRanges"/>); addresses inside are not counted. Each request
    /// may make the Api read up to 25 MB before the signature can be checked, so strangers get few.
    /// </summary>
    [Range(1, 10_000_000)]
    public int PerWebhookSender { get; set; } = 60;
}

/// <summary>The addresses webhook senders (GitHub, Stripe) publish: exempt from <see cref="RateLimitPolicy.PerWebhookSender"/>.</summary>
public interface IWebhookSenderRanges
{
    bool Contains(System.Net.IPAddress? address);
}

public enum RateLimitPolicy
{
    PerUser,
    PerIp,
    PerRepo,
    /// <summary>Per client IP, except addresses in <see cref="IWebhookSenderRanges"/> (registered by the service).</summary>
    PerWebhookSender,
}

/// <summary>
/// A fixed-window counter per key in Redis (one script round trip, atomic across replicas). If Redis cannot be
/// reached (or takes over 250 ms) the request is let through and a warning logged: losing the limiter must not take
/// the API down, nor stop webhooks from being stored.
/// </summary>
public sealed partial class RedisRateLimiter(IConnectionMultiplexer redis, IOptions<RateLimitingOptions> options, ILogger<RedisRateLimiter> logger)
{
    private static readonly LuaScript Script = LuaScript.Prepare(
        """
        local count = redis.call('INCR', @key)
        if count == 1 then redis.call('PEXPIRE', @key, @windowMs) end
        return { count, redis.call('PTTL', @key) }
        """);

    private static readonly TimeSpan MaxWait = TimeSpan.FromMilliseconds(250);

    public RateLimitingOptions Options => options.Value;

    /// <returns>Null when allowed; otherwise how long until the window resets.</returns>
    public async Task<TimeSpan?> TryAcquireAsync(string key, int limit)
    {
        if (!redis.IsConnected)
        {
            LogUnavailable(logger, "not connected");
            return null;
        }
        try
        {
            // Never let the limiter add more than a blink to a request, even when Redis is slow.
            var result = (RedisResult[])(await redis.GetDatabase().ScriptEvaluateAsync(Script,
                    new { key = (RedisKey)("cotex:rl:" + key), windowMs = options.Value.WindowSeconds * 1000 })
                .WaitAsync(MaxWait))!;
            var count = (long)result[0];
            var ttl = (long)result[1];
            return count <= limit ? null : TimeSpan.FromMilliseconds(Math.Max(ttl, 1000));
        }
        catch (Exception ex) when (RedisFailures.IsOutage(ex))
        {
            LogUnavailable(logger, ex.GetType().Name);
            return null;
        }
    }

    [LoggerMessage(LogLevel.Warning, "Rate limiter cannot reach Redis ({ExceptionType}); letting the request through")]
    private static partial void LogUnavailable(ILogger logger, string exceptionType);
}

public static class RateLimitingExtensions
{
    public static TBuilder AddCoTeXRateLimiting<TBuilder>(this TBuilder builder) where TBuilder : Microsoft.Extensions.Hosting.IHostApplicationBuilder
    {
        builder.Services.AddOptions<RateLimitingOptions>().BindConfiguration(RateLimitingOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<RedisRateLimiter>();
        return builder;
    }

    /// <summary>Applies a shared limit to every endpoint of the group: over it, 429 with Retry-After and a ProblemDetails.</summary>
    public static TBuilder RequireRateLimit<TBuilder>(this TBuilder builder, RateLimitPolicy policy) where TBuilder : IEndpointConventionBuilder
    {
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var limiter = http.RequestServices.GetRequiredService<RedisRateLimiter>();
            var options = limiter.Options;
            if (!options.Enabled)
            {
                return await next(context);
            }
            if (policy == RateLimitPolicy.PerWebhookSender
                && http.RequestServices.GetService<IWebhookSenderRanges>() is { } senders
                && senders.Contains(http.Connection.RemoteIpAddress))
            {
                return await next(context);
            }
            var (key, limit) = policy switch
            {
                RateLimitPolicy.PerWebhookSender => ($"webhook-ip:{http.Connection.RemoteIpAddress}", options.PerWebhookSender),
                RateLimitPolicy.PerUser when http.User.TryGetUserId(out var userId) => ($"user:{userId}", options.PerUser),
                RateLimitPolicy.PerRepo when http.Request.RouteValues.TryGetValue("repoId", out var repoId) => ($"repo:{repoId}", options.PerRepoWebhooks),
                _ => ($"ip:{http.Connection.RemoteIpAddress}", options.PerIp),
            };
            if (await limiter.TryAcquireAsync(key, limit) is not { } retryAfter)
            {
                return await next(context);
            }
            var seconds = (int)Math.Ceiling(retryAfter.TotalSeconds);
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
                detail: $"At most {limit} requests per {options.WindowSeconds} s are allowed here; retry in {seconds} s.");
        });
        return builder;
    }
}
