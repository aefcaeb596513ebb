using CoTeX.AppHost.Infrastructure;
using CoTeX.DevTools;
using CoTeX.Shared.Data;
using FluentAssertions;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// Postgres and Redis for tests: the AppHost's own local servers (<see cref="LocalServers"/>, the resources
/// <c>dotnet run --project CoTeX.AppHost</c> runs on a machine without containers) on free ports in a temporary
/// folder, tuned for a test run: no fsync, no persistence, room for every test's connection pools.
/// </summary>
public static class TestServers
{
    public static async Task<LocalServers> StartAsync()
    {
        var folder = await TestMachine.CreateTempFolderAsync("cotex-servers");
        try
        {
            return await LocalServers.StartAsync(new LocalInfrastructureOptions
            {
                DataDirectory = folder,
                PostgresPort = TestMachine.FreePort(),
                RedisPort = TestMachine.FreePort(),
                PostgresArguments = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300"],
                RedisArguments = ["--appendonly", "no"],
            });
        }
        catch
        {
            Directory.Delete(folder, recursive: true);
            throw;
        }
    }

    /// <summary>Stops the servers and removes their folder.</summary>
    public static async ValueTask StopAsync(LocalServers servers)
    {
        await servers.DisposeAsync();
        // A server the orchestrator had to kill may take a moment to let go of its files.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(servers.Options.DataDirectory, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 20)
            {
                await Task.Delay(500);
            }
        }
    }
}

/// <summary>
/// The Postgres of a <see cref="LocalServers"/>: databases for tests, and an outage on demand (a fast shutdown and a
/// start, through the orchestrator as the dashboard does them).
/// </summary>
public sealed class PostgresServer(LocalServers servers)
{
    /// <summary>Where this machine's Postgres tools are (pg_dump, pg_controldata).</summary>
    public static string BinDirectory { get; } = FindBinDir();

    public string ConnectionString(string database = "postgres") => servers.PostgresConnectionString(database);

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null)
    {
        name ??= "db_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"create database \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>A new database with every migration applied (the migration step's own code); its connection string.</summary>
    public async Task<string> CreateMigratedDatabaseAsync(string? name = null)
    {
        var connectionString = await CreateDatabaseAsync(name);
        await MigrateAsync(connectionString);
        return connectionString;
    }

    /// <summary>Runs the migrations on a database, as the migration step does; the versioned scripts it applied.</summary>
    public static async Task<IReadOnlyList<string>> MigrateAsync(string connectionString)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        return await new DatabaseMigrator(dataSource, NullLoggerFactory.Instance).MigrateAsync();
    }

    public Task StopAsync() => servers.StopAsync(LocalInfrastructure.Postgres);

    public Task StartAsync() => servers.StartAsync(LocalInfrastructure.Postgres);

    private static string FindBinDir()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("COTEX_PG_BIN");
        var candidates = (fromEnvironment is null ? [] : new[] { fromEnvironment })
            .Concat(Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d).Select(d => Path.Combine(d, "bin"))
                : []);
        return candidates.FirstOrDefault(dir => File.Exists(Path.Combine(dir, "initdb")))
            ?? throw new InvalidOperationException(
                "PostgreSQL server binaries not found: install the 'postgresql' package or set COTEX_PG_BIN.");
    }
}

/// <summary>
/// The Redis of a <see cref="LocalServers"/>, with the faults a test needs: a crash (SIGKILL), a stall (SIGSTOP: the
/// connections stay open and nothing answers), and a start again.
/// </summary>
public sealed class RedisServer(LocalServers servers)
{
    public int Port => servers.Options.RedisPort;
    public string ConnectionString => servers.RedisConnectionString;

    public Task FreezeAsync() => SignalAsync(Signals.Stop);

    public Task ResumeAsync() => SignalAsync(Signals.Continue);

    /// <summary>Kills the server at once (SIGKILL), as a crash would, and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        var pid = servers.ProcessIdOf(LocalInfrastructure.Redis);
        ChildProcess.Signal(pid, Signals.Kill);
        await Eventually.SucceedsAsync(() =>
        {
            servers.ExitCodeOf(LocalInfrastructure.Redis).Should().NotBeNull("the orchestrator has seen redis-server end");
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(15));
    }

    public Task StartAsync() => servers.StartAsync(LocalInfrastructure.Redis);

    private Task SignalAsync(Signals signal)
    {
        ChildProcess.Signal(servers.ProcessIdOf(LocalInfrastructure.Redis), signal);
        return Task.CompletedTask;
    }
}

/// <summary>
/// A Postgres and a Redis of a test's own, for a test that breaks one of them or needs counts of its own (one
/// orchestrator for both); stopped and their folder removed when disposed.
/// </summary>
public sealed class PrivateServers : IAsyncDisposable
{
    private readonly LocalServers _servers;

    private PrivateServers(LocalServers servers)
    {
        _servers = servers;
        Postgres = new PostgresServer(servers);
        Redis = new RedisServer(servers);
    }

    public PostgresServer Postgres { get; }
    public RedisServer Redis { get; }

    public static async Task<PrivateServers> StartAsync() => new(await TestServers.StartAsync());

    public ValueTask DisposeAsync() => TestServers.StopAsync(_servers);
}
