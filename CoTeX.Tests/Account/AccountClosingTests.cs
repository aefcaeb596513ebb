extern alias realtime;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using realtime::CoTeX.Realtime.Feeds;

namespace CoTeX.Tests.Account;

/// <summary>
/// <c>DELETE /api/me</c>: a paying user can leave (the subscription ends at once, without renewal, then the account is
/// closed as a free one), never half-way; and a closed account is refused at once everywhere.
/// </summary>
public sealed class AccountClosingTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_pro_user_closes_the_account_the_subscription_is_canceled_at_once_and_their_data_goes()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        var subscription = await BecomeProAsync(app, stripe, user);
        var repo = await ApiApp.TrackRepoAsync(user);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", repo.FullName)))
            .EnsureSuccessStatusCode();

        var response = await user.DeleteAsync("/api/me");

        response.StatusCode.Should().Be(HttpStatusCode.NoContent, await response.Content.ReadAsStringAsync());
        stripe.Current(subscription)["status"]!.GetValue<string>().Should().Be("canceled");
        stripe.Calls.Should().Contain($"DELETE /v1/subscriptions/{subscription["id"]}");
        (await user.GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await app.CountEventsAsync()).Should().Be(0);
        (await app.ScalarAsync<string>($"select plan from subscriptions where user_id = '{userId}'")).Should().Be("free");
        (await app.ScalarAsync<long>($"select count(*) from users where id = '{userId}' and deleted_at is not null")).Should().Be(1);
    }

    [Fact]
    public async Task When_stripe_cannot_cancel_nothing_is_deleted_and_the_answer_says_to_retry()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        var subscription = await BecomeProAsync(app, stripe, user);
        var repo = await ApiApp.TrackRepoAsync(user);

        stripe.Unavailable = true;
        var response = await user.DeleteAsync("/api/me");
        stripe.Unavailable = false;

        response.StatusCode.Should().BeOneOf(HttpStatusCode.ServiceUnavailable, HttpStatusCode.BadGateway);
        response.Headers.RetryAfter.Should().NotBeNull();
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("Nothing was deleted");
        stripe.Current(subscription)["status"]!.GetValue<string>().Should().Be("active");
        var repos = await user.GetFromJsonAsync<RepoList>("/api/repos");
        repos!.Repos.Should().ContainSingle(r => r.Id == repo.Id);
        repos.Plan.Name.Should().Be("pro");

        (await user.DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent, "the retry goes through");
    }

    [Fact]
    public async Task A_closed_account_is_refused_at_once_by_every_api_and_realtime_process_and_its_connections_close()
    {
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1);
        await using var otherApi = await ApiApp.StartAsync(infra, databaseConnectionString: cluster.Api.DatabaseConnectionString);
        var (userId, _) = await cluster.NewUserWithRepoAsync();
        var elsewhere = otherApi.ClientFor(userId);
        (await elsewhere.GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK, "the other Api knows the user now");
        await cluster.WatchAsync(userId, null);
        var feeds = cluster.Replicas[0].Services.GetRequiredService<FeedRegistry>();
        feeds.All.Should().Contain(f => f.UserId == userId);

        (await cluster.Api.ClientFor(userId).DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        await Eventually.SucceedsAsync(async () =>
        {
            (await elsewhere.GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            feeds.All.Should().NotContain(f => f.UserId == userId, "the replica closed the account's connections");
        }, TimeSpan.FromSeconds(3));
        var negotiate = new HttpRequestMessage(HttpMethod.Post, new Uri(cluster.ReplicaUrls[0], "/ws/negotiate?negotiateVersion=1"));
        negotiate.Headers.Authorization = new("Bearer", TestTokens.For(userId));
        using var http = new HttpClient();
        (await http.SendAsync(negotiate)).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "the replica refuses the token too");
    }

    /// <summary>Checkout, payment, and the webhook that makes the user Pro; returns the subscription.</summary>
    private static async Task<JsonObject> BecomeProAsync(ApiApp app, FakeStripe stripe, HttpClient user)
    {
        var checkout = await user.PostAsync("/api/checkout", null);
        checkout.EnsureSuccessStatusCode();
        var session = stripe.Session((await checkout.Content.ReadFromJsonAsync<CheckoutSession>())!.Url);
        var subscription = stripe.CompleteCheckout(session);
        var json = FakeStripe.Event("checkout.session.completed", session);
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
            Headers = { { "Stripe-Signature", FakeStripe.Sign(json) } },
        };
        (await app.AnonymousClient().SendAsync(request)).EnsureSuccessStatusCode();
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("pro");
        return subscription;
    }
}
