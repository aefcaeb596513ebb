using Npgsql;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server: its own cluster in a temp folder, on a free loopback port, removed on dispose.
/// Tests can stop and start it to simulate an outage.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _binDir;
    private readonly string _dataDir;
    private readonly string _root;

    public int Port { get; }

    /// <summary>Where this machine's Postgres server binaries are (initdb, pg_ctl, pg_controldata).</summary>
    public static string BinDirectory { get; } = FindBinDir();

    private PostgresServer(string binDir, string root, int port)
    {
        _binDir = binDir;
        _root = root;
        _dataDir = Path.Combine(root, "data");
        Port = port;
    }

    public static async Task<PostgresServer> StartNewAsync()
    {
        var binDir = BinDirectory;
        var root = await ProcessRunner.CreateTempFolderAsync("cotex-pg");
        var server = new PostgresServer(binDir, root, ProcessRunner.FreePort());
        await ProcessRunner.RunAsync(Path.Combine(binDir, "initdb"),
            ["-D", server._dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], asPostgres: true);
        await server.StartAsync();
        return server;
    }

    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Timeout=5;Command Timeout=30";

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

    public Task StartAsync() => ProcessRunner.RunAsync(Path.Combine(_binDir, "pg_ctl"),
    [
        "-D", _dataDir, "-l", Path.Combine(_root, "postgres.log"), "-w", "-t", "60",
        "-o", $"-p {Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off " +
              "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        "start",
    ], asPostgres: true);

    public Task StopAsync() =>
        ProcessRunner.RunAsync(Path.Combine(_binDir, "pg_ctl"), ["-D", _dataDir, "-m", "fast", "-w", "stop"], asPostgres: true);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ProcessRunner.RunAsync(Path.Combine(_binDir, "pg_ctl"), ["-D", _dataDir, "-m", "immediate", "-w", "stop"],
                asPostgres: true);
        }
        catch (InvalidOperationException)
        {
            // Already stopped by the test.
        }
        Directory.Delete(_root, recursive: true);
    }

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
