using Aspire.Hosting.Publishing;

namespace CoTeX.AppHost;

/// <summary>
/// The services' secrets and deployment-specific settings, as Aspire parameters: in a local run they come from the
/// AppHost's configuration (<c>Parameters:&lt;name&gt;</c>: user secrets, environment, command line), in a deployment
/// azd asks for them (or reads <c>AZURE_&lt;NAME&gt;</c>) and keeps them in its environment. The manifest holds only
/// references to them, never a value.
/// </summary>
internal sealed class CoTeXParameters
{
    private CoTeXParameters(IDistributedApplicationBuilder builder)
    {
        // Supabase's HS256 project secret. Locally, eng/mint-token.sh and the dashboard's "Mint a dev token" command
        // sign with the generated one.
        JwtSecret = Required(builder, "jwt-secret", "Supabase's JWT secret (HS256), at least 32 characters.");
        // Encrypts the Data Protection key ring (the keys of the webhook secrets) in the database; never in it.
        KeyEncryptionKey = Required(builder, "key-encryption-key",
            "Encrypts the key ring that protects webhook secrets: 32 random bytes in base64 (openssl rand -base64 32). Rotation: README.",
            RandomKeyDefault.Instance);

        SupabaseJwksUrl = Optional(builder, "supabase-jwks-url",
            "Supabase's JWKS URL (https://<project>.supabase.co/auth/v1/.well-known/jwks.json) for ES256/RS256 tokens.");
        SupabaseIssuer = Optional(builder, "supabase-issuer",
            "When set, tokens must carry this iss (https://<project>.supabase.co/auth/v1).");

        StripeSecretKey = Optional(builder, "stripe-secret-key", "Stripe secret key; billing is off while it is empty.", secret: true);
        StripeWebhookSecret = Optional(builder, "stripe-webhook-secret", "Signing secret of the /webhooks/stripe endpoint.", secret: true);
        StripeProPriceId = Optional(builder, "stripe-pro-price-id", "The Pro plan's Stripe Price (price_...).");
        StripeSuccessUrl = Optional(builder, "stripe-success-url", "Where Stripe Checkout returns after payment.");
        StripeCancelUrl = Optional(builder, "stripe-cancel-url", "Where Stripe Checkout returns when abandoned.");
        StripePortalReturnUrl = Optional(builder, "stripe-portal-return-url", "Where the customer portal returns to.");

        // GitHub App mode: off while github-app-id is empty; when it is set, all five are required.
        GitHubAppId = Optional(builder, "github-app-id", "The GitHub App's id (App settings → About); GitHub App mode is off while it is empty.");
        GitHubAppClientId = Optional(builder, "github-app-client-id", "The GitHub App's client id (Iv1.… or Iv23…).");
        GitHubAppClientSecret = Optional(builder, "github-app-client-secret", "A client secret of the GitHub App.", secret: true);
        GitHubAppPrivateKey = Optional(builder, "github-app-private-key",
            "The GitHub App's private key: the .pem file's content, or that content in base64.", secret: true);
        GitHubAppWebhookSecret = Optional(builder, "github-app-webhook-secret",
            "The GitHub App's webhook secret; its webhook URL is <public-base-url>/api/webhooks/github-app.", secret: true);

        CorsOrigins = Optional(builder, "cors-origins", "Browser origins allowed to call the API and open the hub, comma-separated.");
        PublicBaseUrl = Optional(builder, "public-base-url", "The Api's public address, the start of the webhook URLs handed to users.");
    }

    public IResourceBuilder<ParameterResource> JwtSecret { get; }
    public IResourceBuilder<ParameterResource> KeyEncryptionKey { get; }
    public IResourceBuilder<ParameterResource> SupabaseJwksUrl { get; }
    public IResourceBuilder<ParameterResource> SupabaseIssuer { get; }
    public IResourceBuilder<ParameterResource> StripeSecretKey { get; }
    public IResourceBuilder<ParameterResource> StripeWebhookSecret { get; }
    public IResourceBuilder<ParameterResource> StripeProPriceId { get; }
    public IResourceBuilder<ParameterResource> StripeSuccessUrl { get; }
    public IResourceBuilder<ParameterResource> StripeCancelUrl { get; }
    public IResourceBuilder<ParameterResource> StripePortalReturnUrl { get; }
    public IResourceBuilder<ParameterResource> GitHubAppId { get; }
    public IResourceBuilder<ParameterResource> GitHubAppClientId { get; }
    public IResourceBuilder<ParameterResource> GitHubAppClientSecret { get; }
    public IResourceBuilder<ParameterResource> GitHubAppPrivateKey { get; }
    public IResourceBuilder<ParameterResource> GitHubAppWebhookSecret { get; }
    public IResourceBuilder<ParameterResource> CorsOrigins { get; }
    public IResourceBuilder<ParameterResource> PublicBaseUrl { get; }

