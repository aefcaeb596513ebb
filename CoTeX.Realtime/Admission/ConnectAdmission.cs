using System.Diagnostics.Metrics;
using CoTeX.Contracts;
using CoTeX.Realtime.Feeds;
using CoTeX.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace CoTeX.Realtime.Admission;

/// <summary>
/// Admission control for connects to the hub. A connect costs Postgres work before the client is subscribed: the token
/// check writes the user's row (<c>UserProvisioner</c>, once per user per replica every few minutes, so every client
/// of a killed replica is new to the survivor) and the feed reads the user's position. When thousands of clients
/// reconnect at once (a replica killed), those waits piled up on the replica's 15 pooled Postgres connections: measured
/// with 9,709 clients reconnecting, 16,522 upgrades waited the pool's 5 s and were answered 503, 63 feeds failed the
/// same way, and the last client caught up after 72 s (docs/benchmarks/scale.md).
/// <para>
/// So at most <see cref="RealtimeOptions.MaxPendingConnects"/> connects are between their upgrade request and their
/// hub connection at once. One more is refused at once, before any Postgres work, with 503 and a
/// <c>Retry-After</c> spread over [<see cref="RealtimeOptions.ConnectRetryAfterSeconds"/>, twice that], so a herd comes
/// back spread out rather than together; a refused client has lost nothing (it resumes from its position, as after
/// any failed connect). The catch-ups of admitted clients queue on the feed queries' own limit
/// (<see cref="RealtimeOptions.MaxConcurrentQueries"/>), which stays below the pool size.
/// </para>
/// </summary>
public sealed class ConnectAdmission
{
    private readonly RealtimeOptions _options;
    private readonly Counter<long> _refused;
    private int _pending;

    public ConnectAdmission(IOptions<RealtimeOptions> options, IMeterFactory meters)
    {
        _options = options.Value;
        var meter = meters.Create(CoTeXTelemetry.Name);
        _refused = meter.CreateCounter<long>("cotex.realtime.connects.refused", "{connect}",
            "Hub connects refused with 503 and Retry-After because too many were already being admitted");
        meter.CreateObservableGauge("cotex.realtime.connects.pending", () => Volatile.Read(ref _pending),
            description: "Hub connects between their upgrade request and their hub connection");
    }

    /// <summary>A place among the pending connects, or null when they are full.</summary>
    public Ticket? TryAdmit()
    {
        if (Interlocked.Increment(ref _pending) > _options.MaxPendingConnects)
        {
            Interlocked.Decrement(ref _pending);
            _refused.Add(1);
            return null;
        }
        return new Ticket(this);
    }

    /// <summary>Seconds the refused client is asked to wait: random in [base, 2 × base], so retries do not come back together.</summary>
    public int RetryAfterSeconds() => Random.Shared.Next(_options.ConnectRetryAfterSeconds, 2 * _options.ConnectRetryAfterSeconds + 1);

    /// <summary>Held from the upgrade request until the hub connection exists (or the request ends, if it never does).</summary>
    public sealed class Ticket(ConnectAdmission admission)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Decrement(ref admission._pending);
            }
        }
    }
}

public static class ConnectAdmissionExtensions
{
    /// <summary>Before authentication: a refused connect must cost no token check (the check writes to Postgres).</summary>
    public static IApplicationBuilder UseConnectAdmission(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (!context.Request.Path.StartsWithSegments(RealtimeProtocol.HubPath))
        {
            await next(context);
            return;
        }
        var admission = context.RequestServices.GetRequiredService<ConnectAdmission>();
        if (admission.TryAdmit() is not { } ticket)
        {
            var retryAfter = admission.RetryAfterSeconds();
            context.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Too many connects at once",
                detail: $"This replica is admitting other clients; retry in {retryAfter} s and resume from your position.")
                .ExecuteAsync(context);
            return;
        }
        context.Features.Set(ticket);
        try
        {
            await next(context);
        }
        finally
        {
            ticket.Release();
        }
    });
}
