using Aspire.Hosting.Publishing;

namespace CoTeX.AppHost;

/// <summary>The services a setting goes to.</summary>
[Flags]
public enum CoTeXService
{
    Api = 1,
    Realtime = 2,
    Worker = 4,
}

/// <summary>
/// One setting the services read from outside: the Aspire parameter that holds it (<see cref="Parameter"/>), the
/// configuration key the services read (<see cref="Variable"/>, environment form), and who gets it.
/// </summary>
/// <param name="Required">The services cannot run without it: a deployment must be given it (azd asks); a local run
/// that has none generates one (<see cref="Generate"/>) and keeps it in the AppHost's user secrets.</param>
/// <param name="Development">The value the tests and the benchmark tool give a required setting (never a
/// deployment's).</param>
public sealed record ServiceSetting(string Parameter, string Variable, CoTeXService Services, string Description,
    bool Secret = false, bool Required = false, string? Development = null)
{
    /// <summary>For a required setting, how a local run makes its first value (else 48 random characters).</summary>
    internal ParameterDefault? Generate { get; init; }
}

/// <summary>
/// <b>The one map of the services' settings</b>: every secret and deployment-specific setting, as an Aspire parameter
/// and the key each service reads. The AppHost wires it (<see cref="CoTeXParameters"/>); the tests and the benchmark
/// tool read the same map (<see cref="ForDevelopment"/>), so a new setting is a line here and a property in the
/// service's options class. In a local run the values come from the AppHost's configuration
/// (<c>Parameters:&lt;name&gt;</c>: user secrets, environment, command line); in a deployment azd asks for them (or
/// reads <c>AZURE_&lt;NAME&gt;</c>) and keeps them in its environment. The manifest holds only references to them.
/// </summary>
public static class ServiceSettings
{
    private const CoTeXService AllServices = CoTeXService.Api | CoTeXService.Realtime | CoTeXService.Worker;
    private const CoTeXService ApiAndWorker = CoTeXService.Api | CoTeXService.Worker;

    // Supabase's HS256 project secret. Locally, eng/mint-token.sh and the dashboard's "Mint a dev token" command sign
    // with the generated one.
    public static readonly ServiceSetting JwtSecret = new("jwt-secret", "Auth__JwtSecret", AllServices,
        "Supabase's JWT secret (HS256), at least 32 characters.", Secret: true, Required: true,
        Development: "cotex-development-jwt-secret-0123456789abcdef");

    // Encrypts the Data Protection key ring (the keys of the webhook secrets) in the database; never in it.
    public static readonly ServiceSetting KeyEncryptionKey = new("key-encryption-key", "DataProtection__KeyEncryptionKey", ApiAndWorker,
        "Encrypts the key ring that protects webhook secrets: 32 random bytes in base64 (openssl rand -base64 32). Rotation: README.",
        Secret: true, Required: true, Development: "H9JyG7MvFFMjtujPNpFGFczOZ4u4w7nAjy1+SgTzLIg=")
    {
        Generate = RandomKeyDefault.Instance,
    };

    public static IReadOnlyList<ServiceSetting> All { get; } =
    [
        JwtSecret,
        KeyEncryptionKey,
        new("supabase-jwks-url", "Auth__JwksUrl", AllServices,
            "Supabase's JWKS URL (https://<project>.supabase.co/auth/v1/.well-known/jwks.json) for ES256/RS256 tokens."),
        new("supabase-issuer", "Auth__Issuer", AllServices, "When set, tokens must carry this iss (https://<project>.supabase.co/auth/v1)."),

        // Stripe: the Api (Checkout, portal, webhooks) and the Worker (reconciliation). Billing is off while the key is empty.
        new("stripe-secret-key", "Stripe__SecretKey", ApiAndWorker, "Stripe secret key; billing is off while it is empty.", Secret: true),
        new("stripe-webhook-secret", "Stripe__WebhookSecret", ApiAndWorker, "Signing secret of the /webhooks/stripe endpoint.", Secret: true),
        new("stripe-pro-price-id", "Stripe__ProPriceId", ApiAndWorker, "The Pro plan's Stripe Price (price_...)."),
        new("stripe-success-url", "Stripe__SuccessUrl", ApiAndWorker, "Where Stripe Checkout returns after payment."),
        new("stripe-cancel-url", "Stripe__CancelUrl", ApiAndWorker, "Where Stripe Checkout returns when abandoned."),
        new("stripe-portal-return-url", "Stripe__PortalReturnUrl", ApiAndWorker, "Where the customer portal returns to."),

        // CoTeX's GitHub App: the Api (connect, the app's webhook) and the Worker (re-checks, redelivery). Off while
        // github-app-id is empty; when it is set, all five are required.
        new("github-app-id", "GitHubApp__AppId", ApiAndWorker,
            "The GitHub App's id (App settings → About); GitHub App mode is off while it is empty."),
        new("github-app-client-id", "GitHubApp__ClientId", ApiAndWorker, "The GitHub App's client id (Iv1.… or Iv23…)."),
        new("github-app-client-secret", "GitHubApp__ClientSecret", ApiAndWorker, "A client secret of the GitHub App.", Secret: true),
        new("github-app-private-key", "GitHubApp__PrivateKey", ApiAndWorker,
            "The GitHub App's private key: the .pem file's content, or that content in base64.", Secret: true),
        new("github-app-webhook-secret", "GitHubApp__WebhookSecret", ApiAndWorker,
            "The GitHub App's webhook secret; its webhook URL is <public-base-url>/api/webhooks/github-app.", Secret: true),

        // The browser origins the Api and the Realtime hub accept.
        new("cors-origins", "Cors__AllowedOrigins", CoTeXService.Api | CoTeXService.Realtime,
            "Browser origins allowed to call the API and open the hub, comma-separated."),
        new("public-base-url", "Api__PublicBaseUrl", CoTeXService.Api,
            "The Api's public address, the start of the webhook URLs handed to users."),
    ];

