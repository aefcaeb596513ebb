using System.Security.Claims;
using System.Text.Json;

namespace CoTeX.Shared.Auth;

/// <summary>Admins are users whose Supabase token carries <c>app_metadata.role = "admin"</c> (set server-side only).</summary>
public static class AdminPolicy
{
    public const string Name = "admin";

    public static bool IsAdmin(this ClaimsPrincipal principal)
    {
        var metadata = principal.FindFirst("app_metadata")?.Value;
        if (string.IsNullOrEmpty(metadata))
        {
            return false;
        }
        try
        {
            using var document = JsonDocument.Parse(metadata);
            return document.RootElement.ValueKind == JsonValueKind.Object
                   && document.RootElement.TryGetProperty("role", out var role)
                   && role.ValueKind == JsonValueKind.String
                   && role.GetString() == "admin";
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
