using CoTeX.Tests.Infrastructure;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>Tokens that must not authenticate (wrong scheme, alg none, expired, wrong audience, flipped bits) on every authenticated route, and the admin routes as a user.</summary>
internal static class AuthCases
{
    public static IEnumerable<HostileCase> For(Random random, ApiApp app, HttpClient user, Guid repoId)
    {
        var anonymous = app.AnonymousClient();
        var valid = TestTokens.For(Guid.NewGuid());
        var tokens = new List<(string Name, string Header)>
        {
            ("no scheme", valid),
            ("basic scheme", "Basic dXNlcjpwYXNz"),
            ("empty bearer", "Bearer "),
            ("bearer garbage", "Bearer not.a.jwt"),
            ("alg none", "Bearer " + TestTokens.Unsigned(Guid.NewGuid())),
            ("expired", "Bearer " + TestTokens.For(Guid.NewGuid(), d => (d.IssuedAt, d.NotBefore, d.Expires) = (DateTime.UtcNow.AddHours(-3), DateTime.UtcNow.AddHours(-3), DateTime.UtcNow.AddHours(-2)))),
            ("wrong audience", "Bearer " + TestTokens.For(Guid.NewGuid(), d => d.Audience = "service_role")),
            ("sub not a uuid", "Bearer " + TestTokens.For(Guid.NewGuid(), d => d.Claims["sub"] = "' or 1=1 --")),
            ("two tokens", $"Bearer {valid} Bearer {valid}"),
        };
        for (var i = 0; i < 6; i++)
        {
            var chars = valid.ToCharArray();
            var at = random.Next(chars.Length);
            chars[at] = chars[at] == 'A' ? 'B' : 'A';
            tokens.Add(($"bit flip at {at}", "Bearer " + new string(chars)));
        }
        string[] routes = ["GET /api/repos", "POST /api/repos", "GET /api/github-events", "GET /api/github-events/recent", "GET /api/billing",
            "POST /api/checkout", "POST /api/billing/portal", $"DELETE /api/repos/{repoId}", "GET /admin/stats", "GET /admin/users"];
        foreach (var (name, header) in tokens)
        {
            foreach (var route in routes)
            {
                var (method, path) = (route.Split(' ')[0], route.Split(' ')[1]);
                yield return new("auth attacks", $"{route} with {name}", () =>
                {
                    var request = new HttpRequestMessage(new HttpMethod(method), path);
                    request.Headers.TryAddWithoutValidation("Authorization", header);
                    return request;
                }, anonymous);
            }
        }
        yield return new("auth attacks", "admin stats as a user", () => Get("/admin/stats"), user);
        yield return new("auth attacks", "admin users as a user", () => Get("/admin/users?limit=abc"), user);
    }
}
