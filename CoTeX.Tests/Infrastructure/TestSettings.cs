using CoTeX.AppHost;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// What every service a test starts is configured with, in-process (<see cref="ServiceHost{TProgram}"/>) or as a
/// process (<see cref="ServiceProcess"/>): the AppHost's map of settings with its development values
/// (<see cref="ServiceSettings.ForDevelopment"/>), and loopback inside GitHub's sender ranges, since tests play GitHub
/// and Stripe from loopback (the ingress tests set Webhooks:SenderRanges:0 to put 127.0.0.1 outside).
/// </summary>
public static class TestSettings
{
    /// <summary>Environment form (<c>Auth__JwtSecret</c>), as the AppHost sets them.</summary>
    public static Dictionary<string, string> For(CoTeXService service, string? databaseConnectionString = null,
        string? redisConnectionString = null)
    {
        var settings = ServiceSettings.ForDevelopment(service, databaseConnectionString, redisConnectionString);
        settings["Webhooks__SenderRanges__0"] = "127.0.0.0/8";
        settings["Webhooks__SenderRanges__1"] = "::1/128";
        return settings;
    }

    /// <summary>The service an assembly is (CoTeX.Api, CoTeX.Realtime, CoTeX.Worker).</summary>
    public static CoTeXService ServiceOf(string assemblyName) => assemblyName switch
    {
        "CoTeX.Api" => CoTeXService.Api,
        "CoTeX.Realtime" => CoTeXService.Realtime,
        "CoTeX.Worker" => CoTeXService.Worker,
        _ => throw new ArgumentOutOfRangeException(nameof(assemblyName), assemblyName, "not a CoTeX service"),
    };
}
