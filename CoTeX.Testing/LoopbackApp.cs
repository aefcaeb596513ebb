using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CoTeX.Tests.Infrastructure;

/// <summary>A small web server on a free loopback port, for the stand-ins tests host (a JWKS endpoint, a fake Stripe, an OTLP receiver).</summary>
public static class LoopbackApp
{
    public static WebApplication Create()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        return builder.Build();
    }

    /// <summary>Starts the app; returns its base address (http://127.0.0.1:port).</summary>
    public static async Task<string> StartAsync(WebApplication app)
    {
        await app.StartAsync();
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }
}
