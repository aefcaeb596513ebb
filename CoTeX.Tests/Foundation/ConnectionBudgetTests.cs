extern alias api;
extern alias realtime;
extern alias worker;

using CoTeX.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CoTeX.Tests.Foundation;

/// <summary>
/// Every service gets the same connection string, so each caps its own pool: together they stay under Postgres'
/// default of 100 connections with two Realtime replicas (30 + 2 × 15 + 5).
/// </summary>
public sealed class ConnectionBudgetTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Each_service_caps_its_pool_and_an_operator_can_change_the_cap()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        var redis = infra.Redis.ConnectionString;

        MaxPoolSize(ServiceHost<api::Program>.Create(db, redis)).Should().Be(30);
        MaxPoolSize(ServiceHost<realtime::Program>.Create(db, redis)).Should().Be(15);
        MaxPoolSize(ServiceHost<worker::Program>.Create(db, redis)).Should().Be(5);
        MaxPoolSize(ServiceHost<realtime::Program>.Create(db, redis, new() { ["Database:MaxPoolSize"] = "7" })).Should().Be(7);
        MaxPoolSize(ServiceHost<realtime::Program>.Create(db + ";Maximum Pool Size=9", redis)).Should().Be(9);
    }

    private static int MaxPoolSize<TProgram>(WebApplicationFactory<TProgram> host) where TProgram : class
    {
        using (host)
        {
            return new NpgsqlConnectionStringBuilder(host.Services.GetRequiredService<NpgsqlDataSource>().ConnectionString).MaxPoolSize;
        }
    }
}
