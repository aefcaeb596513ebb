using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A stateful stand-in for the parts of Stripe's API CoTeX uses (customers, checkout sessions with their list and
/// expire calls, subscriptions, billing portal sessions), reached by the product through Stripe.net with <c>Stripe:ApiBase</c>. Tests drive the
/// state (a checkout completes, a subscription is canceled) and sign events the way Stripe does.
/// </summary>
public sealed class FakeStripe : IAsyncDisposable
{
    public const string WebhookSecret = "whsec_cotex_test_secret";
    public const string ProPriceId = "price_cotex_pro";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, JsonObject> _customers = new();
    private readonly ConcurrentDictionary<string, JsonObject> _sessions = new();
    private readonly ConcurrentDictionary<string, JsonObject> _subscriptions = new();
    private readonly ConcurrentDictionary<string, int> _idempotency = new();
    private readonly ConcurrentQueue<string> _calls = new();
    private int _ids;

    private FakeStripe(WebApplication app) => _app = app;

    public string ApiBase { get; private set; } = null!;
    public bool Unavailable { get; set; }
    public int CustomerCreations => _customers.Count;

    /// <summary>Every API call the product made, as "GET /v1/subscriptions".</summary>
    public IReadOnlyList<string> Calls => _calls.ToArray();

    public void ForgetCalls() => _calls.Clear();

    /// <summary>The settings that point the product at this fake.</summary>
    public Dictionary<string, string?> Settings => new()
    {
        ["Stripe:SecretKey"] = "sk_test_cotex",
        ["Stripe:WebhookSecret"] = WebhookSecret,
        ["Stripe:ProPriceId"] = ProPriceId,
        ["Stripe:SuccessUrl"] = "https://app.cotex.test/billing/success",
        ["Stripe:CancelUrl"] = "https://app.cotex.test/billing/cancel",
        ["Stripe:ApiBase"] = ApiBase,
    };

    public static async Task<FakeStripe> StartAsync()
    {
        var fake = new FakeStripe(LoopbackApp.Create());
        fake.Map();
        fake.ApiBase = await LoopbackApp.StartAsync(fake._app);
        return fake;
    }

