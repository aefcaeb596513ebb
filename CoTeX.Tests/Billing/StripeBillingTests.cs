extern alias worker;

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using worker::CoTeX.Worker.Billing;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.Billing;

/// <summary>Stripe billing against a stateful fake of Stripe's API, with events signed like Stripe signs them.</summary>
public sealed class StripeBillingTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Checkout_then_completed_event_makes_the_user_pro_and_lifts_the_repo_limit_at_once()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var user = app.ClientFor();
        for (var i = 0; i < 3; i++)
        {
            await ApiRequests.TrackRepoAsync(user, $"octocat/repo-{i}");
        }
        (await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/repo-3" })).StatusCode.Should().Be(HttpStatusCode.Forbidden);

        var checkout = await user.PostAsync("/api/checkout", null);
        checkout.StatusCode.Should().Be(HttpStatusCode.OK);
        var url = (await checkout.Content.ReadFromJsonAsync<CheckoutSession>())!.Url;
        var session = stripe.Session(url);
        session["mode"]!.GetValue<string>().Should().Be("subscription");
        session["price"]!.GetValue<string>().Should().Be(FakeStripe.ProPriceId);
        session["customer"]!.GetValue<string>().Should().StartWith("cus_");

        stripe.CompleteCheckout(session);
        var response = await SendEventAsync(app, FakeStripe.Event("checkout.session.completed", session));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var billing = (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!;
        billing.Plan.Should().Be("pro");
        billing.SubscriptionStatus.Should().Be("active");
        billing.RepoLimit.Should().Be(50);
        billing.CurrentPeriodEnd.Should().BeCloseTo(DateTimeOffset.UtcNow.AddDays(30), TimeSpan.FromMinutes(5));
        (await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/repo-3" })).StatusCode.Should().Be(HttpStatusCode.Created);

        (await user.PostAsync("/api/checkout", null)).StatusCode.Should().Be(HttpStatusCode.Conflict, "already Pro");
        var portal = await user.PostAsync("/api/billing/portal", null);
        portal.StatusCode.Should().Be(HttpStatusCode.OK);
        (await portal.Content.ReadFromJsonAsync<PortalSession>())!.Url.Should().StartWith("https://billing.stripe.test/");
    }

    [Fact]
    public async Task A_replayed_event_is_a_2xx_no_op_and_stored_once()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var (_, session) = await CheckoutAsync(app, stripe, app.ClientFor());
        stripe.CompleteCheckout(session);
        var json = FakeStripe.Event("checkout.session.completed", session);

        var first = await SendEventAsync(app, json);
        var replay = await SendEventAsync(app, json);

        first.StatusCode.Should().Be(HttpStatusCode.OK);
        replay.StatusCode.Should().Be(HttpStatusCode.OK);
        (await replay.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString().Should().Be("duplicate");
        (await app.ScalarAsync<long>("select count(*) from stripe_events")).Should().Be(1);
        (await app.ScalarAsync<long>("select count(*) from stripe_events where processed_at is not null")).Should().Be(1);
    }

    [Fact]
    public async Task Deleted_delivered_before_a_stale_updated_still_ends_free_because_stripe_is_re_read()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var user = app.ClientFor();
        var (_, session) = await CheckoutAsync(app, stripe, user);
        var subscription = stripe.CompleteCheckout(session);
        var activeSnapshot = (JsonObject)subscription.DeepClone();
        (await SendEventAsync(app, FakeStripe.Event("customer.subscription.created", activeSnapshot))).EnsureSuccessStatusCode();
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("pro");

        stripe.SetStatus(subscription, "canceled");
        (await SendEventAsync(app, FakeStripe.Event("customer.subscription.deleted", stripe.Current(subscription)))).EnsureSuccessStatusCode();
        (await SendEventAsync(app, FakeStripe.Event("customer.subscription.updated", activeSnapshot))).EnsureSuccessStatusCode();

        var billing = (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!;
        billing.Plan.Should().Be("free");
        billing.SubscriptionStatus.Should().Be("canceled");
    }

    [Fact]
    public async Task Past_due_keeps_pro_with_a_visible_payment_problem_and_unpaid_drops_to_free()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var user = app.ClientFor();
        var (customer, session) = await CheckoutAsync(app, stripe, user);
        var subscription = stripe.CompleteCheckout(session);

        stripe.SetStatus(subscription, "past_due");
        (await SendEventAsync(app, FakeStripe.Event("invoice.payment_failed", JsonNode.Parse(FakeStripe.Invoice(customer))!.AsObject()))).EnsureSuccessStatusCode();
        var pastDue = (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!;
        pastDue.Plan.Should().Be("pro");
        pastDue.PaymentProblem.Should().BeTrue();

        stripe.SetStatus(subscription, "unpaid");
        (await SendEventAsync(app, FakeStripe.Event("customer.subscription.updated", stripe.Current(subscription)))).EnsureSuccessStatusCode();
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("free");
    }

    public static TheoryData<string> BadEvents => new() { "bad signature", "stale timestamp", "missing signature", "not json", "wrong secret" };

    [Theory]
    [MemberData(nameof(BadEvents))]
    public async Task Unverifiable_events_are_400_and_not_stored(string kind)
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var json = FakeStripe.Event("customer.subscription.updated", new JsonObject { ["id"] = "sub_x", ["object"] = "subscription", ["customer"] = "cus_x" });

        var response = kind switch
        {
            "bad signature" => await SendEventAsync(app, json, FakeStripe.Sign(json).Replace("v1=", "v1=00", StringComparison.Ordinal)),
            "stale timestamp" => await SendEventAsync(app, json, FakeStripe.Sign(json, DateTimeOffset.UtcNow.AddSeconds(-301))),
            "missing signature" => await SendEventAsync(app, json, signature: ""),
            "not json" => await SendEventAsync(app, "hello", FakeStripe.Sign("hello")),
            _ => await SendEventAsync(app, json, FakeStripe.Sign(json, secret: "whsec_someone_else")),
        };

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, kind);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        (await app.ScalarAsync<long>("select count(*) from stripe_events")).Should().Be(0);
    }

    [Fact]
    public async Task A_lost_webhook_is_repaired_by_the_workers_reconciliation()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var user = app.ClientFor();
        var (_, session) = await CheckoutAsync(app, stripe, user);
        stripe.CompleteCheckout(session); // ... and checkout.session.completed never arrives
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("free");

        await using var worker = ServiceHost<worker::Program>.Create(app.DatabaseConnectionString, infra.Redis.ConnectionString,
            new(stripe.Settings) { ["Stripe:ReconcileEnabled"] = "false" }); // the test runs the rounds itself
        var report = await worker.Services.GetRequiredService<BillingReconciler>().ReconcileOnceAsync(CancellationToken.None);

        report.Corrections.Should().Be(1);
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("pro");
        (await worker.Services.GetRequiredService<BillingReconciler>().ReconcileOnceAsync(CancellationToken.None))
            .Corrections.Should().Be(0, "nothing drifted since");
    }

    [Fact]
    public async Task Reconciling_a_thousand_customers_costs_a_stripe_call_per_page_not_per_customer()
    {
        const int customers = 1000;
        await using var stripe = await FakeStripe.StartAsync();
        var db = await infra.CreateMigratedDatabaseAsync();
        var userIds = Enumerable.Range(0, customers).Select(_ => Guid.NewGuid()).ToArray();
        await using (var connection = new Npgsql.NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var insert = new Npgsql.NpgsqlCommand("insert into users (id) select unnest($1::uuid[])", connection)
            {
                Parameters = { new Npgsql.NpgsqlParameter<Guid[]> { TypedValue = userIds } },
            };
            await insert.ExecuteNonQueryAsync();
        }
        var subscriptions = userIds.Select(id => stripe.AddSubscription(id)).ToList();
        await using var worker = ServiceHost<worker::Program>.Create(db, infra.Redis.ConnectionString,
            new(stripe.Settings) { ["Stripe:ReconcileEnabled"] = "false" }); // the test runs the rounds itself
        var reconciler = worker.Services.GetRequiredService<BillingReconciler>();
        (await reconciler.ReconcileOnceAsync(CancellationToken.None)).Corrections.Should().Be(customers, "the database knew none of them");

        stripe.ForgetCalls();
        var report = await reconciler.ReconcileOnceAsync(CancellationToken.None);

        report.Should().Be(new BillingReconciler.Report(0, customers, 0));
        var pages = (customers + 99) / 100;
        stripe.Calls.Should().HaveCount(pages, "one list call per 100 subscriptions, none per customer that is in sync");

        // A customer that drifted (canceled in the Stripe dashboard, the webhook lost) costs one more call, and is fixed.
        stripe.SetStatus(subscriptions[42], "canceled");
        stripe.ForgetCalls();
        (await reconciler.ReconcileOnceAsync(CancellationToken.None)).Corrections.Should().Be(1);
        stripe.Calls.Should().HaveCount(pages + 1);
        (await ScalarAsync<string>(db, $"select plan from subscriptions where user_id = '{userIds[42]}'")).Should().Be("free");
    }

    private static async Task<T?> ScalarAsync<T>(string db, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        return (T?)await command.ExecuteScalarAsync();
    }

    [Fact]
    public async Task While_stripe_is_down_the_webhook_is_503_kept_and_handled_by_the_worker_later()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);
        var user = app.ClientFor();
        var (_, session) = await CheckoutAsync(app, stripe, user);
        stripe.CompleteCheckout(session);

        stripe.Unavailable = true;
        var response = await SendEventAsync(app, FakeStripe.Event("checkout.session.completed", session));
        response.StatusCode.Should().BeOneOf(HttpStatusCode.ServiceUnavailable, HttpStatusCode.InternalServerError);
        (await app.ScalarAsync<long>("select count(*) from stripe_events where processed_at is null and attempts = 1")).Should().Be(1);
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("free");

        stripe.Unavailable = false;
        await app.ScalarAsync<int>("update stripe_events set received_at = now() - interval '2 minutes'");
        await using var worker = ServiceHost<worker::Program>.Create(app.DatabaseConnectionString, infra.Redis.ConnectionString,
            new(stripe.Settings) { ["Stripe:ReconcileEnabled"] = "false" }); // the test runs the rounds itself
        var report = await worker.Services.GetRequiredService<BillingReconciler>().ReconcileOnceAsync(CancellationToken.None);

        report.EventsRetried.Should().Be(1);
        (await app.ScalarAsync<long>("select count(*) from stripe_events where processed_at is null")).Should().Be(0);
        (await user.GetFromJsonAsync<BillingSummary>("/api/billing"))!.Plan.Should().Be("pro");
    }

    [Fact]
    public async Task Downgrade_pauses_repos_beyond_the_free_limit_which_still_store_but_no_longer_deliver()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var cluster = await RealtimeCluster.StartAsync(infra, replicas: 1, apiSettings: stripe.Settings);
        var app = cluster.Api;
        var userId = Guid.NewGuid();
        var user = app.ClientFor(userId);
        var (_, session) = await CheckoutAsync(app, stripe, user);
        var subscription = stripe.CompleteCheckout(session);
        (await SendEventAsync(app, FakeStripe.Event("checkout.session.completed", session))).EnsureSuccessStatusCode();
        var repos = new List<CreatedRepo>();
        for (var i = 0; i < 5; i++)
        {
            repos.Add(await ApiRequests.TrackRepoAsync(user, $"octocat/pro-repo-{i}"));
        }

        stripe.SetStatus(subscription, "canceled");
        (await SendEventAsync(app, FakeStripe.Event("customer.subscription.deleted", stripe.Current(subscription)))).EnsureSuccessStatusCode();

        var list = (await user.GetFromJsonAsync<RepoList>("/api/repos"))!;
        list.Repos.Should().HaveCount(5, "a downgrade deletes nothing");
        list.Repos.Where(r => r.Paused).Select(r => r.Id).Should().BeEquivalentTo(repos.Skip(3).Select(r => r.Id));
        list.Plan.Should().Be(new PlanUsage("free", 3, 3));

        var feed = await cluster.WatchAsync(userId, null);
        var pausedDelivery = await cluster.DeliverAsync(repos[4], 1);
        var activeDelivery = await cluster.DeliverAsync(repos[0], 1);
        await feed.WaitForCountAsync(1);
        await Task.Delay(300);
        feed.Received.Select(e => e.Id).Should().Equal(activeDelivery);
        (await app.CountEventsAsync(repos[4].Id)).Should().Be(1, "the paused repo's webhook is still verified and stored");

        // The user chooses which repos stay active.
        (await user.PatchAsJsonAsync($"/api/repos/{repos[4].Id}", new { paused = false })).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await user.PatchAsJsonAsync($"/api/repos/{repos[0].Id}", new { paused = true })).StatusCode.Should().Be(HttpStatusCode.OK);
        (await user.PatchAsJsonAsync($"/api/repos/{repos[4].Id}", new { paused = false })).StatusCode.Should().Be(HttpStatusCode.OK);
        _ = pausedDelivery;
    }

    [Fact]
    public async Task Anonymous_users_cannot_check_out()
    {
        await using var stripe = await FakeStripe.StartAsync();
        await using var app = await ApiApp.StartAsync(infra, stripe.Settings);

        var response = await app.ClientFor(anonymous: true).PostAsync("/api/checkout", null);

        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        stripe.CustomerCreations.Should().Be(0);
    }

    [Fact]
    public async Task Enabled_billing_with_a_missing_setting_fails_at_start_naming_it()
    {
        await using var stripe = await FakeStripe.StartAsync();
        var environment = stripe.Settings.Where(kv => kv.Key != "Stripe:ProPriceId")
            .ToDictionary(kv => kv.Key.Replace(":", "__", StringComparison.Ordinal), kv => kv.Value!);
        environment["ConnectionStrings__cotexdb"] = await infra.CreateMigratedDatabaseAsync();
        environment["ConnectionStrings__redis"] = infra.Redis.ConnectionString;
        environment["Auth__JwtSecret"] = TestTokens.Secret;
        environment["DataProtection__KeyEncryptionKey"] = TestTokens.KeyEncryptionKey;

        var (exitCode, output) = await ServiceProcess.RunToExitAsync("CoTeX.Api", environment, TimeSpan.FromSeconds(60));

        exitCode.Should().NotBe(0);
        output.Should().Contain("Stripe:ProPriceId");
    }

    private static async Task<(string Customer, JsonObject Session)> CheckoutAsync(ApiApp app, FakeStripe stripe, HttpClient user)
    {
        var response = await user.PostAsync("/api/checkout", null);
        response.EnsureSuccessStatusCode();
        var session = stripe.Session((await response.Content.ReadFromJsonAsync<CheckoutSession>())!.Url);
        _ = app;
        return (session["customer"]!.GetValue<string>(), session);
    }

    private static Task<HttpResponseMessage> SendEventAsync(ApiApp app, string json, string? signature = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        signature ??= FakeStripe.Sign(json);
        if (signature.Length > 0)
        {
            request.Headers.TryAddWithoutValidation("Stripe-Signature", signature);
        }
        return app.AnonymousClient().SendAsync(request);
    }
}
