using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CoTeX.Tests.AppHost.Deployment;

/// <summary>
/// How big and how many of each Container App: what the capacity model (docs/capacity.md) asks for. A rule left null
/// is not written.
/// </summary>
/// <param name="HttpRequestsPerSecond">Container Apps' HTTP rule (<c>concurrentRequests</c>): requests in the last
/// 15 s divided by 15, per replica, above which a replica is added.</param>
/// <param name="MemoryUtilisation">A custom (KEDA <c>memory</c>) rule: the replicas' average memory use, in per cent of
/// <paramref name="Memory"/>, above which a replica is added.</param>
internal sealed record ContainerAppShape(int MinReplicas, int MaxReplicas, double Cpu, string Memory,
    int? HttpRequestsPerSecond = null, int? MemoryUtilisation = null);

/// <summary>
/// Writes, from the published manifest, what <c>azd infra synth</c> (azure-dev's <c>pkg/apphost</c>, 1.x) writes for it:
/// per resource <c>CoTeX.AppHost/infra/&lt;name&gt;.tmpl.yaml</c> (a Container App whose <c>{{ }}</c> expressions azd
/// fills at deploy time: <c>.Env.X</c>, <c>.Image</c>, <c>securedParameter</c>, <c>parameterWithDefault</c>,
/// <c>uriEncode</c>, <c>targetPortOrDefault</c>) and the shared <c>infra/main.bicep</c> parameters, with three
/// departures, each because azd's own output cannot deploy this AppHost as the model asks:
/// <list type="bullet">
/// <item>scale (replicas, CPU and memory, scale rules) from <see cref="Shapes"/> instead of one replica of the
/// default size;</item>
/// <item>an optional secret (a secret parameter whose manifest default is "") reads <c>parameterWithDefault</c>
/// (azd's environment value <c>AZURE_&lt;NAME&gt;</c>, else empty) and goes in as a Container Apps secret: azd's
/// generator refuses such a parameter ("default value for secured parameter ... is not supported"), so without
/// committed templates neither <c>azd provision</c> nor <c>azd deploy</c> gets past this manifest;</item>
/// <item>YAML strings in single quotes where azd's marshaller may choose another style (same value).</item>
/// </list>
/// Only the expressions this manifest uses are ported; anything else throws, naming what to port.
/// </summary>
internal static partial class AzdInfrastructure
{
    /// <summary>Folder of the per-resource templates, beside the AppHost project (where azd looks for them).</summary>
    public const string TemplatesFolder = "CoTeX.AppHost/infra";

    /// <summary>The shared infrastructure (azd's <c>infra.path</c> default), at the repository root.</summary>
    public const string InfraFolder = "infra";

    public static IReadOnlyDictionary<string, ContainerAppShape> Shapes { get; } = new Dictionary<string, ContainerAppShape>
    {
        // Webhooks, REST and catch-up reads: stateless, any number. ~0.1-0.36 ms of Api CPU per webhook was measured
        // (docs/benchmarks.md), so 1,000 requests/s is about a third of the replica's one vCPU.
        ["api"] = new(MinReplicas: 1, MaxReplicas: 10, Cpu: 1.0, Memory: "2Gi", HttpRequestsPerSecond: 1_000),
        // WebSockets: two so a replica's restart or a platform upgrade never leaves clients without a hub (the clients
        // skip negotiation, so no sticky sessions). An idle connection costs ~40 KB and no requests after its upgrade:
        // connections are counted by memory (70% of 2 GiB is ~30,000 connections at the measured 40-49 KB), connects
        // (a reconnect storm) by the HTTP rule.
        ["realtime"] = new(MinReplicas: 2, MaxReplicas: 10, Cpu: 1.0, Memory: "2Gi", HttpRequestsPerSecond: 200,
            MemoryUtilisation: 70),
        // Exactly one: its jobs (retention, Stripe reconciliation, GitHub App re-checks and redelivery) take no lock
        // against a second Worker, and two would ask GitHub for the same redeliveries.
        ["worker"] = new(MinReplicas: 1, MaxReplicas: 1, Cpu: 0.5, Memory: "1Gi"),
        // Applies the migrations and exits (Container Apps starts it again; a run with nothing to apply changes nothing).
        ["migrations"] = new(MinReplicas: 1, MaxReplicas: 1, Cpu: 0.5, Memory: "1Gi"),
        // The AppHost publishes Postgres and Redis as containers: one each, never more (each is its own data).
        ["postgres"] = new(MinReplicas: 1, MaxReplicas: 1, Cpu: 2.0, Memory: "4Gi"),
        ["redis"] = new(MinReplicas: 1, MaxReplicas: 1, Cpu: 0.5, Memory: "1Gi"),
    };

