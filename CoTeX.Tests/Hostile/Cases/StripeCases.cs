using System.Text;
using CoTeX.Tests.Infrastructure;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>Stripe's webhook: missing, stale, future and wrong signatures, signed garbage.</summary>
internal static class StripeCases
{
    public static IEnumerable<HostileCase> For(Random random, HttpClient client)
    {
        var json = FakeStripe.Event("customer.subscription.updated", new System.Text.Json.Nodes.JsonObject { ["id"] = "sub_x", ["object"] = "subscription", ["customer"] = "cus_x" });
        HttpRequestMessage Event(string body, string? signature) =>
            new(HttpMethod.Post, "/webhooks/stripe")
            {
                Content = new StringContent(body, Encoding.UTF8, "application/json"),
                Headers = { { "Stripe-Signature", signature ?? "" } },
            };
        yield return new("stripe webhook", "no signature", () => Event(json, null), client);
        yield return new("stripe webhook", "stale", () => Event(json, FakeStripe.Sign(json, DateTimeOffset.UtcNow.AddMinutes(-6))), client);
        yield return new("stripe webhook", "future", () => Event(json, FakeStripe.Sign(json, DateTimeOffset.UtcNow.AddMinutes(10)) + "x"), client);
        yield return new("stripe webhook", "wrong secret", () => Event(json, FakeStripe.Sign(json, secret: "whsec_nope")), client);
        yield return new("stripe webhook", "garbage header", () => Event(json, "t=abc,v1=zz"), client);
        for (var i = 0; i < 6; i++)
        {
            var cut = random.Next(1, json.Length - 1);
            var truncated = json[..cut];
            yield return new("stripe webhook", $"signed truncated at {cut}", () => Event(truncated, FakeStripe.Sign(truncated)), client);
        }
        foreach (var body in new[] { "null", "[]", "{}", "\"evt\"", "{\"id\":5}" })
        {
            yield return new("stripe webhook", $"signed {body}", () => Event(body, FakeStripe.Sign(body)), client);
        }
    }
}
