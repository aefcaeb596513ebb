using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CoTeX.AppHost;
using CoTeX.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace CoTeX.Tests.AppHost.Deployment;

/// <summary>
/// The committed azd infrastructure (<c>CoTeX.AppHost/infra/*.tmpl.yaml</c>, <c>infra/main.bicep</c>) agrees with the
/// AppHost: azd deploys from these files, not from the manifest, so a setting, a service or a parameter added to the
/// AppHost and not to them would silently not be deployed. To write them again after changing the AppHost or
/// <see cref="AzdInfrastructure.Shapes"/>: <c>COTEX_WRITE_INFRA=1 dotnet test --project CoTeX.AppHost.Tests --
/// --filter-class "*DeploymentTemplateTests"</c>, then review the diff.
/// </summary>
public sealed partial class DeploymentTemplateTests
{
    private const string WriteSwitch = "COTEX_WRITE_INFRA";

    [Fact]
    public async Task The_committed_infrastructure_is_what_the_manifest_generates()
    {
        var generated = AzdInfrastructure.Generate(await PublishedManifest.GetAsync());
        foreach (var (path, content) in generated)
        {
            await CheckedInFile.CompareOrWriteAsync(path, content, WriteSwitch, difference => difference.Expected == ""
                ? $"azd deploys from {path}; write it with {WriteSwitch}=1"
                : $"{path} must be what the AppHost's manifest generates (diff -u {difference.Path} {difference.ActualPath}; write it again with {WriteSwitch}=1 and review the diff)");
        }
        Directory.GetFiles(Repository.PathOf(AzdInfrastructure.TemplatesFolder), "*.tmpl.yaml")
            .Select(file => $"{AzdInfrastructure.TemplatesFolder}/{Path.GetFileName(file)}")
            .Should().BeSubsetOf(generated.Keys, "a template for a resource the AppHost no longer has would still be deployed");
    }

    [Fact]
    public async Task Every_resource_has_a_template_with_every_variable_and_parameter_the_manifest_gives_it()
    {
        var resources = (await PublishedManifest.GetAsync())["resources"]!.AsObject();
        var parameters = resources.Where(r => r.Value!["type"]!.GetValue<string>() == "parameter.v0")
            .Select(r => AzdInfrastructure.BicepName(r.Key)).ToHashSet();
        var mainBicep = await File.ReadAllTextAsync(Repository.PathOf($"{AzdInfrastructure.InfraFolder}/main.bicep"));

        foreach (var (name, resource) in resources.Where(r => r.Value!["type"]!.GetValue<string>() is "project.v0" or "container.v0"))
        {
            var path = Repository.PathOf($"{AzdInfrastructure.TemplatesFolder}/{name}.tmpl.yaml");
            File.Exists(path).Should().BeTrue($"azd deploys {name} from its template");
            var text = await File.ReadAllTextAsync(path);
            var app = ContainerApp.Parse(text);

            var env = app.Env;
            foreach (var (variable, value) in resource!["env"]?.AsObject() ?? [])
            {
                env.Should().ContainKey(variable, $"the manifest gives {name} {variable}");
                if (env[variable].SecretRef is { } secret)
                {
                    app.Secrets.Should().Contain(secret, $"{name}'s {variable} refers to a secret of the app");
                }
                foreach (var parameter in ParametersReferenced(resources, value!.GetValue<string>()))
                {
                    text.Should().Contain($"\"{AzdInfrastructure.BicepName(parameter)}\"", $"{name}'s {variable} comes from parameter {parameter}");
                }
            }
            foreach (var parameter in TemplateParameter().Matches(text).Select(m => m.Groups["name"].Value))
            {
                parameters.Should().Contain(parameter, $"{name}'s template reads parameter {parameter}, which the manifest must have");
            }
            // A secret never sits in the template as a plain value: only a parameter reference in a Container Apps secret.
            foreach (var (variable, entry) in env.Where(e => e.Value.Value is not null))
            {
                entry.Value.Should().NotContain("securedParameter", $"{name}'s {variable} holds a secret: it must be a secretRef");
            }
        }
        foreach (var parameter in parameters)
        {
            mainBicep.Should().MatchRegex($@"(?m)^param {parameter} string", $"azd asks for (or generates) {parameter} at provisioning");
        }
    }

    [Fact]
    public async Task Every_setting_of_the_map_is_in_the_templates_of_the_services_that_read_it()
    {
        var services = new Dictionary<CoTeXService, string>
        {
            [CoTeXService.Api] = "api", [CoTeXService.Realtime] = "realtime", [CoTeXService.Worker] = "worker",
        };
        foreach (var (service, name) in services)
        {
            var text = await File.ReadAllTextAsync(Repository.PathOf($"{AzdInfrastructure.TemplatesFolder}/{name}.tmpl.yaml"));
            var env = ContainerApp.Parse(text).Env;
            foreach (var setting in ServiceSettings.All.Where(s => s.Services.HasFlag(service)))
            {
                env.Should().ContainKey(setting.Variable, $"{name} reads {setting.Parameter} (ServiceSettings)");
                text.Should().Contain($"\"{AzdInfrastructure.BicepName(setting.Parameter)}\"");
                if (setting.Secret)
                {
                    env[setting.Variable].SecretRef.Should().NotBeNull($"{setting.Parameter} is a secret");
                }
            }
            env.Should().ContainKey(ServiceSettings.DatabaseConnection);
            env.Should().ContainKey(ServiceSettings.RedisConnection);
        }
    }

