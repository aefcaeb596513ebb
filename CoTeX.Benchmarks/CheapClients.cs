using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using CoTeX.Contracts;

namespace CoTeX.Benchmarks;

/// <summary>
/// A load generator for tens of thousands of idle hub connections: a <see cref="Client.CoTeXFeed"/> (a HubConnection,
/// its HttpClient, timers and channels) costs too much per connection to hold 100,000 of them next to the system on a
/// small box. Each <see cref="CheapClient"/> is a raw socket bound to one of several loopback source addresses
/// (127.0.0.2…: each address has its own ~28,000 ephemeral ports), an HTTP upgrade written by hand, and
/// <see cref="WebSocket.CreateFromStream(Stream, WebSocketCreationOptions)"/> speaking SignalR's JSON hub protocol as
/// docs/realtime-protocol.md describes it: no negotiation, the token as a Bearer header, the handshake, one
/// <c>Subscribe</c>. It behaves as the .NET client does where it matters to the server: it resumes from the highest
/// position it holds after any close, tries the next replica at once and backs off (between half and all of 100 ms × 2^failures, at most 5 s: the
/// clients' "equal jitter") only once every replica has failed in a row. Pings to the server come from one loop over the whole crowd
/// (<see cref="CheapCrowd"/>), not a timer per socket.
/// </summary>
public sealed class CheapClient
{
    private static readonly byte[] Handshake = Encoding.UTF8.GetBytes("{\"protocol\":\"json\",\"version\":1}\u001e");
    internal static readonly byte[] Ping = Encoding.UTF8.GetBytes("{\"type\":6}\u001e");
    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(5);

    private readonly CheapCrowd _crowd;
    private readonly Uri[] _urls;
    private readonly IPAddress _source;
    private int _urlIndex;
    private WebSocket? _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    internal CheapClient(CheapCrowd crowd, int index, string token, Uri[] urls, int firstUrl, IPAddress source)
    {
        _crowd = crowd;
        Index = index;
        Token = token;
        _urls = urls;
        _urlIndex = firstUrl;
        _source = source;
    }

    public int Index { get; }
    public string Token { get; }

    /// <summary>Highest position held (0 before any event).</summary>
    public long Position { get; private set; }

    /// <summary>Events received, those at or below the position already held, and those that skipped a position.</summary>
    public int Received { get; private set; }
    public int Duplicates { get; private set; }
    public int Gaps { get; private set; }

    /// <summary>The replica the client is subscribed on (index into the URLs), -1 while not connected.</summary>
    public int ConnectedTo { get; private set; } = -1;

    /// <summary>Whether the server's <c>CaughtUp</c> has arrived on the current connection.</summary>
    public bool CaughtUp { get; private set; }

    public int Connects { get; private set; }
    public int FailedAttempts { get; private set; }

    /// <summary>Connects answered 503 with a <c>Retry-After</c> (the replica's database pool busy).</summary>
    public int Refused { get; private set; }

    /// <summary>Called with each live <c>Event</c>'s position as it arrives (the latency measurement).</summary>
    public Action<long>? OnLiveEvent { get; set; }

    /// <summary>Connects once (no retry): true when subscribed. The caller decides what a failure means.</summary>
    public async Task<bool> ConnectOnceAsync(CancellationToken cancellationToken)
    {
        var url = _urls[_urlIndex % _urls.Length];
        try
        {
            var socket = await OpenAsync(url, cancellationToken);
            _socket = socket;
            ConnectedTo = _urlIndex % _urls.Length;
            Connects++;
            var subscribe = Encoding.UTF8.GetBytes(
                $"{{\"type\":1,\"target\":\"{RealtimeProtocol.Subscribe}\",\"arguments\":[{Position}]}}\u001e");
            await SendAsync(subscribe, cancellationToken);
            return true;
        }
        catch (UpgradeRefusedException refused) when (refused.RetryAfter is not null)
        {
            // Counted, not obeyed: the real clients cannot see an upgrade's headers (a browser's WebSocket, SignalR's
            // clients) and back off as after any failed connect, so the cheap ones do too.
            Refused++;
            _urlIndex++;
            return false;
        }
        catch (Exception ex) when (ex is SocketException or IOException or WebSocketException or InvalidOperationException)
        {
            FailedAttempts++;
            _urlIndex++;
            return false;
        }
    }

