using System.Text.Json.Nodes;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;

namespace CoTeX.Tests.AppHost;

/// <summary>
/// The AppHost's deployment manifest, published the way azd asks for it (<c>dotnet run --project CoTeX.AppHost
/// --publisher manifest --output-path ...</c>), once per test run: the manifest tests and the deployment template
/// tests read the same one.
/// </summary>
internal static class PublishedManifest
{
    private static readonly Lazy<Task<JsonNode>> Manifest = new(PublishAsync);

    public static Task<JsonNode> GetAsync() => Manifest.Value;

    private static async Task<JsonNode> PublishAsync()
    {
        var output = await TestMachine.CreateTempFolderAsync("cotex-manifest");
        try
        {
            var manifest = Path.Combine(output, "aspire-manifest.json");
            // The test assembly's own configuration (bin/<Configuration>/net10.0), which built the AppHost too.
            var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            await ChildProcess.RunAsync("dotnet",
            [
                "run", "--project", Repository.PathOf("CoTeX.AppHost"), "--no-build", "-c", configuration, "--",
                "--publisher", "manifest", "--output-path", manifest,
            ], timeout: TimeSpan.FromMinutes(2));
            return JsonNode.Parse(await File.ReadAllTextAsync(manifest))!;
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
