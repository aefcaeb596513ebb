using System.Text;
using CoTeX.DevTools;
using CoTeX.Tests.Infrastructure;
using Npgsql;

namespace CoTeX.Tests.Foundation;

/// <summary>
/// <c>CoTeX.Shared/Data/schema.sql</c> is the schema a migrated database has, so a reviewer reads the current tables,
/// indexes and functions in one file, and sees a migration's effect in the same diff as the migration. It is what
/// <c>pg_dump --schema-only</c> prints for a freshly migrated database, without pg_dump's comments and settings.
/// </summary>
public sealed class SchemaTests(TestInfrastructure infra)
{
    private const string SchemaFile = "CoTeX.Shared/Data/schema.sql";
    private const string WriteVariable = "COTEX_WRITE_SCHEMA";
    private const string Regenerate =
        $"{WriteVariable}=1 dotnet test --project CoTeX.Tests -- --filter-class CoTeX.Tests.Foundation.SchemaTests";

    // pg_dump's own comment lines are dropped, so the file says once where it comes from.
    private static readonly string Header = $"""
        -- The schema of a freshly migrated CoTeX database: the versioned scripts in Data/Migrations, then the functions in
        -- Data/Functions. Generated (pg_dump --schema-only --no-owner --no-privileges, without comments and settings, and
        -- without the daily partitions github_events_pYYYYMMDD and github_event_payloads_pYYYYMMDD, which depend on the
        -- day): do not edit. After changing a migration or a function, regenerate it and commit it with the change:
        --   {Regenerate}
        -- CoTeX.Tests/Foundation/SchemaTests.cs fails while it differs from a migrated database.


        """;

    [Fact]
    public async Task A_migrated_database_has_exactly_the_schema_in_schema_sql()
    {
        var db = await infra.Postgres.CreateDatabaseAsync();
        await TestInfrastructure.MigrateAsync(db);

        var actual = Header + await DumpSchemaAsync(db);

        await CheckedInFile.CompareOrWriteAsync(SchemaFile, actual, WriteVariable, difference => $"""
            {SchemaFile} is not the schema of a migrated database. {FirstDifference(difference.Expected, actual)}
            The migrated database's schema is in {difference.ActualPath} (diff -u {difference.Path} {difference.ActualPath}).
            If the migrations or functions changed on purpose, regenerate the file and commit it with them:
              {Regenerate}
            """);
    }

    [Fact]
    public async Task Migrating_an_up_to_date_database_again_leaves_its_schema_as_it_was()
    {
        // Every deployment runs the migrator, and with it every function script: on a database that has everything,
        // they replace the functions with themselves.
        var db = await infra.CreateMigratedDatabaseAsync();
        var before = await DumpSchemaAsync(db);

        (await TestInfrastructure.MigrateAsync(db)).Should().BeEmpty("no versioned script is pending");

        (await DumpSchemaAsync(db)).Should().Be(before);
    }

    /// <summary>
    /// The schema as pg_dump prints it, normalised so the same schema always gives the same text: without its comment
    /// lines (the version header, "-- Name: ...; Type: ..." above each object: lines starting with "--", which no
    /// function body here has, since their comments are indented), its SET and set_config lines, its \restrict lines
    /// (a random key on every run since 15.14) and repeated blank lines. pg_dump orders objects by kind and name (and
    /// overloads by their argument types), not by when they were made, so no sorting is needed.
    /// </summary>
    private static async Task<string> DumpSchemaAsync(string connectionString)
    {
        var connection = new NpgsqlConnectionStringBuilder(connectionString);
        var dump = await ChildProcess.RunAsync(Path.Combine(PostgresServer.BinDirectory, "pg_dump"),
        [
            "--schema-only", "--no-owner", "--no-privileges",
            // Retention makes the daily partitions a week ahead; which days exist depends on the day, not the schema.
            "--exclude-table=public.github_events_p[0-9]*", "--exclude-table=public.github_event_payloads_p[0-9]*",
            "-h", connection.Host!, "-p", connection.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-U", connection.Username!, "-d", connection.Database!,
        ]);

        var text = new StringBuilder();
        var blank = true; // no blank lines at the start
        foreach (var line in dump.ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.StartsWith("--", StringComparison.Ordinal) || line.StartsWith("SET ", StringComparison.Ordinal)
                || line.StartsWith("SELECT pg_catalog.set_config(", StringComparison.Ordinal)
                || line.StartsWith('\\'))
            {
                continue;
            }
            if (line.Length == 0)
            {
                if (blank)
                {
                    continue;
                }
                blank = true;
            }
            else
            {
                blank = false;
            }
            text.Append(line).Append('\n');
        }
        return text.ToString().TrimEnd('\n') + "\n";
    }

    private static string FirstDifference(string expected, string actual)
    {
        var expectedLines = expected.Split('\n');
        var actualLines = actual.Split('\n');
        for (var i = 0; i < Math.Max(expectedLines.Length, actualLines.Length); i++)
        {
            var e = i < expectedLines.Length ? expectedLines[i] : "(end of file)";
            var a = i < actualLines.Length ? actualLines[i] : "(end of file)";
            if (e != a)
            {
                return $"First difference at line {i + 1}: the file has\n  {e}\nthe database has\n  {a}";
            }
        }
        return "";
    }
}
