using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Hosts one CoTeX service in-process with the settings a test gives it on top of <see cref="TestSettings"/> (the
/// AppHost's map), the same keys the AppHost sets through the environment. <see cref="WithKestrel"/> serves on a real
/// loopback port.
/// </summary>
public sealed class ServiceHost<TProgram> : WebApplicationFactory<TProgram> where TProgram : class
{
    private readonly Dictionary<string, string?> _settings;

    public ServiceHost(Dictionary<string, string?> settings) => _settings = settings;

    public static ServiceHost<TProgram> Create(string databaseConnectionString, string redisConnectionString,
        Dictionary<string, string?>? extra = null)
    {
        var service = TestSettings.ServiceOf(typeof(TProgram).Assembly.GetName().Name!);
        // Configuration keys, not environment names: Auth:JwtSecret.
        var settings = TestSettings.For(service, databaseConnectionString, redisConnectionString)
            .ToDictionary(s => s.Key.Replace("__", ":", StringComparison.Ordinal), s => (string?)s.Value);
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
