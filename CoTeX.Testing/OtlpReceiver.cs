using System.Collections.Concurrent;
using CoTeX.Tests.Infrastructure.Otlp;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A stand-in for the Aspire dashboard's OTLP endpoint: an OTLP/HTTP (protobuf) receiver on loopback that keeps
/// what the services export, each item with the <c>service.name</c> and <c>service.instance.id</c> of its sender.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    public sealed record ReceivedSpan(string Service, string Instance, string TraceId, string SpanId, string ParentSpanId,
        string Name, int Kind, IReadOnlyDictionary<string, string> Attributes, IReadOnlyList<string> LinkedSpanIds);

    public sealed record ReceivedMetric(string Service, string Instance, string Name);

    public sealed record ReceivedLog(string Service, string Instance, string Body, string TraceId);

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly ConcurrentQueue<ReceivedMetric> _metrics = new();
    private readonly ConcurrentQueue<ReceivedLog> _logs = new();

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>The base address for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (with protocol <c>http/protobuf</c>).</summary>
    public string Endpoint { get; private set; } = null!;

    public IReadOnlyList<ReceivedSpan> Spans => _spans.ToArray();
    public IReadOnlyList<ReceivedMetric> Metrics => _metrics.ToArray();
    public IReadOnlyList<ReceivedLog> Logs => _logs.ToArray();

    public static async Task<OtlpReceiver> StartAsync()
    {
        var receiver = new OtlpReceiver(LoopbackApp.Create());
        receiver.Map();
        receiver.Endpoint = await LoopbackApp.StartAsync(receiver._app);
        return receiver;
    }

    private void Map()
    {
        _app.MapPost("/v1/traces", (HttpRequest request) => Receive(request, ExportTraceServiceRequest.Parser, export =>
        {
            foreach (var resource in export.ResourceSpans)
            {
                var (service, instance) = Identify(resource.Resource);
                foreach (var span in resource.ScopeSpans.SelectMany(scope => scope.Spans))
                {
                    _spans.Enqueue(new ReceivedSpan(service, instance, Hex(span.TraceId), Hex(span.SpanId), Hex(span.ParentSpanId),
                        span.Name, span.Kind, span.Attributes.ToDictionary(a => a.Key, a => Text(a.Value)),
                        span.Links.Select(l => Hex(l.SpanId)).ToList()));
                }
            }
        }));
        _app.MapPost("/v1/metrics", (HttpRequest request) => Receive(request, ExportMetricsServiceRequest.Parser, export =>
        {
            foreach (var resource in export.ResourceMetrics)
            {
                var (service, instance) = Identify(resource.Resource);
                foreach (var metric in resource.ScopeMetrics.SelectMany(scope => scope.Metrics))
                {
                    _metrics.Enqueue(new ReceivedMetric(service, instance, metric.Name));
                }
            }
        }));
        _app.MapPost("/v1/logs", (HttpRequest request) => Receive(request, ExportLogsServiceRequest.Parser, export =>
        {
            foreach (var resource in export.ResourceLogs)
            {
                var (service, instance) = Identify(resource.Resource);
                foreach (var log in resource.ScopeLogs.SelectMany(scope => scope.LogRecords))
                {
                    _logs.Enqueue(new ReceivedLog(service, instance, Text(log.Body), Hex(log.TraceId)));
                }
            }
        }));
    }

    private static async Task<IResult> Receive<T>(HttpRequest request, MessageParser<T> parser, Action<T> keep)
        where T : IMessage<T>
    {
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body);
        keep(parser.ParseFrom(body.ToArray()));
        // An empty Export*ServiceResponse: everything was accepted.
        return Results.Bytes([], "application/x-protobuf");
    }

    private static (string Service, string Instance) Identify(Resource? resource)
    {
        string Attribute(string key) => resource?.Attributes.FirstOrDefault(a => a.Key == key)?.Value is { } value ? Text(value) : "";
        return (Attribute("service.name"), Attribute("service.instance.id"));
    }

    private static string Text(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => "",
    };

    private static string Hex(ByteString bytes) => Convert.ToHexStringLower(bytes.Span);

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