    private void Map()
    {
        _app.Use(async (context, next) =>
        {
            _calls.Enqueue($"{context.Request.Method} {context.Request.Path}");
            if (Unavailable)
            {
                context.Response.StatusCode = 500;
                await context.Response.WriteAsJsonAsync(new { error = new { type = "api_error", message = "Fake outage" } });
                return;
            }
            await next(context);
        });
        _app.MapPost("/v1/customers", async (HttpRequest request) =>
        {
            var form = await request.ReadFormAsync();
            if (request.Headers["Idempotency-Key"].ToString() is { Length: > 0 } key && _idempotency.TryGetValue(key, out _))
            {
                return Json(_customers.Values.First(c => c["idempotency_key"]?.GetValue<string>() == key));
            }
            var customer = new JsonObject
            {
                ["id"] = NewId("cus"), ["object"] = "customer", ["email"] = form["email"].ToString(),
                ["metadata"] = new JsonObject { ["user_id"] = form["metadata[user_id]"].ToString() },
                ["idempotency_key"] = request.Headers["Idempotency-Key"].ToString(),
            };
            _idempotency[request.Headers["Idempotency-Key"].ToString()] = 1;
            _customers[customer["id"]!.GetValue<string>()] = customer;
            return Json(customer);
        });
        _app.MapPost("/v1/checkout/sessions", async (HttpRequest request) =>
        {
            var form = await request.ReadFormAsync();
            var id = NewId("cs");
            var session = new JsonObject
            {
                ["id"] = id, ["object"] = "checkout.session", ["mode"] = form["mode"].ToString(),
                ["customer"] = form["customer"].ToString(), ["client_reference_id"] = form["client_reference_id"].ToString(),
                ["price"] = form["line_items[0][price]"].ToString(),
                ["user_id_metadata"] = form["subscription_data[metadata][user_id]"].ToString(),
                ["success_url"] = form["success_url"].ToString(), ["url"] = $"https://checkout.stripe.test/c/pay/{id}",
                ["status"] = "open", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                ["expires_at"] = DateTimeOffset.UtcNow.AddHours(24).ToUnixTimeSeconds(),
            };
            _sessions[id] = session;
            return Json(session);
        });
        // List: filtered by customer and status (open, complete, expired), paged like the subscriptions list.
        _app.MapGet("/v1/checkout/sessions", (HttpRequest request) =>
        {
            var customer = request.Query["customer"].ToString();
            var status = request.Query["status"].ToString();
            return Page(request, "/v1/checkout/sessions", _sessions.Values.Where(s =>
                (customer.Length == 0 || s["customer"]!.GetValue<string>() == customer)
                && (status.Length == 0 || s["status"]!.GetValue<string>() == status)));
        });
        // Expire: only an open session can be expired; otherwise Stripe answers 400 invalid_request_error.
        _app.MapPost("/v1/checkout/sessions/{id}/expire", (string id) =>
        {
            if (!_sessions.TryGetValue(id, out var session))
            {
                return StripeError(404, "resource_missing", $"No such checkout.session: '{id}'");
            }
            lock (session)
            {
                if (session["status"]!.GetValue<string>() != "open")
                {
                    return StripeError(400, "invalid_request_error",
                        $"This Checkout Session is not in an expireable state (status: {session["status"]}).");
                }
                session["status"] = "expired";
                session["expires_at"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            }
            return Json(session);
        });
        // Pages as Stripe does: at most `limit` (default 10, at most 100) after `starting_after`, in a stable order.
        _app.MapGet("/v1/subscriptions", (HttpRequest request) =>
        {
            var customer = request.Query["customer"].ToString();
            return Page(request, "/v1/subscriptions",
                _subscriptions.Values.Where(s => customer.Length == 0 || s["customer"]!.GetValue<string>() == customer));
        });
        _app.MapGet("/v1/subscriptions/{id}", (string id) =>
            _subscriptions.TryGetValue(id, out var s) ? Json(s) : Results.NotFound());
        // Cancel: at once (Stripe's DELETE ends the subscription now; the portal's "at period end" is another call).
        _app.MapDelete("/v1/subscriptions/{id}", (string id) =>
        {
            if (!_subscriptions.TryGetValue(id, out var subscription))
            {
                return Results.NotFound();
            }
            subscription["status"] = "canceled";
            subscription["canceled_at"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            return Json(subscription);
        });
        _app.MapPost("/v1/billing_portal/sessions", async (HttpRequest request) =>
        {
            var form = await request.ReadFormAsync();
            var id = NewId("bps");
            return Json(new JsonObject
            {
                ["id"] = id, ["object"] = "billing_portal.session", ["customer"] = form["customer"].ToString(),
                ["return_url"] = form["return_url"].ToString(), ["url"] = $"https://billing.stripe.test/p/session/{id}",
            });
        });
    }

    /// <summary>A page of a list as Stripe pages it: at most <c>limit</c> (default 10, at most 100) after <c>starting_after</c>, by id.</summary>
    private static IResult Page(HttpRequest request, string url, IEnumerable<JsonObject> items)
    {
        var limit = Math.Clamp(int.TryParse(request.Query["limit"], out var l) ? l : 10, 1, 100);
        var after = request.Query["starting_after"].ToString();
        var matching = items
            .OrderBy(s => s["id"]!.GetValue<string>(), StringComparer.Ordinal)
            .SkipWhile(s => after.Length > 0 && string.CompareOrdinal(s["id"]!.GetValue<string>(), after) <= 0)
            .ToList();
        var data = new JsonArray(matching.Take(limit).Select(s => (JsonNode)s.DeepClone()).ToArray());
        return Json(new JsonObject { ["object"] = "list", ["url"] = url, ["has_more"] = matching.Count > limit, ["data"] = data });
    }

    private static IResult StripeError(int status, string type, string message) =>
        Results.Text(new JsonObject { ["error"] = new JsonObject { ["type"] = type, ["message"] = message } }.ToJsonString(),
            "application/json", statusCode: status);

    public JsonObject Session(string url) => _sessions.Values.Single(s => s["url"]!.GetValue<string>() == url);

    /// <summary>
    /// What Stripe does when the customer pays: an active subscription for the session's customer, and the session
    /// complete. An expired session cannot be paid (Stripe shows the customer that it has expired).
    /// </summary>
    public JsonObject CompleteCheckout(JsonObject session, string status = "active")
    {
        lock (session)
        {
            if ((string?)session["status"] == "expired")
            {
                throw new InvalidOperationException($"Checkout session {session["id"]} has expired and cannot be paid.");
            }
            if (session["status"] is not null)
            {
                session["status"] = "complete";
            }
        }
        var subscription = new JsonObject
        {
            ["id"] = NewId("sub"), ["object"] = "subscription", ["customer"] = session["customer"]!.GetValue<string>(),
            ["status"] = status, ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + Interlocked.Increment(ref _ids),
            ["metadata"] = new JsonObject { ["user_id"] = session["user_id_metadata"]!.GetValue<string>() },
            ["items"] = new JsonObject
            {
                ["object"] = "list",
                ["data"] = new JsonArray(new JsonObject
                {
                    ["id"] = NewId("si"), ["object"] = "subscription_item",
                    ["current_period_end"] = DateTimeOffset.UtcNow.AddDays(30).ToUnixTimeSeconds(),
                    ["price"] = new JsonObject { ["id"] = ProPriceId, ["object"] = "price" },
                }),
            },
        };
        session["subscription"] = subscription["id"]!.GetValue<string>();
        _subscriptions[subscription["id"]!.GetValue<string>()] = subscription;
        return subscription;
    }

    /// <summary>A customer of <paramref name="userId"/> with a subscription, as if they had paid long ago.</summary>
    public JsonObject AddSubscription(Guid userId, string status = "active")
    {
        var customer = new JsonObject { ["id"] = NewId("cus"), ["object"] = "customer", ["metadata"] = new JsonObject { ["user_id"] = userId.ToString() } };
        _customers[customer["id"]!.GetValue<string>()] = customer;
        var session = new JsonObject { ["customer"] = customer["id"]!.GetValue<string>(), ["user_id_metadata"] = userId.ToString() };
        return CompleteCheckout(session, status);
    }

    public void SetStatus(JsonObject subscription, string status) =>
        _subscriptions[subscription["id"]!.GetValue<string>()]["status"] = status;

    public JsonObject Current(JsonObject subscription) => _subscriptions[subscription["id"]!.GetValue<string>()];

    /// <summary>An event as Stripe sends it, with a snapshot of <paramref name="dataObject"/>.</summary>
    public static string Event(string type, JsonObject dataObject, string? id = null) => new JsonObject
    {
        ["id"] = id ?? $"evt_{Guid.NewGuid():N}", ["object"] = "event", ["api_version"] = "2020-08-27",
        ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["type"] = type, ["livemode"] = false,
        ["pending_webhooks"] = 1, ["data"] = new JsonObject { ["object"] = dataObject.DeepClone() },
    }.ToJsonString();

    public static string Invoice(string customer) =>
        new JsonObject { ["id"] = $"in_{Guid.NewGuid():N}", ["object"] = "invoice", ["customer"] = customer }.ToJsonString();

    /// <summary>The <c>Stripe-Signature</c> header for <paramref name="payload"/>.</summary>
    public static string Sign(string payload, DateTimeOffset? at = null, string secret = WebhookSecret)
    {
        var timestamp = (at ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var signature = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{payload}"));
        return $"t={timestamp},v1={Convert.ToHexStringLower(signature)}";
    }

    private string NewId(string prefix) => $"{prefix}_{Interlocked.Increment(ref _ids):D6}{Guid.NewGuid():N}"[..(prefix.Length + 20)];

    private static IResult Json(JsonNode node) => Results.Text(node.ToJsonString(), "application/json");

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
