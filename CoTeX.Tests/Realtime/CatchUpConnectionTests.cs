extern alias realtime;

using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CoTeX.Tests.Realtime;

/// <summary>
/// Realtime's Postgres connections are ready for catch-up when they open: the read is prepared (its first plan on a
/// backend costs ~25 ms of Postgres CPU) and plans are generic (docs/benchmarks.md, catch-up).
/// </summary>
public sealed class CatchUpConnectionTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_new_connection_has_the_catch_up_reads_prepared_and_uses_generic_plans()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        using var host = ServiceHost<realtime::Program>.Create(db, infra.Redis.ConnectionString);
        var dataSource = host.Services.GetRequiredService<NpgsqlDataSource>();

        await using var connection = await dataSource.OpenConnectionAsync();

        (await connection.ScalarAsync<string>("show plan_cache_mode")).Should().Be("force_generic_plan");
        (await connection.ScalarAsync<long>("""
            select count(*) from pg_prepared_statements
             where statement like '%from github_events%where user_id = $1 and seq > $2%'
                or statement like '%from tracked_repos where user_id = $1 and not paused%'
            """)).Should().Be(2);
    }

    [Fact]
    public async Task A_connection_still_opens_before_the_migrations_have_created_the_tables()
    {
        var db = await infra.Postgres.CreateDatabaseAsync();
        using var host = ServiceHost<realtime::Program>.Create(db, infra.Redis.ConnectionString);
        var dataSource = host.Services.GetRequiredService<NpgsqlDataSource>();

        await using var connection = await dataSource.OpenConnectionAsync();

        (await connection.ScalarAsync<long>("select count(*) from pg_prepared_statements")).Should().Be(0);
    }
}
