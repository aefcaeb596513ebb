using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// CORS for browser clients: only the origins in <c>Cors:AllowedOrigins</c> get a grant; any other origin gets none.
/// (Non-browser clients such as the desktop app send no Origin and are unaffected.)
/// </summary>
public static class CorsExtensions
{
    public const string Section = "Cors:AllowedOrigins";

    public static string[] AllowedOrigins(this IConfiguration configuration) =>
        configuration.GetSection(Section).Get<string[]>()?.Where(o => !string.IsNullOrWhiteSpace(o))
            .Select(o => o.TrimEnd('/')).ToArray() ?? [];

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
