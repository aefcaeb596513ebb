using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using CoTeX.Contracts;
using CoTeX.ServiceDefaults;
using CoTeX.Shared.Auth;

namespace CoTeX.Realtime.Feeds;

/// <summary>
/// The feeds of this replica's connections, by user, for routing live events. A closed account's connections are closed
/// as soon as any process announces the closing (<see cref="AccountClosures"/>).
/// </summary>
public sealed class FeedRegistry
{
    private readonly ConcurrentDictionary<Guid, ConnectionFeed[]> _byUser = new();
    private readonly ConcurrentDictionary<string, ConnectionFeed> _byConnection = new();
    private readonly Lock _writeLock = new();

    public FeedRegistry(IMeterFactory meters, AccountClosures closures)
    {
        var meter = meters.Create(CoTeXTelemetry.Name);
        meter.CreateObservableGauge("cotex.realtime.connections", () => _byConnection.Count,
            description: "Subscribed client connections on this replica");
        closures.Closed += CloseUser;
    }

    public int Count => _byConnection.Count;

    public IEnumerable<ConnectionFeed> All => _byConnection.Values;

    public bool TryAdd(ConnectionFeed feed)
    {
        lock (_writeLock)
        {
            if (!_byConnection.TryAdd(feed.ConnectionId, feed))
            {
                return false;
            }
            _byUser[feed.UserId] = _byUser.TryGetValue(feed.UserId, out var feeds) ? [.. feeds, feed] : [feed];
            return true;
        }
    }

    public ConnectionFeed? Remove(string connectionId)
    {
        lock (_writeLock)
        {
            if (!_byConnection.TryRemove(connectionId, out var feed))
            {
                return null;
            }
            var remaining = _byUser[feed.UserId].Where(f => f != feed).ToArray();
            if (remaining.Length == 0)
            {
                _byUser.TryRemove(feed.UserId, out _);
            }
            else
            {
                _byUser[feed.UserId] = remaining;
            }
            return feed;
        }
    }

    /// <summary>Closes every connection of the user here (their account is closed: the token is no good any more).</summary>
    public void CloseUser(Guid userId)
    {
        if (_byUser.TryGetValue(userId, out var feeds))
        {
            foreach (var feed in feeds)
            {
                Remove(feed.ConnectionId)?.Close();
            }
        }
    }

    /// <summary>Hands a live event to each of the user's connections here (none if the user has none).</summary>
    public void Route(Guid userId, GitHubEventSummary summary, ActivityContext origin)
    {
        if (_byUser.TryGetValue(userId, out var feeds))
        {
            foreach (var feed in feeds)
            {
                feed.OnLive(summary, origin);
            }
        }
    }
}
