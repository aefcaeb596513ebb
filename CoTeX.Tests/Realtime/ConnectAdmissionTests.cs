using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.Realtime;

/// <summary>
/// Admission control for hub connects (Realtime:MaxPendingConnects): a connect beyond the limit is refused at once with
/// 503 and Retry-After, and clients that were refused still end up with every event once, in order.
/// </summary>
public sealed class ConnectAdmissionTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_connect_beyond_the_pending_limit_is_refused_with_retry_after_until_the_pending_one_has_connected()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1, realtimeSettings: new()
        {
            ["Realtime:MaxPendingConnects"] = "1",
            ["Realtime:ConnectRetryAfterSeconds"] = "3",
        });
        var replica = cluster.ReplicaUrls[0];
        var (userId, repo) = await cluster.NewUserWithRepoAsync();

        // Upgraded and authenticated, but not yet a hub connection (no SignalR handshake): it holds the only place.
        using var pending = await UpgradeAsync(replica, TestTokens.For(userId));
        using var http = new HttpClient { BaseAddress = replica };
        using var refused = await http.GetAsync(RealtimeProtocol.HubPath);
        refused.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds.Should().BeInRange(3, 6);

        await pending.SendAsync("{\"protocol\":\"json\",\"version\":1}\u001e"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);

        // The handshake made it a hub connection and freed the place: the next client connects and gets its events.
        var ids = await cluster.DeliverAsync(repo, 3);
        var client = await cluster.WatchAsync(userId, 0, replica);
        await client.WaitForCountAsync(3);
        client.Received.Select(e => e.Id).Should().Equal(ids);
    }

    [Fact]
    public async Task Clients_refused_while_many_connect_at_once_still_receive_every_event_once_in_order()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1, realtimeSettings: new()
        {
            ["Realtime:MaxPendingConnects"] = "1",
            ["Realtime:ConnectRetryAfterSeconds"] = "1",
        });
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var missed = await cluster.DeliverAsync(repo, 30);

        // Twelve clients of the user connect together and resume from 0: with one place, most are refused at first.
        var feeds = Enumerable.Range(0, 12).Select(_ => new RecordingFeed(cluster.ClientFor(userId).Watch(fromPosition: 0))).ToList();
        try
        {
            await Task.WhenAll(feeds.Select(f => f.CaughtUp)).WaitAsync(TimeSpan.FromSeconds(60));
            var live = await cluster.DeliverAsync(repo, 10);

            foreach (var feed in feeds)
            {
                await feed.WaitForCountAsync(40);
            }
            await Task.Delay(500); // room for any duplicate to show up
            foreach (var feed in feeds)
            {
                feed.Received.Select(e => e.Id).Should().Equal(missed.Concat(live));
            }
            feeds.Sum(f => { lock (f.Failures) { return f.Failures.Count(e => e.Message.Contains("503", StringComparison.Ordinal)); } })
                .Should().BePositive("with one place for twelve connects, some were refused");
        }
        finally
        {
            foreach (var feed in feeds)
            {
                await feed.DisposeAsync();
            }
        }
    }

    /// <summary>A WebSocket upgrade of the hub with a token, without SignalR's handshake.</summary>
    private static async Task<WebSocket> UpgradeAsync(Uri replica, string token)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, replica.Port);
        var stream = new NetworkStream(socket, ownsSocket: true);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET {RealtimeProtocol.HubPath} HTTP/1.1\r\nHost: {replica.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {Convert.ToBase64String(Guid.NewGuid().ToByteArray())}\r\nSec-WebSocket-Version: 13\r\n" +
            $"Authorization: Bearer {token}\r\n\r\n"));
        var answer = new List<byte>();
        var one = new byte[1];
        while (answer.Count < 4 || !answer.TakeLast(4).SequenceEqual("\r\n\r\n"u8.ToArray()))
        {
            (await stream.ReadAsync(one)).Should().Be(1, "the upgrade answer ended early");
            answer.Add(one[0]);
        }
        Encoding.ASCII.GetString(answer.ToArray()).Should().StartWith("HTTP/1.1 101");
        return WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = Timeout.InfiniteTimeSpan });
    }
}
