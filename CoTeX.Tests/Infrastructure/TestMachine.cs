using CoTeX.DevTools;

namespace CoTeX.Tests.Infrastructure;

/// <summary>This machine as the tests use it: free loopback ports and temporary folders.</summary>
internal static class TestMachine
{
    public static bool IsRoot => Environment.UserName == "root";

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A fresh folder under the temp directory that the 'postgres' user can use too.</summary>
    public static async Task<string> CreateTempFolderAsync(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        if (IsRoot)
        {
            await ChildProcess.RunAsync("chown", ["postgres:postgres", path]);
        }
        return path;
    }
}
