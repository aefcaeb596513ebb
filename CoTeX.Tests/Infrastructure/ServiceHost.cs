using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Hosts one CoTeX service in-process with the settings a test gives it on top of <see cref="TestSettings"/> (the
/// AppHost's map), the same keys the AppHost sets through the environment. <see cref="WithKestrel"/> serves on a real
/// loopback port.
/// </summary>
public sealed class ServiceHost<TProgram> : WebApplicationFactory<TProgram> where TProgram : class
{
    private readonly Dictionary<string, string?> _settings;
    private bool _kestrel;

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
        // A free port through the app's own URL setting, not UseKestrel(0): that overload rewrites the server's
        // addresses after the app has started binding them, which sometimes throws "IServerAddressesFeature.Addresses
        // cannot be modified after the server has started" (dotnet/aspnetcore#67714; seen in CI).
        _kestrel = true;
        UseKestrel();
        StartServer();
        var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        ClientOptions.BaseAddress = new Uri(address);
        return ClientOptions.BaseAddress;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        if (_kestrel)
        {
            builder.UseUrls("http://127.0.0.1:0");
        }
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
