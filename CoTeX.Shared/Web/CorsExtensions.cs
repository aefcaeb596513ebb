using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// CORS for browser clients: only the origins in <c>Cors:AllowedOrigins</c> get a grant; any other origin gets none.
/// (Non-browser clients such as the desktop app send no Origin and are unaffected.) The setting is a list
/// (<c>Cors__AllowedOrigins__0</c>, ...) or one comma-separated value (<c>Cors__AllowedOrigins</c>, as the AppHost's
/// <c>cors-origins</c> parameter passes it).
/// </summary>
public static class CorsExtensions
{
    public const string Section = "Cors:AllowedOrigins";

    public static string[] AllowedOrigins(this IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        var values = section.Get<string[]>() ?? section.Value?.Split(',') ?? [];
        return values.Select(o => o.Trim().TrimEnd('/')).Where(o => o.Length > 0).ToArray();
    }

    public static TBuilder AddCoTeXCors<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var origins = builder.Configuration.AllowedOrigins();
        builder.Services.AddCors(options => options.AddDefaultPolicy(policy =>
        {
            policy.WithOrigins(origins).AllowAnyHeader().AllowAnyMethod().WithExposedHeaders("X-Request-Id", "Retry-After");
            if (origins.Length > 0)
            {
                policy.AllowCredentials();
            }
        }));
        return builder;
    }
}
