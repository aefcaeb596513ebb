using System.Diagnostics.Metrics;
using CoTeX.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace CoTeX.Api.WebhookIngress;

/// <summary>
/// The request body bytes the Api holds before their signature is checked, for the whole process: a delivery reserves
/// its bytes before they are read (all of <c>Content-Length</c> at once when it is sent, chunk by chunk otherwise) and
/// gives them back once the signature has been checked. Past the budget a delivery is answered 503 + Retry-After, so a
/// flood of unsigned 25 MB bodies costs at most the budget, not 25 MB (and a copy) per request.
/// <para>
/// Senders outside GitHub's and Stripe's ranges (<see cref="WebhookSenders"/>) share a smaller part of it, so such a
/// flood cannot take the room a genuine delivery from GitHub needs (the validator keeps 25 MB of room for them).
/// A semaphore counted in bytes, without waiting: a delivery that cannot be held now is better refused at once (GitHub
/// shows it as failed, Stripe retries) than queued behind the flood that filled the budget.
/// </para>
/// </summary>
public sealed class UnverifiedBodyBudget
{
    private readonly long _max;
    private readonly long _maxOutside;
    private readonly Counter<long> _refused;
    private long _held;
    private long _heldOutside;

    public UnverifiedBodyBudget(IOptions<WebhookIngressOptions> options, IMeterFactory meters)
    {
        _max = options.Value.MaxUnverifiedBytes;
        _maxOutside = options.Value.MaxUnverifiedBytesOutsideRanges;
        var meter = meters.Create(CoTeXTelemetry.Name);
        meter.CreateObservableGauge("cotex.webhooks.unverified.bytes", () => Interlocked.Read(ref _held), "By",
            "Webhook body bytes held before their signature was checked");
        _refused = meter.CreateCounter<long>("cotex.webhooks.unverified.refused", "{request}",
            "Webhook requests answered 503 because the unverified-bytes budget was full");
    }

    /// <summary>Bytes held now (tests and the benchmark read it).</summary>
    public long Held => Interlocked.Read(ref _held);

    /// <summary>Takes <paramref name="bytes"/> from the budget, or nothing and false when they do not fit.</summary>
    public bool TryReserve(long bytes, bool outsideRanges)
    {
        if (Interlocked.Add(ref _held, bytes) > _max)
        {
            Interlocked.Add(ref _held, -bytes);
            _refused.Add(1);
            return false;
        }
        if (outsideRanges && Interlocked.Add(ref _heldOutside, bytes) > _maxOutside)
        {
            Interlocked.Add(ref _heldOutside, -bytes);
            Interlocked.Add(ref _held, -bytes);
            _refused.Add(1);
            return false;
        }
        return true;
    }

    public void Release(long bytes, bool outsideRanges)
    {
        Interlocked.Add(ref _held, -bytes);
        if (outsideRanges)
        {
            Interlocked.Add(ref _heldOutside, -bytes);
        }
    }
}
