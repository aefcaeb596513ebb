using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Hosts one CoTeX service in-process with the settings a test gives it, the same keys the AppHost sets through the
/// environment. <see cref="WithKestrel"/> serves on a real loopback port.
/// </summary>
public sealed class ServiceHost<TProgram> : WebApplicationFactory<TProgram> where TProgram : class
{
    private readonly Dictionary<string, string?> _settings;

    public ServiceHost(Dictionary<string, string?> settings) => _settings = settings;

    public static ServiceHost<TProgram> Create(string databaseConnectionString, string redisConnectionString,
        Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:cotexdb"] = databaseConnectionString,
            ["ConnectionStrings:redis"] = redisConnectionString,
            ["Auth:JwtSecret"] = TestTokens.Secret,
            ["DataProtection:KeyEncryptionKey"] = TestTokens.KeyEncryptionKey,
            // Tests play GitHub and Stripe from loopback: inside the published sender ranges unless a test says
            // otherwise (the ingress tests set Webhooks:SenderRanges:0 to put 127.0.0.1 outside).
            ["Webhooks:SenderRanges:0"] = "127.0.0.0/8",
            ["Webhooks:SenderRanges:1"] = "::1/128",
        };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }
        return new ServiceHost<TProgram>(settings);
    }

    /// <summary>Serves over a real socket (for SignalR clients and anything that needs one); returns the base URL.</summary>
    public Uri WithKestrel()
    {
        UseKestrel(0);
        StartServer();
        return ClientOptions.BaseAddress;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