    /// <summary>The connection names the services read (<c>ConnectionStrings:&lt;name&gt;</c>), the AppHost's resources.</summary>
    public const string DatabaseConnection = "ConnectionStrings__cotexdb";
    public const string RedisConnection = "ConnectionStrings__redis";

    /// <summary>
    /// What a service started outside the AppHost (by a test, by the benchmark tool) is given: its connection strings
    /// and the development value of every required setting it reads (environment form: <c>Auth__JwtSecret</c>).
    /// </summary>
    public static Dictionary<string, string> ForDevelopment(CoTeXService service, string? databaseConnectionString = null,
        string? redisConnectionString = null)
    {
        var settings = All.Where(s => s.Required && s.Services.HasFlag(service)).ToDictionary(s => s.Variable, s => s.Development!);
        if (databaseConnectionString is not null)
        {
            settings[DatabaseConnection] = databaseConnectionString;
        }
        if (redisConnectionString is not null)
        {
            settings[RedisConnection] = redisConnectionString;
        }
        return settings;
    }

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
}

/// <summary>The map's settings as the AppHost's parameters, and each service given the ones it reads.</summary>
internal sealed class CoTeXParameters
{
    private readonly Dictionary<ServiceSetting, IResourceBuilder<ParameterResource>> _parameters;

    private CoTeXParameters(IDistributedApplicationBuilder builder) =>
        _parameters = ServiceSettings.All.ToDictionary(setting => setting, setting => Add(builder, setting));

    public static CoTeXParameters Add(IDistributedApplicationBuilder builder) => new(builder);

    public IResourceBuilder<ParameterResource> this[ServiceSetting setting] => _parameters[setting];

    /// <summary>Gives <paramref name="service"/> every setting of the map that goes to <paramref name="which"/>.</summary>
    public IResourceBuilder<ProjectResource> Configure(IResourceBuilder<ProjectResource> service, CoTeXService which)
    {
        foreach (var (setting, parameter) in _parameters.Where(p => p.Key.Services.HasFlag(which)))
        {
            service.WithEnvironment(setting.Variable, parameter);
        }
        return service;
    }

    private static IResourceBuilder<ParameterResource> Add(IDistributedApplicationBuilder builder, ServiceSetting setting) =>
        (setting.Required
            // A deployment must be given it (azd asks); a local run generates one and keeps it in the user secrets.
            ? builder.ExecutionContext.IsRunMode
                ? builder.AddParameter(setting.Parameter, setting.Generate ?? new GenerateParameterDefault { MinLength = 48, Special = false },
                    secret: true, persist: true)
                : builder.AddParameter(setting.Parameter, secret: true)
            // A setting that may stay empty: configuration when set, else "" (and "" as the manifest's default).
            : builder.AddParameter(setting.Parameter, EmptyDefault.Instance, setting.Secret))
        .WithDescription(setting.Description);

    private sealed class EmptyDefault : ParameterDefault
    {
        public static readonly EmptyDefault Instance = new();

        public override string GetDefaultValue() => "";

        public override void WriteToManifest(ManifestPublishingContext context) => context.Writer.WriteString("value", "");
    }
}

internal static class ParameterExtensions
{
    /// <summary>Every setting of the map that <paramref name="which"/> reads, as references to its parameters.</summary>
    public static IResourceBuilder<ProjectResource> WithSettings(this IResourceBuilder<ProjectResource> service,
        CoTeXParameters parameters, CoTeXService which) => parameters.Configure(service, which);
}
