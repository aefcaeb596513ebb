namespace CoTeX.Tests.Infrastructure;

/// <summary>The CoTeX checkout the tests run from (its scripts and projects).</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    public static string PathOf(string relativePath) => Path.Combine(Root, relativePath);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CoTeX.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("The tests run from inside the CoTeX repository (CoTeX.sln not found).");
    }
}
