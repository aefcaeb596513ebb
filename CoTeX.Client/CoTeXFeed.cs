using System.Runtime.CompilerServices;
using System.Threading.Channels;
using CoTeX.Contracts;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace CoTeX.Client;

/// <summary>
/// The user's live events, in position order, each once. Connects over WebSockets without negotiation (so no sticky
/// sessions are needed), subscribes from <see cref="Position"/>, and whenever the connection ends — network, server
/// restart, a replica shutting down, the token expiring — reconnects (to the next Realtime URL) and resumes from
/// <see cref="Position"/>.
/// <para>
/// Tokens: <see cref="CoTeXClientOptions.AccessTokenProvider"/> is asked for a token for every connection attempt,
/// never cached here. The server closes a connection when its token expires (telling the client so with
/// <see cref="ReconnectCodes.TokenExpired"/>, see <see cref="ReconnectRequested"/>) and refuses an expired token, so the
/// provider must return one that is valid now; while it returns a refused one the feed keeps retrying
/// (<see cref="ConnectionFailed"/>). A provider that throws ends the feed: <see cref="ReadAllAsync"/> throws its
/// exception.
/// </para>
/// </summary>
public sealed class CoTeXFeed : IAsyncDisposable
{
    private readonly CoTeXClientOptions _options;
    private readonly Channel<GitHubEventSummary> _events = Channel.CreateUnbounded<GitHubEventSummary>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _positionLock = new();
    private long? _position;
    private Task? _run;
    private int _connectionIndex;
    private int _disposed;
    private volatile Exception? _providerFailure;

    internal CoTeXFeed(CoTeXClientOptions options, long? fromPosition)
    {
        _options = options;
        _position = fromPosition;
    }

    /// <summary>The highest position this client holds. Persist it; pass it to the next <c>Watch</c>.</summary>
    public long? Position { get { lock (_positionLock) { return _position; } } }

    /// <summary>The server has sent everything missed up to this position; from here on events are live.</summary>
    public event Action<long>? CaughtUp;

    /// <summary>
    /// The position could not be resumed (older than the retention window): reload history over REST up to
    /// <see cref="FeedReset.Position"/>; live events continue after it.
    /// </summary>
    public event Action<FeedReset>? Reset;

    /// <summary>The feed connected (argument: the Realtime URL).</summary>
    public event Action<Uri>? Connected;

    /// <summary>
    /// The server is closing the connection and asked the client to reconnect; <see cref="ReconnectNotice.Code"/> says
    /// why (<see cref="ReconnectCodes"/>). The feed reconnects by itself, with a token from the provider.
    /// </summary>
    public event Action<ReconnectNotice>? ReconnectRequested;

    /// <summary>
    /// A connection attempt failed (the server is unreachable, or refused the token: an expired or revoked one); the
    /// feed tries again, with a new token from the provider each time.
    /// </summary>
    public event Action<Exception>? ConnectionFailed;

    /// <summary>Events as they arrive; ends when the feed is disposed.</summary>
    public async IAsyncEnumerable<GitHubEventSummary> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        _run ??= Task.Run(RunAsync);
        await foreach (var summary in _events.Reader.ReadAllAsync(cancellationToken))
        {
            yield return summary;
        }
    }

    /// <summary>Starts connecting without reading (events queue up until <see cref="ReadAllAsync"/> is used).</summary>
    public void Start() => _run ??= Task.Run(RunAsync);

    private async Task RunAsync()
    {
        Exception? failure = null;
        try
        {
            await ConnectLoopAsync();
        }
        catch (Exception ex)
        {
            failure = ex; // a bug rather than a network failure; the reader gets it instead of waiting forever
        }
        _events.Writer.TryComplete(_providerFailure ?? failure);
    }

    private async Task ConnectLoopAsync()
    {
        var failures = 0;
        while (!_stop.IsCancellationRequested)
        {
            var url = _options.RealtimeUrls[_connectionIndex++ % _options.RealtimeUrls.Count];
            try
            {
                await using var connection = Build(url);
                var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                connection.Closed += _ => { closed.TrySetResult(); return Task.CompletedTask; };
                connection.On<ReconnectNotice>(RealtimeProtocol.Reconnect, notice =>
                {
                    ReconnectRequested?.Invoke(notice);
                    closed.TrySetResult();
                });

                await connection.StartAsync(_stop.Token);
                await connection.InvokeAsync(RealtimeProtocol.Subscribe, Position, _stop.Token);
                failures = 0;
                Connected?.Invoke(url);
                await closed.Task.WaitAsync(_stop.Token);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception) when (_providerFailure is not null)
            {
                break; // however SignalR wrapped it
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Net.WebSockets.WebSocketException
                                       or InvalidOperationException or HubException or IOException or TimeoutException)
            {
                failures++;
                ConnectionFailed?.Invoke(ex);
            }

            // Try the next replica at once; back off only when every URL has failed in a row. Exponential with "equal
            // jitter" (between half and all of 100 ms x 2^failures, capped), as the TypeScript client does: the clients
            // of a replica that went away fail together, and must not retry together (docs/benchmarks/scale.md, storm).
            if (failures >= _options.RealtimeUrls.Count)
            {
                var ceiling = Math.Min(_options.MaxReconnectDelay.TotalMilliseconds, 100 * Math.Pow(2, failures));
                var delay = TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2);
                try { await Task.Delay(delay, _stop.Token); } catch (OperationCanceledException) { break; }
            }
        }
    }

    private HubConnection Build(Uri url)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(url, RealtimeProtocol.HubPath), options =>
            {
                // WebSockets without the negotiate round trip: every request of the connection is one socket, so any
                // replica can serve it and the load balancer needs no sticky sessions.
                options.SkipNegotiation = true;
                options.Transports = HttpTransportType.WebSockets;
                // Asked once per connection (this one is never reused), so every reconnect gets the provider's token.
                options.AccessTokenProvider = GetTokenAsync;
            })
            .Build();
        connection.On<GitHubEventSummary>(RealtimeProtocol.Event, Accept);
        connection.On<GitHubEventSummary[]>(RealtimeProtocol.Events, batch =>
        {
            foreach (var summary in batch)
            {
                Accept(summary);
            }
        });
        connection.On<FeedPosition>(RealtimeProtocol.CaughtUp, caughtUp =>
        {
            lock (_positionLock)
            {
                _position = Math.Max(_position ?? 0, caughtUp.Position);
            }
            CaughtUp?.Invoke(caughtUp.Position);
        });
        connection.On<FeedReset>(RealtimeProtocol.Reset, reset =>
        {
            lock (_positionLock)
            {
                _position = reset.Position;
            }
            Reset?.Invoke(reset);
        });
        return connection;
    }

    private async Task<string?> GetTokenAsync()
    {
        try
        {
            return await _options.AccessTokenProvider(_stop.Token);
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && _stop.IsCancellationRequested))
        {
            // The application's provider gave up: the feed ends with its exception.
            _providerFailure = ex;
            throw;
        }
    }

    /// <summary>Passes an event on unless it is at or below the position held (a resend after a reconnect).</summary>
    private void Accept(GitHubEventSummary summary)
    {
        lock (_positionLock)
        {
            if (summary.Position <= _position)
            {
                return;
            }
            _position = summary.Position;
        }
        _events.Writer.TryWrite(summary);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run;
        }
        _events.Writer.TryComplete();
        _stop.Dispose();
    }
}
