using System.Net;
using CoTeX.Shared.Web;
using Microsoft.Extensions.Options;

namespace CoTeX.Api.WebhookIngress;

/// <summary>
/// Whether a request comes from GitHub's or Stripe's published delivery addresses (<see cref="WebhookIngressOptions.SenderRanges"/>).
/// Not a proof of anything (the signature is): it only decides which limits a sender gets before its signature is
/// checked. A TCP peer's address cannot be forged without completing the handshake, so a stranger cannot borrow it.
/// </summary>
public sealed class WebhookSenders(IOptions<WebhookIngressOptions> options) : IWebhookSenderRanges
{
    private readonly IPNetwork[] _ranges = options.Value.EffectiveSenderRanges.Select(r => IPNetwork.Parse(r)).ToArray();

    /// <summary>
    /// True inside the ranges, and for a request with no peer address (hosted in-process, a Unix socket): that one
    /// did not come over the network from a stranger.
    /// </summary>
    public bool Contains(IPAddress? address)
    {
        if (address is null)
        {
            return true;
        }
        // Kestrel's dual-mode sockets report IPv4 peers as ::ffff:a.b.c.d; the ranges are written as IPv4.
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        foreach (var range in _ranges)
        {
            if (range.Contains(address))
            {
                return true;
            }
        }
        return false;
    }
}
