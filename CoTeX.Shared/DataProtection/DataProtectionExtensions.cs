using CoTeX.Shared.DataProtection;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.Hosting;

public static class DataProtectionExtensions
{
    /// <summary>
    /// ASP.NET Data Protection for the secrets CoTeX keeps (webhook secrets, GitHub user tokens): one key ring every
    /// replica and service shares, kept in Postgres, its keys encrypted in turn with a key-encryption key the database
    /// never sees (<see cref="KeyRingOptions"/>, required at start). /health reports whether the ring is readable.
    /// </summary>
    public static TBuilder AddCoTeXDataProtection<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddOptions<KeyRingOptions>().BindConfiguration(KeyRingOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<KeyEncryptionKeys>();
        builder.Services.AddDataProtection().SetApplicationName("CoTeX");
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp =>
            new ConfigureOptions<KeyManagementOptions>(o =>
            {
                o.XmlRepository = ActivatorUtilities.CreateInstance<PostgresXmlRepository>(sp);
                o.XmlEncryptor = ActivatorUtilities.CreateInstance<KeyRingEncryptor>(sp);
            }));
        builder.Services.AddSingleton<KeyRingMonitor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KeyRingMonitor>());
        builder.Services.AddHealthChecks().AddCheck<KeyRingMonitor>("key-ring", timeout: TimeSpan.FromSeconds(5));
        return builder;
    }
}
