using System.Net;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.IdentityModel.JsonWebTokens;

namespace CoTeX.Tests.Realtime;

/// <summary>
/// Sessions end when their token does: the hub closes a connection when its token expires and refuses an expired token,
/// and a feed whose token provider gives fresh tokens resumes across expiries with nothing lost or repeated.
/// </summary>
public sealed class TokenExpiryTests(TestInfrastructure infra)
{
    private static string ShortLived(Guid userId, TimeSpan lifetime) =>
        TestTokens.For(userId, d => d.Expires = DateTime.UtcNow + lifetime);

    [Fact]
    public async Task A_connection_is_closed_when_its_token_expires_and_the_expired_token_cannot_reconnect()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var before = await cluster.DeliverAsync(repo, 2);
        var token = ShortLived(userId, TimeSpan.FromSeconds(6));
        var expiry = new DateTimeOffset(DateTime.SpecifyKind(new JsonWebToken(token).ValidTo, DateTimeKind.Utc));

        // A provider that can only ever give the token it started with.
        await using var feed = new RecordingFeed(cluster.ClientFor(_ => ValueTask.FromResult(token)).Watch(0));
        await feed.CaughtUp.WaitAsync(TimeSpan.FromSeconds(20));
        await feed.WaitForCountAsync(2);

        // The server closes the connection at the expiry, saying why, and refuses the token from then on.
        await Eventually.SucceedsAsync(() =>
        {
            lock (feed.Failures)
            {
                feed.Failures.Should().NotBeEmpty("the expired token is refused");
            }
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(60));
        DateTimeOffset.UtcNow.Should().BeOnOrAfter(expiry);
        lock (feed.Notices)
        {
            feed.Notices.Should().ContainSingle().Which.Code.Should().Be(ReconnectCodes.TokenExpired);
        }
        lock (feed.Failures)
        {
            feed.Failures[0].Message.Should().Contain("401");
        }

        var after = await cluster.DeliverAsync(repo, 3);
        await Task.Delay(TimeSpan.FromSeconds(3)); // room for anything that would still arrive
        feed.Received.Select(e => e.Id).Should().Equal(before, "nothing is sent after the token expired");
        lock (feed.Connections)
        {
            feed.Connections.Should().HaveCount(1, "no connection was accepted with the expired token");
        }
        after.Should().HaveCount(3);
    }

    [Fact]
    public async Task A_feed_whose_provider_mints_fresh_short_lived_tokens_receives_every_event_once_in_order_across_expiries()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra);
        var (userId, repo) = await cluster.NewUserWithRepoAsync();
        var minted = 0;
        var client = cluster.ClientFor(_ =>
        {
            Interlocked.Increment(ref minted);
            return ValueTask.FromResult(ShortLived(userId, TimeSpan.FromSeconds(4)));
        });
        await using var feed = new RecordingFeed(client.Watch(null));
        await feed.CaughtUp.WaitAsync(TimeSpan.FromSeconds(20));

        // Webhooks all the while, until the feed has been through at least three expiries.
        var sent = new List<long>();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (ConnectionCount(feed) < 4 && DateTime.UtcNow < deadline)
        {
            sent.AddRange(await cluster.DeliverAsync(repo, 1));
            await Task.Delay(50);
        }
        sent.AddRange(await cluster.DeliverAsync(repo, 5));

        ConnectionCount(feed).Should().BeGreaterThanOrEqualTo(4, "each token lasts 4 seconds");
        await feed.WaitForCountAsync(sent.Count, TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(1)); // room for a duplicate to show up
        feed.Received.Select(e => e.Id).Should().Equal(sent, "0 lost, 0 duplicated, in order");
        feed.Received.Select(e => e.Position).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        lock (feed.Notices)
        {
            feed.Notices.Should().Contain(n => n.Code == ReconnectCodes.TokenExpired);
        }
        minted.Should().BeGreaterThanOrEqualTo(4, "every connection asks the provider");
    }

    [Fact]
    public async Task An_expired_token_within_the_clock_skew_is_refused_by_the_hub_but_still_accepted_by_the_api()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1);
        var userId = Guid.NewGuid();
        var token = TestTokens.For(userId, d => d.Expires = DateTime.UtcNow.AddSeconds(-5));

        var repos = await cluster.Api.AnonymousClient().WithToken(token).GetAsync("/api/repos");
        repos.StatusCode.Should().Be(HttpStatusCode.OK, "Auth:ClockSkewSeconds allows 30 s");

        await using var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(cluster.ReplicaUrls[0], RealtimeProtocol.HubPath), o =>
            {
                o.SkipNegotiation = true;
                o.Transports = HttpTransportType.WebSockets;
                o.AccessTokenProvider = () => Task.FromResult<string?>(token);
            })
            .Build();
        var refused = await connection.Invoking(c => c.StartAsync()).Should().ThrowAsync<Exception>();
        refused.Which.Message.Should().Contain("401");
    }

    private static int ConnectionCount(RecordingFeed feed)
    {
        lock (feed.Connections)
        {
            return feed.Connections.Count;
        }
    }
}