    /// <summary>
    /// Reads the connection until it closes, then reconnects and resumes (as the .NET client does), until
    /// <paramref name="cancellationToken"/> ends it.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (_socket is null)
            {
                if (!await ConnectOnceAsync(cancellationToken))
                {
                    failures++;
                    if (failures >= _urls.Length)
                    {
                        var ceiling = Math.Min(MaxReconnectDelay.TotalMilliseconds, 100 * Math.Pow(2, failures));
                        var delay = ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2;
                        try { await Task.Delay(TimeSpan.FromMilliseconds(delay), cancellationToken); } catch (OperationCanceledException) { return; }
                    }
                    continue;
                }
                failures = 0;
            }
            try
            {
                await ReadUntilClosedAsync(_socket!, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or WebSocketException or SocketException or OperationCanceledException)
            {
            }
            var closed = _socket;
            _socket = null;
            ConnectedTo = -1;
            CaughtUp = false;
            closed?.Dispose();
            _urlIndex++; // the next replica first, as CoTeXFeed does
        }
    }

    /// <summary>A ping, unless a send is under way (the server only needs to hear something within its timeout).</summary>
    internal async Task PingAsync()
    {
        if (_socket is { State: WebSocketState.Open } && _sendLock.Wait(0))
        {
            try
            {
                await _socket.SendAsync(Ping, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }
            catch (Exception ex) when (ex is IOException or WebSocketException or ObjectDisposedException)
            {
            }
            finally
            {
                _sendLock.Release();
            }
        }
    }

    public void Abort() => _socket?.Abort();

    private async Task SendAsync(byte[] message, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            await _socket!.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task<WebSocket> OpenAsync(Uri url, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            // IP_BIND_ADDRESS_NO_PORT (24): the port is chosen at connect, per destination, so an address's ports are
            // not used up by bind alone.
            socket.SetRawSocketOption(0, 24, BitConverter.GetBytes(1));
            socket.Bind(new IPEndPoint(_source, 0));
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, url.Port), cancellationToken);
            var stream = new NetworkStream(socket, ownsSocket: true);
            var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
            var request = Encoding.ASCII.GetBytes(
                $"GET {RealtimeProtocol.HubPath} HTTP/1.1\r\nHost: {url.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {Token}\r\n\r\n");
            await stream.WriteAsync(request, cancellationToken);
            await ReadUpgradeAnswerAsync(stream, cancellationToken);
            var webSocket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = Timeout.InfiniteTimeSpan });
            await webSocket.SendAsync(Handshake, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            return webSocket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads the HTTP answer up to its blank line byte by byte (nothing of the WebSocket may be read past it).</summary>
    private static async Task ReadUpgradeAnswerAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new byte[1024];
        var length = 0;
        while (length < 4 || !head.AsSpan(length - 4, 4).SequenceEqual("\r\n\r\n"u8))
        {
            if (length == head.Length || await stream.ReadAsync(head.AsMemory(length, 1), cancellationToken) == 0)
            {
                throw new IOException("The upgrade answer ended early or is too long.");
            }
            length++;
        }
        if (!head.AsSpan(0, length).StartsWith("HTTP/1.1 101"u8))
        {
            var answer = Encoding.ASCII.GetString(head, 0, length).Split("\r\n");
            var retryAfter = answer.FirstOrDefault(l => l.StartsWith("Retry-After:", StringComparison.OrdinalIgnoreCase)) is { } header
                && int.TryParse(header["Retry-After:".Length..].Trim(), out var seconds) ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
            throw new UpgradeRefusedException(answer[0], retryAfter);
        }
    }

    /// <summary>
    /// One message at a time: a zero-byte read waits for data without holding a buffer (an idle connection keeps
    /// none), then a pooled buffer takes the message.
    /// </summary>
    private async Task ReadUntilClosedAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        while (true)
        {
            await socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
            var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
            var length = 0;
            try
            {
                while (true)
                {
                    if (length == buffer.Length)
                    {
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }
                    length += result.Count;
                    if (result.EndOfMessage)
                    {
                        break;
                    }
                }
                Handle(buffer.AsSpan(0, length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Each record (0x1e-terminated) of a WebSocket message: the handshake answer, pings, invocations.</summary>
    private void Handle(ReadOnlySpan<byte> message)
    {
        while (message.IndexOf((byte)0x1e) is var end and >= 0)
        {
            HandleRecord(message[..end]);
            message = message[(end + 1)..];
        }
    }

    private void HandleRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length <= 2 || !record.StartsWith("{\"type\":1,"u8))
        {
            if (record.StartsWith("{\"type\":7"u8))
            {
                _crowd.ServerClosed(record);
            }
            return; // the handshake's {}, pings
        }
        var reader = new Utf8JsonReader(record);
        string? target = null;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
            {
                continue;
            }
            if (reader.ValueTextEquals("target"u8))
            {
                reader.Read();
                target = reader.GetString();
            }
            else if (reader.ValueTextEquals("arguments"u8))
            {
                // SignalR's JSON protocol writes target before arguments.
                reader.Read();
                Invoked(target, ref reader);
                return;
            }
        }
    }

    private void Invoked(string? target, ref Utf8JsonReader reader)
    {
        switch (target)
        {
            case RealtimeProtocol.Event:
            case RealtimeProtocol.Events:
                // Every "position" at the depth of an event summary (an Event's at 3, an Events batch's at 4).
                var depth = target == RealtimeProtocol.Event ? 3 : 4;
                while (reader.Read() && !(reader.TokenType == JsonTokenType.EndArray && reader.CurrentDepth == 1))
                {
                    if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == depth && reader.ValueTextEquals("position"u8))
                    {
                        reader.Read();
                        OnEvent(reader.GetInt64(), live: target == RealtimeProtocol.Event);
                    }
                }
                break;
            case RealtimeProtocol.CaughtUp:
            case RealtimeProtocol.Reset:
                CaughtUp = true;
                _crowd.CaughtUpOnce(this);
                break;
            case RealtimeProtocol.Reconnect:
                _crowd.ReconnectAsked(); // the server closes the connection next; the client resumes as after any close
                break;
        }
    }

    private void OnEvent(long position, bool live)
    {
        Received++;
        if (position <= Position)
        {
            Duplicates++;
            return;
        }
        if (position > Position + 1)
        {
            Gaps++;
        }
        Position = position;
        if (live)
        {
            OnLiveEvent?.Invoke(position);
        }
    }
}