    /// <summary>Every file, by path from the repository root.</summary>
    public static IReadOnlyDictionary<string, string> Generate(JsonNode manifest)
    {
        var generator = new Generator(manifest["resources"]!.AsObject());
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in generator.ContainerApps)
        {
            files[$"{TemplatesFolder}/{name}.tmpl.yaml"] = generator.ContainerAppTemplate(name,
                Shapes.TryGetValue(name, out var shape) ? shape
                    : throw new InvalidOperationException($"No shape for the manifest's resource {name}: add it to {nameof(AzdInfrastructure)}.{nameof(Shapes)}."));
        }
        files[$"{InfraFolder}/main.bicep"] = generator.MainBicep();
        files[$"{InfraFolder}/main.parameters.json"] = generator.MainParameters();
        return files;
    }

    /// <summary>A manifest parameter's name as azd's templates and Bicep know it (<c>jwt-secret</c> → <c>jwt_secret</c>).</summary>
    public static string BicepName(string parameter) => parameter.Replace('-', '_');

    /// <summary>azd's <c>AzureSnakeCase</c>: the environment variable azd reads a parameter from (<c>AZURE_JWT_SECRET</c>).</summary>
    public static string EnvironmentName(string parameter) =>
        "AZURE_" + CamelCase().Replace(parameter, "$1_$2").ToUpperInvariant().Replace('-', '_');

    [GeneratedRegex("([a-z0-9])([A-Z])")]
    private static partial Regex CamelCase();

    private sealed partial class Generator(JsonObject resources)
    {
        private const string EnvironmentDomain = "{{ .Env.AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN }}";
        private const string TemplatedTargetPort = "{{ targetPortOrDefault 0 }}";

        /// <summary>Projects first, then containers, each in manifest order.</summary>
        public IEnumerable<string> ContainerApps =>
            resources.Where(r => Type(r.Key) == "project.v0").Select(r => r.Key)
                .Concat(resources.Where(r => Type(r.Key) == "container.v0").Select(r => r.Key));

        private IEnumerable<(string Name, JsonNode Input)> Parameters =>
            resources.Where(r => Type(r.Key) == "parameter.v0").Select(r => (r.Key, Input(r.Key)));

        private string Type(string resource) => resources[resource]?["type"]?.GetValue<string>()
            ?? throw new InvalidOperationException($"unknown resource referenced in binding expression: {resource}");

        private JsonNode Input(string parameter)
        {
            var value = resources[parameter]!["value"]!.GetValue<string>();
            if (value != $"{{{parameter}.inputs.value}}")
            {
                throw new NotSupportedException($"parameter {parameter}: only a parameter's own input 'value' is ported ({value})");
            }
            return resources[parameter]!["inputs"]!["value"]!;
        }

        private static bool IsSecret(JsonNode input) => input["secret"]?.GetValue<bool>() == true;

        private static string? DefaultValue(JsonNode input) => input["default"]?["value"]?.GetValue<string>();

        public string ContainerAppTemplate(string name, ContainerAppShape shape)
        {
            var resource = resources[name]!;
            var ingress = Ingress(name);
            var env = new SortedDictionary<string, string>(StringComparer.Ordinal);
            var secrets = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, node) in resource["env"]?.AsObject() ?? [])
            {
                var value = node!.GetValue<string>();
                var references = new List<string>();
                var resolved = Quote(Eval(value, references));
                // azd's rule (buildEnvBlock): connection strings and anything holding a secret are Container Apps secrets.
                if (key.Contains("ConnectionStrings__", StringComparison.Ordinal) || value.Contains(".connectionString}", StringComparison.Ordinal)
                    || references.Any(IsSecretParameter))
                {
                    secrets[key] = resolved;
                }
                else
                {
                    env[key] = resolved;
                }
            }

            var yaml = new StringBuilder();
            void Line(string line) => yaml.Append(line).Append('\n');
            Line("api-version: 2024-02-02-preview");
            Line("location: {{ .Env.AZURE_LOCATION }}");
            Line("identity:");
            Line("  type: UserAssigned");
            Line("  userAssignedIdentities:");
            Line("    ? \"{{ .Env.AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID }}\"");
            Line("    : {}");
            Line("properties:");
            Line("  environmentId: {{ .Env.AZURE_CONTAINER_APPS_ENVIRONMENT_ID }}");
            Line("  configuration:");
            Line("    activeRevisionsMode: single");
            Line("    runtime:");
            Line("      dotnet:");
            Line("        autoConfigureDataProtection: true");
            if (ingress is { } i)
            {
                Line("    ingress:");
                Line($"      external: {Bool(i.External)}");
                Line($"      targetPort: {i.TargetPort}");
                Line($"      transport: {i.Transport}");
                Line($"      allowInsecure: {Bool(i.AllowInsecure)}");
            }
            Line("    registries:");
            Line("      - server: {{ .Env.AZURE_CONTAINER_REGISTRY_ENDPOINT }}");
            Line("        identity: {{ .Env.AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID }}");
            if (secrets.Count > 0)
            {
                Line("    secrets:");
                foreach (var (key, value) in secrets)
                {
                    Line($"      - name: {SecretName(key)}");
                    Line($"        value: {value}");
                }
            }
            Line("  template:");
            Line("    containers:");
            Line("      - image: {{ .Image }}");
            Line($"        name: {name}");
            if (resource["args"] is JsonArray args && args.Count > 0)
            {
                Line("        args:");
                foreach (var arg in args)
                {
                    var references = new List<string>();
                    var resolved = Eval(arg!.GetValue<string>(), references);
                    if (references.Any(IsSecretParameter) || arg.GetValue<string>().Contains(".connectionString}", StringComparison.Ordinal))
                    {
                        throw new NotSupportedException($"{name}: an argument cannot hold a secret (azd refuses it)");
                    }
                    Line($"          - {Quote(resolved)}");
                }
                if (resource["entrypoint"]?.GetValue<string>() is { Length: > 0 } entrypoint)
                {
                    Line($"        command: [{entrypoint}]");
                }
            }
            Line("        env:");
            Line("          - name: AZURE_CLIENT_ID");
            Line("            value: {{ .Env.MANAGED_IDENTITY_CLIENT_ID }}");
            foreach (var (key, value) in env)
            {
                Line($"          - name: {key}");
                Line($"            value: {value}");
            }
            foreach (var key in secrets.Keys)
            {
                Line($"          - name: {key}");
                Line($"            secretRef: {SecretName(key)}");
            }
            Line("        resources:");
            Line($"          cpu: {shape.Cpu.ToString("0.0##", CultureInfo.InvariantCulture)}");
            Line($"          memory: {shape.Memory}");
            Line("    scale:");
            Line($"      minReplicas: {shape.MinReplicas}");
            Line($"      maxReplicas: {shape.MaxReplicas}");
            if (shape.HttpRequestsPerSecond is not null || shape.MemoryUtilisation is not null)
            {
                Line("      rules:");
                if (shape.HttpRequestsPerSecond is { } requests)
                {
                    if (ingress is not { Transport: "http" })
                    {
                        throw new InvalidOperationException($"{name}: an HTTP scale rule needs HTTP ingress");
                    }
                    Line("        - name: http-requests");
                    Line("          http:");
                    Line("            metadata:");
                    Line($"              concurrentRequests: '{requests}'");
                }
                if (shape.MemoryUtilisation is { } percent)
                {
                    Line("        - name: memory");
                    Line("          custom:");
                    Line("            type: memory");
                    Line("            metadata:");
                    Line("              type: Utilization");
                    Line($"              value: '{percent}'");
                }
            }
            Line("tags:");
            Line($"  azd-service-name: {name}");
            Line($"  aspire-resource-name: {name}");
            return yaml.ToString();
        }

        /// <summary>azd's <c>main.bicep</c> for this manifest: every parameter, what the services are deployed into.</summary>
        public string MainBicep()
        {
            var bicep = new StringBuilder();
            void Line(string line = "") => bicep.Append(line).Append('\n');
            Line("targetScope = 'subscription'");
            Line();
            Line("@minLength(1)");
            Line("@maxLength(64)");
            Line("@description('Name of the environment that can be used as part of naming resource convention, the name of the resource group for your application will use this name, prefixed with rg-')");
            Line("param environmentName string");
            Line();
            Line("@minLength(1)");
            Line("@description('The location used for all deployed resources')");
            Line("param location string");
            Line();
            Line("@description('Id of the user or app to assign application roles')");
            Line("param principalId string = ''");
            Line();
            foreach (var (name, input) in Parameters.OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                if (input["default"]?["generate"] is JsonObject generate)
                {
                    Line("@metadata({azd: {");
                    Line("  type: 'generate'");
                    Line($"  config: {GenerateMetadata(generate)}");
                    Line("  }");
                    Line("})");
                }
                if (input["description"]?.GetValue<string>() is { } description)
                {
                    Line($"@description('{description.Replace("'", "\\'")}')");
                }
                if (IsSecret(input))
                {
                    Line("@secure()");
                }
                var defaultValue = DefaultValue(input);
                Line($"param {BicepName(name)} string{(defaultValue is null ? "" : $" = '{defaultValue}'")}");
            }
            Line();
            Line("var tags = {");
            Line("  'azd-env-name': environmentName");
            Line("}");
            Line();
            Line("resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {");
            Line("  name: 'rg-${environmentName}'");
            Line("  location: location");
            Line("  tags: tags");
            Line("}");
            Line();
            Line("module resources 'resources.bicep' = {");
            Line("  scope: rg");
            Line("  name: 'resources'");
            Line("  params: {");
            Line("    location: location");
            Line("    tags: tags");
            Line("    principalId: principalId");
            Line("  }");
            Line("}");
            Line();
            foreach (var output in (string[])["MANAGED_IDENTITY_CLIENT_ID", "MANAGED_IDENTITY_NAME", "AZURE_LOG_ANALYTICS_WORKSPACE_NAME",
                         "AZURE_CONTAINER_REGISTRY_ENDPOINT", "AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID", "AZURE_CONTAINER_REGISTRY_NAME",
                         "AZURE_CONTAINER_APPS_ENVIRONMENT_NAME", "AZURE_CONTAINER_APPS_ENVIRONMENT_ID",
                         "AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN"])
            {
                Line($"output {output} string = resources.outputs.{output}");
            }
            // A setting with a default reaches the templates through azd's environment (parameterWithDefault reads
            // AZURE_<NAME>): the deployment's value goes there as an output. Secrets are never outputs.
            foreach (var (name, input) in Parameters.Where(p => DefaultValue(p.Input) is not null && !IsSecret(p.Input))
                         .OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                Line($"output {EnvironmentName(name)} string = {BicepName(name)}");
            }
            return bicep.ToString();
        }

        /// <summary>azd's <c>main.parameters.json</c>: each parameter from its <c>AZURE_&lt;NAME&gt;</c> environment value.</summary>
        public string MainParameters()
        {
            var json = new StringBuilder();
            json.Append("{\n");
            json.Append("  \"$schema\": \"https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#\",\n");
            json.Append("  \"contentVersion\": \"1.0.0.0\",\n");
            json.Append("  \"parameters\": {\n");
            json.Append("    \"principalId\": {\n      \"value\": \"${AZURE_PRINCIPAL_ID}\"\n    },\n");
            foreach (var (name, _) in Parameters.OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                json.Append($"    \"{BicepName(name)}\": {{\n      \"value\": \"${{{EnvironmentName(name)}}}\"\n    }},\n");
            }
            json.Append("    \"environmentName\": {\n      \"value\": \"${AZURE_ENV_NAME}\"\n    },\n");
            json.Append("    \"location\": {\n      \"value\": \"${AZURE_LOCATION}\"\n    }\n");
            json.Append("  }\n}\n");
            return json.ToString();
        }

        private static string GenerateMetadata(JsonObject generate)
        {
            // azd's inputMetadata: the length, and each character class turned off as no<Class>.
            var parts = new List<string> { $"length:{generate["minLength"]?.GetValue<int>() ?? 0}" };
            foreach (var (field, no) in new[] { ("lower", "noLower"), ("upper", "noUpper"), ("numeric", "noNumeric"), ("special", "noSpecial") })
            {
                if (generate[field] is { } allowed)
                {
                    parts.Add($"{no}:{Bool(!allowed.GetValue<bool>())}");
                }
            }
            foreach (var field in new[] { "minLower", "minUpper", "minNumeric", "minSpecial" })
            {
                if (generate[field] is { } count)
                {
                    parts.Add($"{field}:{count.GetValue<int>()}");
                }
            }
            return "{" + string.Join(',', parts) + "}";
        }

        private bool IsSecretParameter(string parameter) => IsSecret(Input(parameter));

        /// <summary>azd's <c>EvalString</c>: every <c>{resource.property}</c> replaced; <paramref name="parameters"/> collects the parameters used.</summary>
        private string Eval(string value, List<string> parameters)
        {
            var result = new StringBuilder();
            for (var i = 0; i < value.Length; i++)
            {
                switch (value[i])
                {
                    case '{' when i + 1 < value.Length && value[i + 1] == '{':
                        result.Append('{');
                        i++;
                        break;
                    case '}' when i + 1 < value.Length && value[i + 1] == '}':
                        result.Append('}');
                        i++;
                        break;
                    case '{':
                        var end = value.IndexOf('}', i + 1);
                        if (end < 0)
                        {
                            throw new FormatException($"unclosed '{{' at position {i} in {value}");
                        }
                        result.Append(Reference(value[(i + 1)..end], parameters));
                        i = end;
                        break;
                    case '}':
                        throw new FormatException($"unexpected '}}' at position {i} in {value}");
                    default:
                        result.Append(value[i]);
                        break;
                }
            }
            return result.ToString();
        }

        /// <summary>azd's <c>evalBindingRef</c>, for the resource types and properties this manifest uses.</summary>
        private string Reference(string expression, List<string> parameters)
        {
            var dot = expression.IndexOf('.');
            var (resource, property) = (expression[..dot], expression[(dot + 1)..]);
            var type = Type(resource);
            var node = resources[resource]!;
            if (property == "connectionString" && node["connectionString"] is { } connectionString)
            {
                return Eval(connectionString.GetValue<string>(), parameters);
            }
            if (type == "annotated.string" && property == "value")
            {
                if (node["filter"]?.GetValue<string>() != "uri")
                {
                    throw new NotSupportedException($"annotated.string {resource}: only the uri filter is supported by azd");
                }
                return Eval(node["value"]!.GetValue<string>(), parameters)
                    .Replace("{{ ", "{{ uriEncode (", StringComparison.Ordinal).Replace("}}", ")}}", StringComparison.Ordinal);
            }
            if (type == "parameter.v0" && property == "value")
            {
                parameters.Add(resource);
                var input = Input(resource);
                var name = BicepName(resource);
                return DefaultValue(input) is { } defaultValue
                    // An optional secret too (see the class): azd's environment value, else the default.
                    ? $"{{{{ parameterWithDefault \"{name}\" \"{defaultValue}\"}}}}"
                    : IsSecret(input) ? $"{{{{ securedParameter \"{name}\" }}}}" : $"{{{{ parameter \"{name}\" }}}}";
            }
            if (type is "project.v0" or "container.v0" && property.StartsWith("bindings.", StringComparison.Ordinal))
            {
                var parts = property["bindings.".Length..].Split('.');
                var binding = node["bindings"]![parts[0]] ?? throw new InvalidOperationException($"unknown binding {expression}");
                var scheme = binding["scheme"]!.GetValue<string>();
                var external = binding["external"]?.GetValue<bool>() == true;
                var targetPort = binding["targetPort"]?.GetValue<int>();
                var port = binding["port"]?.GetValue<int>();
                var http = scheme is "http" or "https";
                // Every binding of these resources is on the main ingress (see Ingress).
                return parts[1] switch
                {
                    "scheme" or "transport" => scheme,
                    "host" => http ? $"{resource}.{(external ? "" : "internal.")}{EnvironmentDomain}" : resource,
                    "port" => http ? (scheme == "http" ? "80" : "443")
                        : port?.ToString(CultureInfo.InvariantCulture) ?? targetPort?.ToString(CultureInfo.InvariantCulture) ?? TemplatedTargetPort,
                    "targetPort" => targetPort?.ToString(CultureInfo.InvariantCulture) ?? TemplatedTargetPort,
                    _ => throw new NotSupportedException($"binding property not ported: {expression}"),
                };
            }
            throw new NotSupportedException($"expression not ported from azd's evalBindingRef: {{{expression}}} ({type})");
        }

        private sealed record AcaIngress(bool External, string TargetPort, string Transport, bool AllowInsecure);

        /// <summary>azd's <c>buildAcaIngress</c> for the two shapes here: HTTP bindings without a target port (a
        /// project: port from the build, 8080 by default), or one TCP binding with one (a container).</summary>
        private AcaIngress? Ingress(string name)
        {
            if (resources[name]!["bindings"] is not JsonObject bindings || bindings.Count == 0)
            {
                return null;
            }
            var all = bindings.Select(b => b.Value!).ToList();
            if (all.All(b => b["scheme"]!.GetValue<string>() is "http" or "https" && b["targetPort"] is null))
            {
                var external = all.Any(b => b["external"]?.GetValue<bool>() == true);
                return new AcaIngress(external, "{{ targetPortOrDefault 8080 }}", "http", AllowInsecure: !external);
            }
            if (all.Count == 1 && all[0]["targetPort"] is { } port && all[0]["external"]?.GetValue<bool>() != true)
            {
                return new AcaIngress(false, port.GetValue<int>().ToString(CultureInfo.InvariantCulture), "tcp", AllowInsecure: false);
            }
            throw new NotSupportedException($"{name}: ingress shape not ported from azd's buildAcaIngress");
        }

        private static string SecretName(string key) => key.ToLowerInvariant().Replace('_', '-');

        private static string Bool(bool value) => value ? "true" : "false";

        /// <summary>A YAML string: plain where YAML reads it back as the same string, else in single quotes.</summary>
        private static string Quote(string value) =>
            PlainScalar().IsMatch(value) && !ReadsAsOtherType().IsMatch(value) ? value : $"'{value.Replace("'", "''")}'";

        [GeneratedRegex(@"^[A-Za-z_/.][A-Za-z0-9_/.=;,$ -]*[A-Za-z0-9_/.=;,$-]$|^[A-Za-z_/.]$")]
        private static partial Regex PlainScalar();

        [GeneratedRegex(@"^(true|false|yes|no|on|off|null|y|n|~|[-+]?[0-9._]+)$", RegexOptions.IgnoreCase)]
        private static partial Regex ReadsAsOtherType();
    }
}
