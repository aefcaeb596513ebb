using CoTeX.Worker.Billing;

namespace Microsoft.Extensions.Hosting;

internal static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.AddCoTeXDatabase();
        builder.AddCoTeXRedis();
        builder.AddCoTeXBilling();

        builder.Services.AddSingleton<BillingReconciler>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BillingReconciler>());
    }
}
