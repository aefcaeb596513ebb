using FluentAssertions.Execution;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A file the repository keeps that a test can produce (schema.sql, the TypeScript client's schemas, the azd
/// templates): the test compares what it produced with the committed copy, and with <c>&lt;writeVariable&gt;=1</c>
/// writes the copy instead.
/// </summary>
public static class CheckedInFile
{
    /// <param name="explain">The failure message, given the committed text, its path, and a temporary file holding what
    /// the test produced (for <c>diff -u</c>).</param>
    public static async Task CompareOrWriteAsync(string relativePath, string actual, string writeVariable, Func<Difference, string> explain)
    {
        var path = Repository.PathOf(relativePath);
        if (Environment.GetEnvironmentVariable(writeVariable) == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllTextAsync(path, actual);
            return;
        }
        var expected = File.Exists(path) ? await File.ReadAllTextAsync(path) : "";
        if (actual != expected)
        {
            var actualPath = Path.Combine(Path.GetTempPath(), $"cotex-{Guid.NewGuid():N}-{Path.GetFileName(path)}");
            await File.WriteAllTextAsync(actualPath, actual);
            throw new AssertionFailedException(explain(new Difference(expected, path, actualPath)));
        }
    }

    public sealed record Difference(string Expected, string Path, string ActualPath);
}
