extern alias realtime;

using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CoTeX.Tests.Clients;

/// <summary>
/// The TypeScript client's types are generated from two checked-in documents (clients/typescript/scripts/generate.mjs):
/// the Api's OpenAPI document and a JSON schema of the hub's messages. These tests fail while either differs from what
/// the running services say, so a change to an endpoint or to <c>CoTeX.Contracts</c> cannot ship without the client's
/// types (the client's own test fails while the generated .ts files differ from what the documents give).
/// </summary>
public sealed class ClientSchemaTests(TestInfrastructure infra)
{
    private const string OpenApiFile = "clients/typescript/openapi/cotex-api.json";
    private const string RealtimeFile = "clients/typescript/openapi/cotex-realtime.schema.json";
    private const string WriteVariable = "COTEX_WRITE_CLIENT_SCHEMAS";
    private const string Regenerate =
        $"{WriteVariable}=1 dotnet test --project CoTeX.Tests -- --filter-class CoTeX.Tests.Clients.ClientSchemaTests" +
        " && (cd clients/typescript && npm run generate)";

    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        IndentSize = 2,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// Which payload each server → client message of <see cref="RealtimeProtocol"/> carries (the constants' doc comments
    /// say the same in prose). A new message fails <see cref="Every_hub_message_has_a_payload_type"/> until it is here.
    /// </summary>
    private static readonly Dictionary<string, Type> ServerMessages = new()
    {
        [RealtimeProtocol.Event] = typeof(GitHubEventSummary),
        [RealtimeProtocol.Events] = typeof(GitHubEventSummary[]),
        [RealtimeProtocol.CaughtUp] = typeof(FeedPosition),
        [RealtimeProtocol.Reset] = typeof(FeedReset),
        [RealtimeProtocol.Reconnect] = typeof(ReconnectNotice),
    };

    [Fact]
    public async Task The_typescript_clients_copy_of_the_openapi_document_is_the_apis()
    {
        await using var api = await ApiApp.StartAsync(infra);
        var document = JsonNode.Parse(await api.AnonymousClient().GetStringAsync("/openapi/v1.json"))!.AsObject();
        // Where the document was served from (the test server's address), not what the Api is.
        document.Remove("servers");

        await CompareOrWriteAsync(OpenApiFile, document.ToJsonString(Indented) + "\n");
    }

    [Fact]
    public async Task The_typescript_clients_hub_schema_is_the_contracts_realtime_messages()
    {
        await using var realtimeHost = ServiceHost<realtime::Program>.Create(await infra.CreateMigratedDatabaseAsync(), infra.Redis.ConnectionString);
        // The options the hub really serialises with (camelCase, every property written, nulls included).
        var hubOptions = realtimeHost.Services.GetRequiredService<IOptions<JsonHubProtocolOptions>>().Value.PayloadSerializerOptions;
        hubOptions.DefaultIgnoreCondition.Should().Be(JsonIgnoreCondition.Never,
            "the schema lists every property as always present, which holds while no property is left out when null");

        await CompareOrWriteAsync(RealtimeFile, HubSchema(hubOptions).ToJsonString(Indented) + "\n");
    }

    [Fact]
    public void Every_hub_message_has_a_payload_type()
    {
        var messages = typeof(RealtimeProtocol).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.Name is not nameof(RealtimeProtocol.HubPath) and not nameof(RealtimeProtocol.Subscribe))
            .Select(f => (string)f.GetRawConstantValue()!);

        ServerMessages.Keys.Should().BeEquivalentTo(messages, "ClientSchemaTests.ServerMessages names each message's payload");
    }

    /// <summary>
    /// The hub's protocol as one JSON schema document: <c>$defs</c> holds the payload types, <c>x-server-messages</c> maps
    /// each message the server sends to its payload, <c>x-client-methods</c> each hub method to its arguments (read from
    /// the hub class), and <c>x-reconnect-codes</c> lists <see cref="ReconnectCodes"/>.
    /// </summary>
    private static JsonObject HubSchema(JsonSerializerOptions hubOptions)
    {
        var options = new JsonSerializerOptions(hubOptions)
        {
            // Every constructor parameter is written (DefaultIgnoreCondition.Never): "required" says so to the generator.
            RespectRequiredConstructorParameters = true,
            RespectNullableAnnotations = true,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        var exporter = new JsonSchemaExporterOptions { TreatNullObliviousAsNonNullable = true };

        var defs = new JsonObject();
        JsonNode Ref(Type type)
        {
            if (type.IsArray)
            {
                return new JsonObject { ["type"] = "array", ["items"] = Ref(type.GetElementType()!) };
            }
            if (type.Namespace != typeof(GitHubEventSummary).Namespace)
            {
                return options.GetJsonSchemaAsNode(type, exporter);
            }
            if (!defs.ContainsKey(type.Name))
            {
                var schema = options.GetJsonSchemaAsNode(type, exporter).AsObject();
                schema["type"] = "object"; // a message's payload is never null
                defs[type.Name] = schema;
            }
            return new JsonObject { ["$ref"] = $"#/$defs/{type.Name}" };
        }

        var server = new JsonObject();
        foreach (var (name, type) in ServerMessages.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            server[name] = Ref(type);
        }

        var client = new JsonObject();
        foreach (var method in typeof(realtime::CoTeX.Realtime.Hubs.EventsHub).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                     .Where(m => m.GetCustomAttribute<HubMethodNameAttribute>() is not null)
                     .OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            var arguments = new JsonArray();
            foreach (var parameter in method.GetParameters())
            {
                var schema = Ref(parameter.ParameterType).AsObject();
                schema["title"] = parameter.Name;
                arguments.Add(schema);
            }
            client[method.GetCustomAttribute<HubMethodNameAttribute>()!.Name] = new JsonObject { ["arguments"] = arguments };
        }

        var codes = new JsonArray();
        foreach (var field in typeof(ReconnectCodes).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral))
        {
            codes.Add((string)field.GetRawConstantValue()!);
        }

        return new JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            ["$comment"] = $"Generated by CoTeX.Tests/Clients/ClientSchemaTests.cs from CoTeX.Contracts and the hub: do not edit. Regenerate: {Regenerate}",
            ["title"] = "CoTeX realtime hub messages",
            ["x-hub-path"] = RealtimeProtocol.HubPath,
            ["x-client-methods"] = client,
            ["x-server-messages"] = server,
            ["x-reconnect-codes"] = codes,
            ["$defs"] = new JsonObject(defs.OrderBy(d => d.Key, StringComparer.Ordinal)
                .Select(d => KeyValuePair.Create(d.Key, d.Value?.DeepClone()))),
        };
    }

    private static Task CompareOrWriteAsync(string relativePath, string actual) =>
        CheckedInFile.CompareOrWriteAsync(relativePath, actual, WriteVariable, difference => $"""
            {relativePath} is not what the services say (diff -u {difference.Path} {difference.ActualPath}).
            If an endpoint or a contract changed on purpose, regenerate the file and the client's types, and commit them with the change:
              {Regenerate}
            """);
}
