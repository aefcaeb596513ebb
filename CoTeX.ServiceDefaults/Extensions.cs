using CoTeX.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The cross-cutting setup every CoTeX service shares: logging, telemetry, health, correlation, shutdown.
/// Services call <see cref="AddServiceDefaults"/> (web APIs) or <see cref="AddWorkerDefaults"/> (background work).
/// </summary>
public static class Extensions
{
    public const string HealthPath = "/health";
    public const string AlivePath = "/alive";
    public const string LiveTag = "live";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.AddWorkerDefaults();

        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });

        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            context.ProblemDetails.Extensions["traceId"] = System.Diagnostics.Activity.Current?.TraceId.ToString();
            context.ProblemDetails.Extensions["requestId"] = context.HttpContext.TraceIdentifier;
        });
        // After the JSON writer AddProblemDetails registers: clients that do not accept JSON get the status in plain text.
        builder.Services.AddSingleton<IProblemDetailsWriter, PlainTextProblemWriter>();
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
        // Binding failures (malformed JSON, wrong types) become exceptions the handler above turns into a 400 that
        // says what could not be read, rather than a bare 400.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        return builder;
    }

    /// <summary>The lighter variant: logs, telemetry, health checks and shutdown, without HTTP client defaults.</summary>
    public static TBuilder AddWorkerDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureLogging();
        builder.ConfigureOpenTelemetry();

        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);

        builder.Services.AddOptions<ShutdownOptions>()
            .BindConfiguration(ShutdownOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var shutdownSeconds = builder.Configuration.GetValue($"{ShutdownOptions.Section}:TimeoutSeconds", ShutdownOptions.DefaultTimeoutSeconds);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(shutdownSeconds));

        return builder;
    }

    private static void ConfigureLogging(this IHostApplicationBuilder builder)
    {
        // Serilog writes one JSON object per line to stdout (trace and span ids as @tr/@sp, request id as RequestId),
        // and forwards every event to the OpenTelemetry logger provider so logs reach the OTLP collector too.
        builder.Logging.ClearProviders();
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        var service = builder.Environment.ApplicationName;
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddSerilog((services, logger) => logger
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.Extensions.Http", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.Hosting.Lifetime", LogEventLevel.Information)
            .MinimumLevel.Override("Npgsql", LogEventLevel.Warning)
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            .Enrich.With(new RequestIdEnricher(services.GetRequiredService<IHttpContextAccessor>()))
            .Enrich.WithProperty("Service", service)
            .WriteTo.Console(new CompactJsonFormatter()),
            writeToProviders: true);

        // Serilog's ILoggerFactory, wrapped so each category's logger is built once (see CachingLoggerFactory).
        var serilogFactory = builder.Services.Last(d => d.ServiceType == typeof(ILoggerFactory));
        builder.Services.Remove(serilogFactory);
        builder.Services.AddSingleton<ILoggerFactory>(services => new CachingLoggerFactory((ILoggerFactory)(
            serilogFactory.ImplementationInstance
            ?? serilogFactory.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, serilogFactory.ImplementationType!))));
    }

    private static void ConfigureOpenTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(CoTeXTelemetry.Name))
            .WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource(CoTeXTelemetry.Name)
                .AddAspNetCoreInstrumentation(aspnet =>
                    // Health probes would drown real traffic in the trace view.
                    aspnet.Filter = context =>
                        !context.Request.Path.StartsWithSegments(HealthPath)
                        && !context.Request.Path.StartsWithSegments(AlivePath))
                .AddHttpClientInstrumentation());

        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            builder.Services.AddOpenTelemetry().UseOtlpExporter();
        }
    }

    /// <summary>
    /// Request correlation first (so every later log line carries the id), then one summary log line per request.
    /// </summary>
    public static WebApplication UseServiceDefaults(this WebApplication app)
    {
        app.UseMiddleware<RequestIdMiddleware>();
        app.UseSerilogRequestLogging(options =>
        {
            options.GetLevel = (context, _, exception) =>
                exception is not null || context.Response.StatusCode >= 500 ? LogEventLevel.Error
                : IsProbe(context) ? LogEventLevel.Verbose
                : LogEventLevel.Information;
        });
        // Errors are ProblemDetails: thrown ones through ProblemExceptionHandler, bare status codes (404 for an
        // unknown route, 405, ...) through the status-code pages.
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    /// <summary>
    /// <c>/health</c>: every registered check (dependencies, migrations), JSON, 503 when any is unhealthy.
    /// <c>/alive</c>: only the checks tagged <c>live</c>: the process answers.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthPath, new HealthCheckOptions { ResponseWriter = HealthResponseWriter.WriteJson })
            .DisableHttpMetrics();
        app.MapHealthChecks(AlivePath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(LiveTag),
            ResponseWriter = HealthResponseWriter.WriteJson,
        }).DisableHttpMetrics();
        return app;
    }

    private static bool IsProbe(HttpContext context) =>
        context.Request.Path.StartsWithSegments(HealthPath) || context.Request.Path.StartsWithSegments(AlivePath);
}
