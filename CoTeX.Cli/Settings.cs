using CoTeX.Client;

namespace CoTeX.Cli;

internal static class Settings
{
    public static CoTeXClient CreateClient()
    {
        var token = Environment.GetEnvironmentVariable("COTEX_TOKEN");
        if (string.IsNullOrWhiteSpace(token))
        {
            throw new InvalidOperationException("Set COTEX_TOKEN to a Supabase access token (locally: export COTEX_TOKEN=$(eng/mint-token.sh)).");
        }
        var api = Environment.GetEnvironmentVariable("COTEX_API_URL") ?? "http://127.0.0.1:5080";
        var realtime = Environment.GetEnvironmentVariable("COTEX_REALTIME_URLS") ?? "http://127.0.0.1:5081";
        return new CoTeXClient(new CoTeXClientOptions
        {
            ApiUrl = new Uri(api),
            RealtimeUrls = realtime.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(u => new Uri(u)).ToArray(),
            AccessTokenProvider = _ => ValueTask.FromResult(token),
        });
    }
}

/// <summary>The last position watch printed, so the next run resumes after it.</summary>
internal static class PositionFile
{
    public static long? Read(FileInfo file) =>
        file.Exists && long.TryParse(File.ReadAllText(file.FullName).Trim(), out var position) ? position : null;

    public static void Write(FileInfo file, long position)
    {
        file.Directory?.Create();
        var temp = file.FullName + ".tmp";
        File.WriteAllText(temp, position.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.Move(temp, file.FullName, overwrite: true);
    }
}
