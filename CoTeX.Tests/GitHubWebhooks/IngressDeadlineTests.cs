using System.Diagnostics;
using System.Net;
using CoTeX.Tests.Infrastructure;
using Npgsql;

namespace CoTeX.Tests.GitHubWebhooks;

/// <summary>
/// What a delivery may cost the database: an id that names no repo is answered from memory after the first lookup, and
/// no database attempt outlives the delivery's deadline (GitHub:DatabaseRetrySeconds after it arrived). A table lock
/// held by the test stands in for a database that accepts connections but does not answer.
/// </summary>
public sealed class IngressDeadlineTests(TestInfrastructure infra)
{
    private static readonly Dictionary<string, string?> Settings = new() { ["GitHub:DatabaseRetrySeconds"] = "2" };

    [Fact]
    public async Task An_unknown_repo_id_is_answered_404_from_memory_the_second_time()
    {
        await using var app = await ApiApp.StartAsync(infra, Settings);
        var unknown = Guid.NewGuid();
        var body = "{}"u8.ToArray();
        (await app.DeliverAsync(unknown, "any-secret", "push", body)).StatusCode.Should().Be(HttpStatusCode.NotFound);

        // Now a lookup in tracked_repos would wait for the lock until the deadline and be answered 503.
        await using var locker = await LockAsync(app, "tracked_repos");
        var stopwatch = Stopwatch.StartNew();
        var again = await app.DeliverAsync(unknown, "any-secret", "push", body);

        again.StatusCode.Should().Be(HttpStatusCode.NotFound, "the id is remembered as unknown");
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(1), "no query waited on the lock");
        (await WaitingOnLocksAsync(app)).Should().Be(0);

        // A different unknown id does go to the database, and is cut off at its deadline.
        (await app.DeliverAsync(Guid.NewGuid(), "any-secret", "push", body)).StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
    }

    [Fact]
    public async Task A_database_attempt_that_does_not_answer_is_cancelled_at_the_deliverys_deadline_and_answered_503()
    {
        await using var app = await ApiApp.StartAsync(infra, Settings);
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var body = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK,
            "the repo's key is now cached: the next delivery goes straight to the store");

        await using (await LockAsync(app, "github_events"))
        {
            var stopwatch = Stopwatch.StartNew();
            var response = await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body, "held-up");

            response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
            response.Headers.RetryAfter.Should().NotBeNull();
            (await response.Content.ReadAsStringAsync()).Should().Contain("deadline");
            stopwatch.Elapsed.Should().BeGreaterThan(TimeSpan.FromSeconds(1.5)).And.BeLessThan(TimeSpan.FromSeconds(9),
                "it waits until the 2 s deadline, not until GitHub has given up");
            // The statement is gone from the database while the lock is still held: the attempt ended with the deadline.
            (await WaitingOnLocksAsync(app)).Should().Be(0);
        }
        (await app.ScalarAsync<long>("select count(*) from github_events where delivery_id = 'held-up'")).Should().Be(0,
            "the cancelled statement rolled back");
        (await app.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK,
            "the pool's connections survived the cancellation");
    }

    /// <summary>Holds an exclusive lock on <paramref name="table"/> until disposed.</summary>
    private static async Task<NpgsqlConnection> LockAsync(ApiApp app, string table)
    {
        var connection = new NpgsqlConnection(app.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"begin; lock table {table} in access exclusive mode", connection);
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>The Api's statements in this database that are waiting for a lock.</summary>
    private static async Task<long> WaitingOnLocksAsync(ApiApp app)
    {
        await using var connection = new NpgsqlConnection(app.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
            connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
