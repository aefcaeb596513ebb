using System.Globalization;

namespace CoTeX.DevTools;

/// <summary>
/// The command line for scripts, so none reimplements HMAC or JWT (eng/mint-token.sh calls <c>token</c>). Exit codes as
/// eng/mint-token.sh always had them: 1 no secret, 2 usage. Namespaced (not top-level statements) so the projects that
/// reference this one see no second global <c>Program</c>.
/// </summary>
internal static class Program
{
    private const string Usage = """
        dotnet run --project CoTeX.DevTools -- token [<user-uuid>] [--anonymous] [--admin] [--ttl <seconds>]
            Prints a dev token (DevTokens.Mint) signed with $Auth__JwtSecret, the services' own setting: for the
            local dev user when no uuid is given, valid for 24 h unless --ttl says otherwise.
        dotnet run --project CoTeX.DevTools -- sign --secret <webhook-secret> < body
            Prints the X-Hub-Signature-256 value GitHub would send with that body (WebhookSigning.Sign).
        """;

    private static int Main(string[] args) => args switch
    {
        ["token", .. var rest] => Token(rest),
        ["sign", "--secret", var secret] => Sign(secret),
        ["--help" or "-h"] => Print(Usage, Console.Out, 0),
        _ => Print(Usage, Console.Error, 2),
    };

    private static int Token(string[] args)
    {
        var (userId, anonymous, admin, ttl) = (DevTokens.DevUserId, false, false, (long)DevTokens.DefaultLifetime.TotalSeconds);
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--anonymous":
                    anonymous = true;
                    break;
                case "--admin":
                    admin = true;
                    break;
                case "--ttl" when i + 1 < args.Length && long.TryParse(args[i + 1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out ttl):
                    i++;
                    break;
                case "--ttl":
                    return Print("--ttl takes a whole number of seconds", Console.Error, 2);
                case var option when option.StartsWith('-'):
                    return Print($"unknown option {option}", Console.Error, 2);
                case var id when Guid.TryParse(id, out var parsed):
                    userId = parsed;
                    break;
                default:
                    return Print($"not a user id (UUID): {args[i]}", Console.Error, 2);
            }
        }
        var secret = Environment.GetEnvironmentVariable("Auth__JwtSecret");
        if (string.IsNullOrEmpty(secret))
        {
            return Print("No JWT secret: set Auth__JwtSecret (eng/mint-token.sh finds the AppHost's).", Console.Error, 1);
        }
        Console.WriteLine(DevTokens.Mint(secret, userId, anonymous, admin, TimeSpan.FromSeconds(ttl)));
        return 0;
    }

    private static int Sign(string secret)
    {
        using var body = new MemoryStream();
        Console.OpenStandardInput().CopyTo(body);
        Console.WriteLine(WebhookSigning.Sign(secret, body.ToArray()));
        return 0;
    }

    private static int Print(string message, TextWriter to, int exitCode)
    {
        to.WriteLine(message);
        return exitCode;
    }
}
