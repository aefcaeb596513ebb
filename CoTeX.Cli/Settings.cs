using CoTeX.Client;

namespace CoTeX.Cli;

internal static class Settings
{
    public static string ApiUrl => Environment.GetEnvironmentVariable("COTEX_API_URL") ?? "http://127.0.0.1:5080";

    public static CoTeXClient CreateClient() => CreateClient(TokenSource.FromEnvironment());

    public static CoTeXClient CreateClient(TokenSource tokens)
    {
        var realtime = Environment.GetEnvironmentVariable("COTEX_REALTIME_URLS") ?? "http://127.0.0.1:5081";
        return new CoTeXClient(new CoTeXClientOptions
        {
            ApiUrl = Url("COTEX_API_URL", ApiUrl),
            RealtimeUrls = realtime.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(u => Url("COTEX_REALTIME_URLS", u)).ToArray(),
            AccessTokenProvider = tokens.GetAsync,
        });
    }

    private static Uri Url(string variable, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"
            ? url
            : throw new ConfigurationException($"{variable} must hold http(s) URLs; '{value}' is not one.");
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
