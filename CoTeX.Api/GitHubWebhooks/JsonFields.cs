using System.Text.Json;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>Reading GitHub's payloads leniently: a field that is missing or of another type reads as absent.</summary>
internal static class JsonFields
{
    public static JsonElement Property(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) ? value : default;

    public static string? String(JsonElement element, string name) =>
        Property(element, name) is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;

    public static long? Long(JsonElement element, string name) =>
        Property(element, name) is { ValueKind: JsonValueKind.Number } value && value.TryGetInt64(out var number) ? number : null;
}
