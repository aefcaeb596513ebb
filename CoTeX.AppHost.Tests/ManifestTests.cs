using System.Text.Json.Nodes;

namespace CoTeX.Tests.AppHost;

/// <summary>
/// The deployment manifest, published the way azd asks for it (<c>dotnet run --project CoTeX.AppHost --publisher
/// manifest --output-path ...</c>), describes what operators deploy and holds no secret.
/// </summary>
public sealed class ManifestTests
{
    private static readonly string[] Services = ["migrations", "api", "realtime", "worker"];

    [Fact]
    public async Task The_manifest_has_the_topology_azd_deploys_and_every_secret_is_a_parameter()
    {
        var resources = (await PublishedManifest.GetAsync())["resources"]!.AsObject();

        resources["postgres"]!["type"]!.GetValue<string>().Should().Be("container.v0");
        resources["redis"]!["type"]!.GetValue<string>().Should().Be("container.v0");
        resources["cotexdb"]!["connectionString"]!.GetValue<string>().Should().Contain("{postgres.connectionString}");
        foreach (var service in Services)
        {
            resources[service]!["type"]!.GetValue<string>().Should().Be("project.v0");
            var env = resources[service]!["env"]!.AsObject();
            env["ConnectionStrings__cotexdb"]!.GetValue<string>().Should().Be("{cotexdb.connectionString}");
        }
        foreach (var service in Services.Skip(1))
        {
            resources[service]!["env"]!["ConnectionStrings__redis"]!.GetValue<string>().Should().Be("{redis.connectionString}");
        }
        IsExternal(resources["api"]!).Should().BeTrue("GitHub, Stripe and desktop clients call the Api");
        IsExternal(resources["realtime"]!).Should().BeTrue("desktop clients connect to the hub");
        IsExternal(resources["worker"]!).Should().BeFalse("nothing outside calls the Worker");

        // Secrets reach the services only as references to secret parameters, which have no value in the manifest.
        resources["api"]!["env"]!["Auth__JwtSecret"]!.GetValue<string>().Should().Be("{jwt-secret.value}");
        resources["api"]!["env"]!["Stripe__SecretKey"]!.GetValue<string>().Should().Be("{stripe-secret-key.value}");
        resources["worker"]!["env"]!["Stripe__WebhookSecret"]!.GetValue<string>().Should().Be("{stripe-webhook-secret.value}");
        resources["api"]!["env"]!["DataProtection__KeyEncryptionKey"]!.GetValue<string>().Should().Be("{key-encryption-key.value}");
        // Behind the ingress the client's address comes from X-Forwarded-For, or every webhook sender would be one.
        resources["api"]!["env"]!["Api__TrustedProxies__0"]!.GetValue<string>().Should().Be("10.0.0.0/8");
        foreach (var service in new[] { "api", "worker" })
        {
            resources[service]!["env"]!["GitHubApp__PrivateKey"]!.GetValue<string>().Should().Be("{github-app-private-key.value}");
            resources[service]!["env"]!["GitHubApp__AppId"]!.GetValue<string>().Should().Be("{github-app-id.value}");
        }
        resources["github-app-webhook-secret"]!["inputs"]!["value"]!["secret"]!.GetValue<bool>().Should().BeTrue();
        foreach (var required in new[] { "jwt-secret", "key-encryption-key" })
        {
            var input = resources[required]!["inputs"]!["value"]!;
            input["secret"]!.GetValue<bool>().Should().BeTrue();
            input["default"].Should().BeNull($"{required} is the operator's to give (azd asks), never generated or defaulted");
        }
        foreach (var (name, resource) in resources)
        {
            if (resource!["inputs"]?["value"] is { } input && input["secret"]?.GetValue<bool>() == true)
            {
                var literal = input["default"]?["value"]?.GetValue<string>();
                literal.Should().BeNullOrEmpty($"secret parameter {name} must not carry a value");
            }
        }
        foreach (var service in Services)
        {
            foreach (var (name, value) in resources[service]!["env"]!.AsObject())
            {
                if (name.Contains("PASSWORD") || name.Contains("Secret") || name.Contains("Key"))
                {
                    value!.GetValue<string>().Should().MatchRegex(@"^\{[a-z-]+\.value\}$", $"{service}'s {name} is a parameter reference");
                }
            }
        }
    }

    private static bool IsExternal(JsonNode resource) =>
        resource["bindings"]!.AsObject().Any(binding => binding.Value!["external"]?.GetValue<bool>() == true);
}
