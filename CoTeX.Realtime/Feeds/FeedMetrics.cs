using System.Diagnostics.Metrics;
using CoTeX.ServiceDefaults;

namespace CoTeX.Realtime.Feeds;

/// <summary>
/// <c>cotex.realtime.events.sent</c>: events sent to clients, by <c>delivery</c>: <c>live</c> (from Redis, as they are
/// stored) or <c>catch_up</c> (read from Postgres: a resume, a gap repair, a slow client brought up to date).
/// The connection count is <c>cotex.realtime.connections</c> (<see cref="FeedRegistry"/>).
/// </summary>
public sealed class FeedMetrics(IMeterFactory meters)
{
    private static readonly KeyValuePair<string, object?> Live = new("delivery", "live");
    private static readonly KeyValuePair<string, object?> CatchUp = new("delivery", "catch_up");

    private readonly Counter<long> _sent = meters.Create(CoTeXTelemetry.Name).CreateCounter<long>(
        "cotex.realtime.events.sent", "{event}", "Events sent to clients, live or in catch-up");

    public void SentLive() => _sent.Add(1, Live);

    public void SentCatchUp(int count) => _sent.Add(count, CatchUp);
}
