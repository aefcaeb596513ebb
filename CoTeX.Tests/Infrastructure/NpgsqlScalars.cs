using Npgsql;

namespace CoTeX.Tests.Infrastructure;

/// <summary>One value read from Postgres, for assertions on stored state.</summary>
public static class NpgsqlScalars
{
    /// <summary>On this connection: for what belongs to its session (settings, prepared statements).</summary>
    public static async Task<T> ScalarAsync<T>(this NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>On any connection of the data source.</summary>
    public static async Task<T> ScalarAsync<T>(this NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
