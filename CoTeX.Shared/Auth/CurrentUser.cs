using System.Security.Claims;

namespace CoTeX.Shared.Auth;

/// <summary>Reads the CoTeX user out of a validated Supabase token.</summary>
public static class CurrentUser
{
    public const string SubjectClaim = "sub";
    public const string EmailClaim = "email";
    public const string AnonymousClaim = "is_anonymous";

    /// <summary>The user id: the token's <c>sub</c>, checked to be a UUID when the token was validated.</summary>
    public static Guid GetUserId(this ClaimsPrincipal principal) =>
        TryGetUserId(principal, out var id)
            ? id
            : throw new InvalidOperationException("The principal has no user id; is the endpoint missing RequireAuthorization()?");

    public static bool TryGetUserId(this ClaimsPrincipal principal, out Guid userId) =>
        Guid.TryParse(principal.FindFirst(SubjectClaim)?.Value, out userId) && userId != Guid.Empty;

    /// <summary>Supabase anonymous sign-ins carry <c>is_anonymous: true</c>; such users stay on the Free plan.</summary>
    public static bool IsAnonymous(this ClaimsPrincipal principal) =>
        string.Equals(principal.FindFirst(AnonymousClaim)?.Value, "true", StringComparison.OrdinalIgnoreCase);
}
