extern alias api;

using CoTeX.Tests.Infrastructure;
using Npgsql;

namespace CoTeX.Tests.Foundation;

public sealed class MigrationTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Migrations_apply_once_and_a_second_run_changes_nothing()
    {
        var db = await infra.Postgres.CreateDatabaseAsync();

        var first = await TestInfrastructure.MigrateAsync(db);
        var schemaAfterFirst = await SchemaFingerprintAsync(db);
        var second = await TestInfrastructure.MigrateAsync(db);

        first.Should().NotBeEmpty();
        second.Should().BeEmpty();
        (await SchemaFingerprintAsync(db)).Should().Equal(schemaAfterFirst);
        await using var dataSource = NpgsqlDataSource.Create(db);
        (await dataSource.ScalarAsync<long>("select count(*) from schemaversions")).Should().Be(first.Count);
    }

    [Fact]
    public async Task Concurrent_migrators_do_not_collide()
    {
        var db = await infra.Postgres.CreateDatabaseAsync();

        var runs = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => TestInfrastructure.MigrateAsync(db)));

        runs.Count(applied => applied.Count > 0).Should().Be(1, "exactly one run applies the scripts, the others wait and find nothing");
    }

    [Fact]
    public async Task A_service_without_a_database_connection_string_fails_at_start_naming_the_setting()
    {
        await using var host = new ServiceHost<api::Program>(new() { ["ConnectionStrings:redis"] = infra.Redis.ConnectionString });

        var start = () => host.CreateClient();

        start.Should().Throw<InvalidOperationException>().WithMessage("*ConnectionStrings:cotexdb*");
    }

    private static async Task<List<string>> SchemaFingerprintAsync(string db) =>
        await QueryAsync(db, """
            select table_name || '.' || column_name || ':' || data_type
            from information_schema.columns where table_schema = 'public' order by 1
            """);

    private static async Task<List<string>> QueryAsync(string db, string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(db);
        await using var command = dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }
        return rows;
    }
}
