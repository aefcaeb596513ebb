using CoTeX.AppHost.Infrastructure;
using CoTeX.Tests.Infrastructure;

[assembly: AssemblyFixture(typeof(TestInfrastructure))]

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// One real Postgres and one real Redis for the whole test run (<see cref="TestServers"/>: the AppHost's own local
/// resources). Tests isolate themselves by taking a database of their own (<see cref="CreateMigratedDatabaseAsync"/>);
/// tests that break the servers start private ones instead.
/// </summary>
public sealed class TestInfrastructure : IAsyncLifetime
{
    private LocalServers? _servers;

    public PostgresServer Postgres { get; private set; } = null!;
    public RedisServer Redis { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _servers = await TestServers.StartAsync();
        Postgres = new PostgresServer(_servers);
        Redis = new RedisServer(_servers);
    }

    /// <summary>A new database on the shared server with every migration applied.</summary>
    public Task<string> CreateMigratedDatabaseAsync() => Postgres.CreateMigratedDatabaseAsync();

    public static Task<IReadOnlyList<string>> MigrateAsync(string connectionString) => PostgresServer.MigrateAsync(connectionString);

    // A failed start has already stopped what it started.
    public ValueTask DisposeAsync() => _servers is null ? ValueTask.CompletedTask : TestServers.StopAsync(_servers);
}