    public static CoTeXParameters Add(IDistributedApplicationBuilder builder) => new(builder);

    /// <summary>
    /// A secret the services cannot run without. A deployment must be given it (azd asks); a local run that has none
    /// gets a random one, kept in the AppHost's user secrets so it stays the same from run to run.
    /// </summary>
    private static IResourceBuilder<ParameterResource> Required(IDistributedApplicationBuilder builder, string name, string description,
        ParameterDefault? generated = null) =>
        (builder.ExecutionContext.IsRunMode
            ? builder.AddParameter(name, generated ?? new GenerateParameterDefault { MinLength = 48, Special = false }, secret: true, persist: true)
            : builder.AddParameter(name, secret: true)).WithDescription(description);

    /// <summary>
    /// 32 random bytes in base64, the form the key-encryption key must have (the services validate it at start); Aspire's
    /// generated values are characters from a set, not bytes. Only used in run mode, where Aspire keeps the first value
    /// in the AppHost's user secrets (persist), so the key ring stays readable from run to run.
    /// </summary>
    private sealed class RandomKeyDefault : ParameterDefault
    {
        public static readonly RandomKeyDefault Instance = new();

        public override string GetDefaultValue() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

        // Nothing to publish: a deployment is given its key (azd asks), never a generated one.
        public override void WriteToManifest(ManifestPublishingContext context)
        {
        }
    }

    /// <summary>A parameter that may stay empty: configuration when set, else "" (and "" as the manifest's default).</summary>
    private static IResourceBuilder<ParameterResource> Optional(IDistributedApplicationBuilder builder, string name,
        string description, bool secret = false) =>
        builder.AddParameter(name, EmptyDefault.Instance, secret).WithDescription(description);

    private sealed class EmptyDefault : ParameterDefault
    {
        public static readonly EmptyDefault Instance = new();

        public override string GetDefaultValue() => "";

        public override void WriteToManifest(ManifestPublishingContext context) => context.Writer.WriteString("value", "");
    }
}

internal static class ParameterExtensions
{
    /// <summary>How every service validates Supabase's tokens.</summary>
    public static IResourceBuilder<ProjectResource> WithAuth(this IResourceBuilder<ProjectResource> service, CoTeXParameters p) =>
        service.WithEnvironment("Auth__JwtSecret", p.JwtSecret)
            .WithEnvironment("Auth__JwksUrl", p.SupabaseJwksUrl)
            .WithEnvironment("Auth__Issuer", p.SupabaseIssuer);

    /// <summary>Stripe, for the Api (Checkout, portal, webhooks) and the Worker (reconciliation).</summary>
    public static IResourceBuilder<ProjectResource> WithBilling(this IResourceBuilder<ProjectResource> service, CoTeXParameters p) =>
        service.WithEnvironment("Stripe__SecretKey", p.StripeSecretKey)
            .WithEnvironment("Stripe__WebhookSecret", p.StripeWebhookSecret)
            .WithEnvironment("Stripe__ProPriceId", p.StripeProPriceId)
            .WithEnvironment("Stripe__SuccessUrl", p.StripeSuccessUrl)
            .WithEnvironment("Stripe__CancelUrl", p.StripeCancelUrl)
            .WithEnvironment("Stripe__PortalReturnUrl", p.StripePortalReturnUrl);

    /// <summary>CoTeX's GitHub App, for the Api (connect, the app's webhook) and the Worker (re-checks, redelivery).</summary>
    public static IResourceBuilder<ProjectResource> WithGitHubApp(this IResourceBuilder<ProjectResource> service, CoTeXParameters p) =>
        service.WithEnvironment("GitHubApp__AppId", p.GitHubAppId)
            .WithEnvironment("GitHubApp__ClientId", p.GitHubAppClientId)
            .WithEnvironment("GitHubApp__ClientSecret", p.GitHubAppClientSecret)
            .WithEnvironment("GitHubApp__PrivateKey", p.GitHubAppPrivateKey)
            .WithEnvironment("GitHubApp__WebhookSecret", p.GitHubAppWebhookSecret);

    /// <summary>The browser origins the Api and the Realtime hub accept.</summary>
    public static IResourceBuilder<ProjectResource> WithCors(this IResourceBuilder<ProjectResource> service, CoTeXParameters p) =>
        service.WithEnvironment("Cors__AllowedOrigins", p.CorsOrigins);
}
