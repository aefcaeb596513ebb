extern alias api;

using System.Net.Http.Headers;
using System.Net.Http.Json;
using CoTeX.Contracts;
using CoTeX.DevTools;
using Npgsql;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// The Api hosted in-process on its own migrated database, with helpers for what most tests do: act as a user,
/// track a repo, deliver a signed GitHub webhook, look at the stored rows.
/// </summary>
public sealed class ApiApp : IAsyncDisposable
{
    private ApiApp(string databaseConnectionString, ServiceHost<api::Program> host)
    {
        DatabaseConnectionString = databaseConnectionString;
        Host = host;
    }

    public string DatabaseConnectionString { get; }
    public ServiceHost<api::Program> Host { get; }

    public static async Task<ApiApp> StartAsync(TestInfrastructure infra, Dictionary<string, string?>? settings = null,
        string? databaseConnectionString = null, bool kestrel = false)
    {
        var db = databaseConnectionString ?? await infra.CreateMigratedDatabaseAsync();
        var host = ServiceHost<api::Program>.Create(db, infra.Redis.ConnectionString, settings);
        // Start now, so configuration errors surface here. Kestrel serves a real socket (real body limits).
        if (kestrel)
        {
            host.WithKestrel();
        }
        else
        {
            _ = host.Server;
        }
        return new ApiApp(db, host);
    }

    /// <summary>A client acting as <paramref name="userId"/> (a fresh user when omitted).</summary>
    public HttpClient ClientFor(Guid? userId = null, bool anonymous = false) =>
        Host.CreateClient().WithToken(TestTokens.For(userId ?? Guid.NewGuid(), anonymous: anonymous));

    public HttpClient AnonymousClient() => Host.CreateClient();

    /// <summary>Delivers <paramref name="body"/> the way GitHub does, signed with <paramref name="secret"/> (a webhook repo's).</summary>
    public Task<HttpResponseMessage> DeliverAsync(Guid repoId, string? secret, string eventType, byte[] body,
        string? deliveryId = null, Action<HttpRequestMessage>? tamper = null) =>
        ApiRequests.DeliverAsync(Host.CreateClient(), repoId, secret, eventType, body, deliveryId, tamper);

    public async Task<long> CountEventsAsync(Guid? repoId = null)
    {
        await using var connection = new NpgsqlConnection(DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select count(*) from github_events where $1::uuid is null or repo_id = $1", connection)
        {
            Parameters = { new NpgsqlParameter { Value = (object?)repoId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Uuid } },
        };
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
