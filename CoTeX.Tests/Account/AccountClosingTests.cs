extern alias realtime;
extern alias worker;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using realtime::CoTeX.Realtime.Feeds;
using Stripe;
using worker::CoTeX.Worker.Billing;

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
        var repo = await ApiRequests.TrackRepoAsync(user);
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
        var repo = await ApiRequests.TrackRepoAsync(user);

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

    [Fact]
    public async Task A_checkout_left_open_is_expired_when_the_account_closes_and_can_no_longer_be_paid()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var user = app.ClientFor();
        var checkout = await user.PostAsync("/api/checkout", null);
        checkout.EnsureSuccessStatusCode();
        var session = stripe.Session((await checkout.Content.ReadFromJsonAsync<CheckoutSession>())!.Url);
        session["status"]!.GetValue<string>().Should().Be("open");

        (await user.DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        session["status"]!.GetValue<string>().Should().Be("expired");
        stripe.Calls.Should().Contain($"POST /v1/checkout/sessions/{session["id"]}/expire");
        FluentActions.Invoking(() => stripe.CompleteCheckout(session)).Should().Throw<InvalidOperationException>("Stripe refuses to take the payment");
    }

    [Theory]
    [InlineData("checkout.session.completed")]
    [InlineData("customer.subscription.created")]
    public async Task Billing_that_reaches_a_closed_account_is_canceled_at_stripe_and_the_account_stays_free_and_closed(string eventType)
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        (await user.PostAsync("/api/checkout", null)).EnsureSuccessStatusCode();
        var customer = await app.ScalarAsync<string>($"select stripe_customer_id from subscriptions where user_id = '{userId}'");
        (await user.DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        var session = await LateCheckoutAsync(stripe, customer!, userId);
        var subscription = stripe.CompleteCheckout(session);

        var response = await SendStripeEventAsync(app, FakeStripe.Event(eventType, eventType.StartsWith("checkout") ? session : subscription));

        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        stripe.Current(subscription)["status"]!.GetValue<string>().Should().Be("canceled");
        stripe.Calls.Should().Contain($"DELETE /v1/subscriptions/{subscription["id"]}");
        (await app.ScalarAsync<string>($"select plan from subscriptions where user_id = '{userId}'")).Should().Be("free");
        (await app.ScalarAsync<string>($"select status from subscriptions where user_id = '{userId}'")).Should().Be("canceled");
        (await app.ScalarAsync<long>($"select count(*) from users where id = '{userId}' and deleted_at is not null")).Should().Be(1);
        (await user.GetAsync("/api/billing")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "the account stays closed");
    }

    [Fact]
    public async Task A_closed_accounts_subscription_whose_webhook_never_came_is_canceled_by_the_workers_reconciliation()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        (await user.PostAsync("/api/checkout", null)).EnsureSuccessStatusCode();
        var customer = await app.ScalarAsync<string>($"select stripe_customer_id from subscriptions where user_id = '{userId}'");
        (await user.DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        // A late session is paid, and no webhook about it arrives.
        var subscription = stripe.CompleteCheckout(await LateCheckoutAsync(stripe, customer!, userId));

        await using var worker = ServiceHost<worker::Program>.Create(app.DatabaseConnectionString, infra.Redis.ConnectionString,
            new(stripe.Settings) { ["Stripe:ReconcileEnabled"] = "false" }); // the test runs the round itself
        var reconciler = worker.Services.GetRequiredService<BillingReconciler>();
        (await reconciler.ReconcileOnceAsync(CancellationToken.None)).Corrections.Should().Be(1);

        stripe.Current(subscription)["status"]!.GetValue<string>().Should().Be("canceled");
        (await app.ScalarAsync<string>($"select plan from subscriptions where user_id = '{userId}'")).Should().Be("free");
        (await reconciler.ReconcileOnceAsync(CancellationToken.None)).Corrections.Should().Be(0, "nothing drifted since");
    }

    [Fact]
    public async Task A_repo_registration_waiting_on_the_user_lock_while_the_account_closes_is_410_and_stores_nothing()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        (await user.GetAsync("/api/repos")).StatusCode.Should().Be(HttpStatusCode.OK, "the user exists and this Api knows them");

        // Hold the user's row lock, so the closure and then the registration queue behind it, in that order.
        await using var held = await HoldUserLockAsync(app, userId);
        var closing = user.DeleteAsync("/api/me");
        await WaitForLockWaitersAsync(app, 1);
        var registering = user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/Hello-World" });
        await WaitForLockWaitersAsync(app, 2);
        await held.CommitAsync();

        (await closing).StatusCode.Should().Be(HttpStatusCode.NoContent);
        var registered = await registering;
        registered.StatusCode.Should().Be(HttpStatusCode.Gone, await registered.Content.ReadAsStringAsync());
        (await registered.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("title").GetString().Should().Be("Account closed");
        (await app.ScalarAsync<long>($"select count(*) from tracked_repos where user_id = '{userId}'")).Should().Be(0);
        (await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/Hello-World" })).StatusCode
            .Should().Be(HttpStatusCode.Unauthorized, "a request made after the closure is refused at the door");
    }

    [Fact]
    public async Task Two_closures_at_once_close_the_account_once_and_the_second_is_410()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        await ApiRequests.TrackRepoAsync(user);

        HttpResponseMessage first, second;
        await using (var held = await HoldUserLockAsync(app, userId))
        {
            var closing = user.DeleteAsync("/api/me");
            await WaitForLockWaitersAsync(app, 1);
            var closingAgain = user.DeleteAsync("/api/me");
            await WaitForLockWaitersAsync(app, 2);
            await held.CommitAsync();
            (first, second) = (await closing, await closingAgain);
        }

        first.StatusCode.Should().Be(HttpStatusCode.NoContent);
        second.StatusCode.Should().Be(HttpStatusCode.Gone, await second.Content.ReadAsStringAsync());
        (await second.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("title").GetString().Should().Be("Account closed");
        (await app.ScalarAsync<long>($"select count(*) from tracked_repos where user_id = '{userId}'")).Should().Be(0);
    }

    [Fact]
    public async Task A_checkout_that_the_closure_waited_for_is_expired_by_the_closure_and_one_that_waited_for_the_closure_is_410()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        (await user.GetAsync("/api/billing")).StatusCode.Should().Be(HttpStatusCode.OK, "the user exists and this Api knows them");

        HttpResponseMessage early, late;
        await using (var held = await HoldUserLockAsync(app, userId))
        {
            var checkingOut = user.PostAsync("/api/checkout", null);
            await WaitForLockWaitersAsync(app, 1);
            var closing = user.DeleteAsync("/api/me");
            await WaitForLockWaitersAsync(app, 2);
            var checkingOutAgain = user.PostAsync("/api/checkout", null);
            await WaitForLockWaitersAsync(app, 3);
            await held.CommitAsync();

            early = await checkingOut;
            (await closing).StatusCode.Should().Be(HttpStatusCode.NoContent);
            late = await checkingOutAgain;
        }

        early.StatusCode.Should().Be(HttpStatusCode.OK, "it had the lock before the closure");
        var session = stripe.Session((await early.Content.ReadFromJsonAsync<CheckoutSession>())!.Url);
        session["status"]!.GetValue<string>().Should().Be("expired", "the closure's second pass expired it");
        late.StatusCode.Should().Be(HttpStatusCode.Gone, await late.Content.ReadAsStringAsync());
        stripe.Calls.Count(c => c == "POST /v1/checkout/sessions").Should().Be(1, "no session is made for a closed account");
    }

    /// <summary>Takes the user's row lock in a transaction of its own, as a slow writer would; committing releases it.</summary>
    private static async Task<HeldLock> HoldUserLockAsync(ApiApp app, Guid userId)
    {
        var holder = new NpgsqlConnection(app.DatabaseConnectionString);
        await holder.OpenAsync();
        var transaction = await holder.BeginTransactionAsync();
        await using var lockRow = new NpgsqlCommand($"select 1 from users where id = '{userId}' for update", holder, transaction);
        await lockRow.ExecuteScalarAsync();
        return new HeldLock(holder, transaction);
    }

    private sealed class HeldLock(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public Task CommitAsync() => transaction.CommitAsync();

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }

    /// <summary>Waits until <paramref name="count"/> of the Api's queries wait for a row lock in its database.</summary>
    private static Task WaitForLockWaitersAsync(ApiApp app, int count) =>
        Eventually.SucceedsAsync(async () =>
            (await app.ScalarAsync<long>(
                "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"))
            .Should().Be(count), TimeSpan.FromSeconds(10));

    /// <summary>
    /// The Checkout session a <c>POST /api/checkout</c> makes (the same parameters, through Stripe.net) when it was
    /// authenticated before the account closed and reached Stripe after the closure had ended the customer's billing.
    /// </summary>
    private static async Task<JsonObject> LateCheckoutAsync(FakeStripe stripe, string customer, Guid userId)
    {
        var session = await new Stripe.Checkout.SessionService(new StripeClient("sk_test_cotex", apiBase: stripe.ApiBase)).CreateAsync(
            new Stripe.Checkout.SessionCreateOptions
            {
                Mode = "subscription", Customer = customer, ClientReferenceId = userId.ToString(),
                LineItems = [new Stripe.Checkout.SessionLineItemOptions { Price = FakeStripe.ProPriceId, Quantity = 1 }],
                SubscriptionData = new() { Metadata = new() { ["user_id"] = userId.ToString() } },
                SuccessUrl = "https://app.cotex.test/billing/success", CancelUrl = "https://app.cotex.test/billing/cancel",
            });
        return stripe.Session(session.Url);
    }

    private static Task<HttpResponseMessage> SendStripeEventAsync(ApiApp app, string json) =>
        app.AnonymousClient().SendAsync(new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
            Headers = { { "Stripe-Signature", FakeStripe.Sign(json) } },
        });

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