/// <summary>A connect answered with something other than 101 (e.g. 503 with <c>Retry-After</c>).</summary>
public sealed class UpgradeRefusedException(string statusLine, TimeSpan? retryAfter) : InvalidOperationException("Upgrade refused: " + statusLine)
{
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>
/// Many <see cref="CheapClient"/>s: connecting them at a bounded concurrency, a ping loop over all of them, counts.
/// </summary>
public sealed class CheapCrowd : IAsyncDisposable
{
    /// <summary>Under SignalR's default ClientTimeoutInterval (30 s), as the .NET client's KeepAliveInterval (15 s) is.</summary>
    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(15);

    private readonly List<CheapClient> _clients = [];
    private readonly List<Task> _running = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly IPAddress[] _sources;
    private readonly Task _pinger;
    private int _caughtUp;
    private int _serverCloses;
    private int _reconnectNotices;

    /// <param name="sourceAddresses">Loopback source addresses to spread over (127.0.0.2 onwards).</param>
    public CheapCrowd(int sourceAddresses = 8)
    {
        _sources = Enumerable.Range(2, sourceAddresses).Select(i => IPAddress.Parse($"127.0.0.{i}")).ToArray();
        _pinger = PingLoopAsync();
    }

    public IReadOnlyList<CheapClient> Clients => _clients;

    /// <summary><c>CaughtUp</c> (or <c>Reset</c>) messages received, over every connection of every client.</summary>
    public int CaughtUpCount => Volatile.Read(ref _caughtUp);

    /// <summary>Close messages the server sent (e.g. a refused or failed connection).</summary>
    public int ServerCloses => Volatile.Read(ref _serverCloses);

    /// <summary><c>Reconnect</c> notices received (a replica shutting down or moving clients to another one).</summary>
    public int ReconnectNotices => Volatile.Read(ref _reconnectNotices);

    public CheapClient Add(string token, Uri[] urls, int firstUrl = 0)
    {
        lock (_running)
        {
            var client = new CheapClient(this, _clients.Count, token, urls, firstUrl, _sources[_clients.Count % _sources.Length]);
            _clients.Add(client);
            return client;
        }
    }

    /// <summary>
    /// Connects <paramref name="clients"/> with at most <paramref name="concurrency"/> handshakes under way, then keeps
    /// each one reading (and reconnecting). Returns how many connected at the first attempt.
    /// </summary>
    public async Task<int> ConnectAsync(IReadOnlyList<CheapClient> clients, int concurrency)
    {
        var connected = 0;
        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (client, ct) =>
        {
            if (await client.ConnectOnceAsync(_stop.Token))
            {
                Interlocked.Increment(ref connected);
            }
            lock (_running)
            {
                _running.Add(Task.Run(() => client.RunAsync(_stop.Token)));
            }
        });
        return connected;
    }

    /// <summary>Waits until <paramref name="done"/> holds (checked every 100 ms) or the timeout passes; false on timeout.</summary>
    public static async Task<bool> WaitUntilAsync(Func<bool> done, TimeSpan timeout)
    {
        var started = Stopwatch.GetTimestamp();
        while (!done())
        {
            if (Stopwatch.GetElapsedTime(started) > timeout)
            {
                return false;
            }
            await Task.Delay(100);
        }
        return true;
    }

    internal void CaughtUpOnce(CheapClient client) => Interlocked.Increment(ref _caughtUp);

    internal void ReconnectAsked() => Interlocked.Increment(ref _reconnectNotices);

    internal void ServerClosed(ReadOnlySpan<byte> record)
    {
        if (Interlocked.Increment(ref _serverCloses) <= 3)
        {
            Console.WriteLine("  server closed a connection: " + Encoding.UTF8.GetString(record));
        }
    }

    private async Task PingLoopAsync()
    {
        using var timer = new PeriodicTimer(PingInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                CheapClient[] clients;
                lock (_running)
                {
                    clients = [.. _clients];
                }
                foreach (var client in clients)
                {
                    await client.PingAsync();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var client in _clients)
        {
            client.Abort();
        }
        await _pinger;
        Task[] running;
        lock (_running)
        {
            running = [.. _running];
        }
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }
}
