using CoTeX.Shared.Billing;
using CoTeX.Shared.Plans;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Stripe;

namespace Microsoft.Extensions.Hosting;

public static class BillingExtensions
{
    /// <summary>Stripe settings (validated at start when billing is enabled), the Stripe client and the plan sync.</summary>
    public static TBuilder AddCoTeXBilling<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddOptions<StripeOptions>().BindConfiguration(StripeOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<PlanOptions>().BindConfiguration(PlanOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<StripeOptions>>().Value;
            return new StripeClient(
                apiKey: options.IsEnabled ? options.SecretKey : "sk_billing_disabled",
                apiBase: string.IsNullOrEmpty(options.ApiBase) ? null : options.ApiBase);
        });
        builder.Services.AddSingleton<BillingSync>();
        builder.Services.AddSingleton<StripeEventProcessor>();
        return builder;
    }
}
