using CoTeX.Worker.Billing;
using CoTeX.Worker.GitHubApp;
using CoTeX.Worker.Retention;

namespace Microsoft.Extensions.Hosting;

internal static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.AddCoTeXDatabase(maxPoolSize: 5);
        builder.AddCoTeXRedis();
        builder.AddCoTeXBilling();
        // GitHub user tokens are kept protected like webhook secrets: the Worker reads them to re-check access.
        builder.AddCoTeXDataProtection();
        builder.Services.AddSingleton(TimeProvider.System);

        builder.Services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<RetentionJob>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RetentionJob>());

        builder.Services.AddSingleton<BillingReconciler>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BillingReconciler>());

        builder.AddCoTeXGitHubApp();
        builder.Services.AddSingleton<GitHubAppMaintenance>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<GitHubAppMaintenance>());
    }
}