    [Fact]
    public async Task The_replicas_and_scale_rules_are_what_the_capacity_model_asks_for()
    {
        ContainerApp Read(string name) =>
            ContainerApp.Parse(File.ReadAllText(Repository.PathOf($"{AzdInfrastructure.TemplatesFolder}/{name}.tmpl.yaml")));

        var realtime = Read("realtime");
        realtime.MinReplicas.Should().BeGreaterThanOrEqualTo(2, "a hub replica's restart must never leave the clients without one");
        realtime.MaxReplicas.Should().BeGreaterThan(realtime.MinReplicas);
        realtime.Rules.Should().Contain("http", "connects (a reconnect storm) add replicas");
        realtime.Rules.Should().Contain("custom:memory", "idle connections cost memory, not requests");
        realtime.External.Should().BeTrue();

        var api = Read("api");
        api.MinReplicas.Should().BeGreaterThanOrEqualTo(1);
        api.MaxReplicas.Should().BeGreaterThan(api.MinReplicas);
        api.Rules.Should().Contain("http");
        api.External.Should().BeTrue();

        var worker = Read("worker");
        (worker.MinReplicas, worker.MaxReplicas).Should().Be((1, 1), "the Worker's jobs take no lock against a second Worker");
        worker.External.Should().BeFalse("nothing outside calls the Worker");

        foreach (var single in new[] { "migrations", "postgres", "redis" })
        {
            Read(single).MaxReplicas.Should().Be(1, $"{single} runs once");
        }
        await Task.CompletedTask;
    }

    /// <summary>The parameters a manifest value reads, through connection strings and annotated strings too.</summary>
    private static IEnumerable<string> ParametersReferenced(JsonObject resources, string value)
    {
        foreach (Match reference in ManifestReference().Matches(value))
        {
            var (resource, property) = (reference.Groups["resource"].Value, reference.Groups["property"].Value);
            var node = resources[resource]!;
            var type = node["type"]!.GetValue<string>();
            if (type == "parameter.v0")
            {
                yield return resource;
            }
            var inner = property == "connectionString" ? node["connectionString"]?.GetValue<string>()
                : type == "annotated.string" ? node["value"]?.GetValue<string>() : null;
            foreach (var parameter in inner is null ? [] : ParametersReferenced(resources, inner))
            {
                yield return parameter;
            }
        }
    }

    [GeneratedRegex(@"\{(?<resource>[A-Za-z0-9-]+)\.(?<property>[A-Za-z0-9.]+)\}")]
    private static partial Regex ManifestReference();

    [GeneratedRegex(@"\{\{ (?:securedParameter|parameterWithDefault|parameter) ""(?<name>[A-Za-z0-9_]+)""")]
    private static partial Regex TemplateParameter();

    /// <summary>A Container App template read as YAML, its <c>{{ }}</c> expressions set aside.</summary>
    private sealed record ContainerApp(Dictionary<string, (string? Value, string? SecretRef)> Env, HashSet<string> Secrets,
        int MinReplicas, int MaxReplicas, List<string> Rules, bool External)
    {
        public static ContainerApp Parse(string text)
        {
            var expressions = new List<string>();
            var yamlText = Expression().Replace(text, m =>
            {
                expressions.Add(m.Value);
                return $"TMPL{expressions.Count - 1}";
            });
            var stream = new YamlStream();
            stream.Load(new StringReader(yamlText));
            var root = (YamlMappingNode)stream.Documents[0].RootNode;
            string Restore(string text) => TemplateRef().Replace(text, m => expressions[int.Parse(m.Groups[1].Value)]);

            var properties = Map(root, "properties");
            var configuration = Map(properties, "configuration");
            var template = Map(properties, "template");
            var container = (YamlMappingNode)((YamlSequenceNode)template["containers"]).Children.Single();

            var env = new Dictionary<string, (string?, string?)>();
            foreach (YamlMappingNode entry in ((YamlSequenceNode)container["env"]).Children)
            {
                var name = Scalar(entry, "name")!;
                env.Should().NotContainKey(name, "a variable is set once");
                env[name] = (Scalar(entry, "value") is { } value ? Restore(value) : null, Scalar(entry, "secretRef"));
            }
            var secrets = configuration.Children.TryGetValue("secrets", out var s)
                ? ((YamlSequenceNode)s).Children.Select(x => Scalar((YamlMappingNode)x, "name")!).ToHashSet()
                : [];
            var scale = Map(template, "scale");
            var rules = scale.Children.TryGetValue("rules", out var r)
                ? ((YamlSequenceNode)r).Children.Cast<YamlMappingNode>().Select(rule =>
                    rule.Children.ContainsKey("http") ? "http"
                    : rule.Children.ContainsKey("custom") ? $"custom:{Scalar(Map(rule, "custom"), "type")}"
                    : "other").ToList()
                : [];
            var external = configuration.Children.TryGetValue("ingress", out var ingress)
                && Scalar((YamlMappingNode)ingress, "external") == "true";
            return new ContainerApp(env, secrets, int.Parse(Scalar(scale, "minReplicas")!), int.Parse(Scalar(scale, "maxReplicas")!),
                rules, external);
        }

        private static YamlMappingNode Map(YamlMappingNode node, string key) => (YamlMappingNode)node[key];

        private static string? Scalar(YamlMappingNode node, string key) =>
            node.Children.TryGetValue(key, out var value) ? ((YamlScalarNode)value).Value : null;
    }

    [GeneratedRegex(@"\{\{.*?\}\}")]
    private static partial Regex Expression();

    [GeneratedRegex(@"TMPL(\d+)")]
    private static partial Regex TemplateRef();
}
