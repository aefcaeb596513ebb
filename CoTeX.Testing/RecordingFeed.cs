using CoTeX.Client;
using CoTeX.Contracts;
using FluentAssertions;

namespace CoTeX.Tests.Infrastructure;

/// <summary>A feed that records everything it receives, for assertions.</summary>
public sealed class RecordingFeed : IAsyncDisposable
{
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reading;
    private readonly List<GitHubEventSummary> _received = [];

    public RecordingFeed(CoTeXFeed feed)
    {
        Feed = feed;
        feed.CaughtUp += _ => _caughtUp.TrySetResult();
        feed.Reset += reset => { Resets.Add(reset); _caughtUp.TrySetResult(); };
        feed.Connected += url => { lock (Connections) { Connections.Add(url); } };
        feed.ReconnectRequested += notice => { lock (Notices) { Notices.Add(notice); } };
        feed.ConnectionFailed += failure => { lock (Failures) { Failures.Add(failure); } };
        _reading = Task.Run(async () =>
        {
            try
            {
                await foreach (var summary in feed.ReadAllAsync(_stop.Token))
                {
                    lock (_received)
                    {
                        _received.Add(summary);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    public CoTeXFeed Feed { get; }
    public Task CaughtUp => _caughtUp.Task;
    public List<FeedReset> Resets { get; } = [];
    /// <summary>Lock it to read while the feed runs.</summary>
    public List<Uri> Connections { get; } = [];
    /// <summary>The server's <c>Reconnect</c> notices (lock it to read while the feed runs).</summary>
    public List<ReconnectNotice> Notices { get; } = [];
    /// <summary>Failed connection attempts (lock it to read while the feed runs).</summary>
    public List<Exception> Failures { get; } = [];

    public IReadOnlyList<GitHubEventSummary> Received
    {
        get { lock (_received) { return _received.ToList(); } }
    }

    public Task WaitForCountAsync(int count, TimeSpan? within = null) =>
        Eventually.SucceedsAsync(() =>
        {
            Received.Count.Should().BeGreaterThanOrEqualTo(count);
            return Task.CompletedTask;
        }, within ?? TimeSpan.FromSeconds(30));

    public async ValueTask DisposeAsync()
    {
        await Feed.DisposeAsync();
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }
        await _reading;
    }
}
