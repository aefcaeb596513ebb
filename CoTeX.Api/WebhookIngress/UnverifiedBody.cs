using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace CoTeX.Api.WebhookIngress;

/// <summary>
/// A webhook's body as read, before its signature has been checked: in 64 KB chunks rented from the shared array pool
/// (small-object heap, reused, never one large array per stranger), its bytes reserved in the
/// <see cref="UnverifiedBodyBudget"/> until <see cref="Dispose"/>. Once the signature matches, <see cref="ToVerifiedArray"/>
/// copies it out as the payload that is stored, and the reservation goes back.
/// </summary>
public sealed class UnverifiedBody : IDisposable
{
    private const int ChunkSize = 64 * 1024;

    private readonly UnverifiedBodyBudget _budget;
    private readonly bool _outsideRanges;
    private readonly List<byte[]> _chunks = [];
    private long _reserved;
    private int _lastChunkUsed = ChunkSize;

    private UnverifiedBody(UnverifiedBodyBudget budget, bool outsideRanges, long reserved)
    {
        _budget = budget;
        _outsideRanges = outsideRanges;
        _reserved = reserved;
    }

    public long Length { get; private set; }

    /// <summary>The body, chunk after chunk (for the HMAC and for decoding).</summary>
    public ReadOnlySequence<byte> Sequence
    {
        get
        {
            if (_chunks.Count == 0)
            {
                return ReadOnlySequence<byte>.Empty;
            }
            if (_chunks.Count == 1)
            {
                return new ReadOnlySequence<byte>(_chunks[0], 0, (int)Length);
            }
            var first = new Segment(_chunks[0].AsMemory(0, ChunkSize), 0);
            var last = first;
            for (var i = 1; i < _chunks.Count; i++)
            {
                last = last.Append(_chunks[i].AsMemory(0, i == _chunks.Count - 1 ? _lastChunkUsed : ChunkSize));
            }
            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }

    /// <summary>Reserves <paramref name="bytes"/> more (Stripe's library needs the body as a string); false when they do not fit.</summary>
    public bool TryReserveMore(long bytes)
    {
        if (!_budget.TryReserve(bytes, _outsideRanges))
        {
            return false;
        }
        _reserved += bytes;
        return true;
    }

    /// <summary>The verified body as the one array that is stored from here on; the unverified chunks and their reservation go back.</summary>
    public byte[] ToVerifiedArray()
    {
        var array = Sequence.ToArray();
        Dispose();
        return array;
    }

    public void Dispose()
    {
        foreach (var chunk in _chunks)
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        _chunks.Clear();
        Length = 0;
        _budget.Release(_reserved, _outsideRanges);
        _reserved = 0;
    }

    /// <summary>
    /// Reads the whole body, or answers: 413 past <paramref name="maxBytes"/> (before reading when Content-Length says
    /// so), 503 + Retry-After when the budget cannot hold it, 408 when it has not arrived within
    /// <see cref="WebhookIngressOptions.BodySeconds"/>. Refusals close the connection, so a stranger's remaining
    /// megabytes are not read (and drained) for nothing.
    /// </summary>
    public static async Task<(UnverifiedBody? Body, ProblemHttpResult? Problem)> ReadAsync(HttpContext context, long maxBytes,
        string tooLargeDetail, CancellationToken cancellationToken)
    {
        var services = context.RequestServices;
        var budget = services.GetRequiredService<UnverifiedBodyBudget>();
        var options = services.GetRequiredService<IOptions<WebhookIngressOptions>>().Value;
        var outsideRanges = !services.GetRequiredService<WebhookSenders>().Contains(context.Connection.RemoteIpAddress);

        if (context.Request.ContentLength > maxBytes)
        {
            return (null, Refuse(context, StatusCodes.Status413PayloadTooLarge, "Payload too large", tooLargeDetail));
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = maxBytes + 1;
        }
        // A declared length is reserved whole before anything is read, so a body that cannot fit is refused before the
        // Api has read (and held) any of it, rather than after megabytes.
        var declared = context.Request.ContentLength is { } length ? RoundUp(length) : 0;
        if (declared > 0 && !budget.TryReserve(declared, outsideRanges))
        {
            return (null, Busy(context));
        }
        var body = new UnverifiedBody(budget, outsideRanges, declared);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.BodySeconds));
        var reader = context.Request.BodyReader;
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(timeout.Token);
                var buffer = read.Buffer;
                if (body.Length + buffer.Length > maxBytes)
                {
                    reader.AdvanceTo(buffer.End);
                    body.Dispose();
                    return (null, Refuse(context, StatusCodes.Status413PayloadTooLarge, "Payload too large", tooLargeDetail));
                }
                var appended = body.TryAppend(buffer);
                reader.AdvanceTo(buffer.End);
                if (!appended)
                {
                    body.Dispose();
                    return (null, Busy(context));
                }
                if (read.IsCompleted)
                {
                    return (body, null);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            body.Dispose();
            return (null, Refuse(context, StatusCodes.Status408RequestTimeout, "Body too slow",
                $"The body did not arrive within {options.BodySeconds} s."));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Kestrel's own limit (set above) on a chunked body.
            body.Dispose();
            return (null, Refuse(context, StatusCodes.Status413PayloadTooLarge, "Payload too large", tooLargeDetail));
        }
        catch
        {
            body.Dispose();
            throw;
        }
    }

    /// <summary>Copies the pipe's bytes into chunks, reserving a chunk at a time beyond what was reserved up front.</summary>
    private bool TryAppend(in ReadOnlySequence<byte> buffer)
    {
        foreach (var memory in buffer)
        {
            var span = memory.Span;
            while (!span.IsEmpty)
            {
                if (_lastChunkUsed == ChunkSize)
                {
                    if ((long)(_chunks.Count + 1) * ChunkSize > _reserved)
                    {
                        if (!_budget.TryReserve(ChunkSize, _outsideRanges))
                        {
                            return false;
                        }
                        _reserved += ChunkSize;
                    }
                    _chunks.Add(ArrayPool<byte>.Shared.Rent(ChunkSize));
                    _lastChunkUsed = 0;
                }
                var take = Math.Min(span.Length, ChunkSize - _lastChunkUsed);
                span[..take].CopyTo(_chunks[^1].AsSpan(_lastChunkUsed));
                _lastChunkUsed += take;
                Length += take;
                span = span[take..];
            }
        }
        return true;
    }

    private static long RoundUp(long bytes) => (bytes + ChunkSize - 1) / ChunkSize * ChunkSize;

    /// <summary>503 + Retry-After: the budget cannot hold this body now.</summary>
    public static ProblemHttpResult Busy(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<WebhookIngressOptions>>().Value;
        // Every reservation is given back within BodySeconds (the body arrives or the request is answered 408).
        context.Response.Headers.RetryAfter = options.BodySeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Refuse(context, StatusCodes.Status503ServiceUnavailable, "Too many unverified bodies",
            "This server is holding as many unverified webhook bodies as it allows; nothing was read. Retry later.");
    }

    private static ProblemHttpResult Refuse(HttpContext context, int status, string title, string detail)
    {
        context.Response.Headers.Connection = "close";
        return TypedResults.Problem(statusCode: status, title: title, detail: detail);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
