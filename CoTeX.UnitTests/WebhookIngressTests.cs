using System.Diagnostics.Metrics;
using System.Net;
using CoTeX.Api.WebhookIngress;
using Microsoft.Extensions.Options;

namespace CoTeX.UnitTests;

/// <summary>The unverified-bytes budget and the sender ranges, without a server (the flood itself: Hostile/UnsignedFloodTests).</summary>
public sealed class WebhookIngressTests
{
    private const long MB = 1024 * 1024;

    private static UnverifiedBodyBudget Budget(long max, long outside) =>
        new(Options.Create(new WebhookIngressOptions { MaxUnverifiedBytes = max, MaxUnverifiedBytesOutsideRanges = outside }), new Meters());

    [Fact]
    public void Strangers_share_their_part_of_the_budget_and_the_rest_stays_for_GitHub()
    {
        var budget = Budget(96 * MB, 64 * MB);

        budget.TryReserve(25 * MB, outsideRanges: true).Should().BeTrue();
        budget.TryReserve(25 * MB, outsideRanges: true).Should().BeTrue();
        budget.TryReserve(25 * MB, outsideRanges: true).Should().BeFalse("strangers hold 50 of their 64 MB");
        budget.Held.Should().Be(50 * MB, "a refused reservation takes nothing");

        budget.TryReserve(25 * MB, outsideRanges: false).Should().BeTrue("GitHub's largest delivery still fits");
        budget.TryReserve(25 * MB, outsideRanges: false).Should().BeFalse("the whole budget is 96 MB");

        budget.Release(25 * MB, outsideRanges: true);
        budget.TryReserve(10 * MB, outsideRanges: true).Should().BeTrue();
        budget.Held.Should().Be(60 * MB);
    }

    [Theory]
    [InlineData("192.30.252.10", true)]      // GitHub hooks
    [InlineData("::ffff:140.82.115.1", true)] // the same, as a dual-mode socket reports it
    [InlineData("54.187.174.169", true)]     // Stripe
    [InlineData("127.0.0.1", false)]
    [InlineData("203.0.113.7", false)]
    public void The_published_ranges_decide_who_is_a_stranger(string address, bool inside) =>
        new WebhookSenders(Options.Create(new WebhookIngressOptions())).Contains(IPAddress.Parse(address)).Should().Be(inside);

    [Fact]
    public void A_configured_list_replaces_the_published_ranges()
    {
        var senders = new WebhookSenders(Options.Create(new WebhookIngressOptions { SenderRanges = ["127.0.0.0/8"] }));

        senders.Contains(IPAddress.Loopback).Should().BeTrue();
        senders.Contains(IPAddress.Parse("192.30.252.10")).Should().BeFalse();
    }

    private sealed class Meters : IMeterFactory
    {
        public Meter Create(MeterOptions options) => new(options);

        public void Dispose()
        {
        }
    }
}
