using CoTeX.Tests.Infrastructure;
using Npgsql;

namespace CoTeX.Tests.GitHubWebhooks;

/// <summary>
/// <c>ingest_github_events</c> (CoTeX.Shared/Data/Functions/ingest_github_events.sql) stores a whole group-committed
/// batch in one call. The receiver tests reach it through HTTP, where which deliveries share a batch is up to timing;
/// here the batches are exact.
/// </summary>
public sealed class BatchIngestTests(TestInfrastructure infra)
{
    private sealed record Delivery(Guid RepoId, Guid UserId, string DeliveryId, string EventType = "issues");

    private sealed record Outcome(string Status, long? Id, long? Position, bool? Paused);

    [Fact]
    public async Task One_batch_answers_each_delivery_in_order_with_contiguous_positions_per_user()
    {
        await using var db = NpgsqlDataSource.Create(await infra.CreateMigratedDatabaseAsync());
        var (alice, bob) = (Guid.NewGuid(), Guid.NewGuid());
        var (aliceRepo, bobRepo, bobPaused, goneRepo) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await ExecuteAsync(db, $"""
            insert into users (id) values ('{alice}'), ('{bob}');
            insert into tracked_repos (id, user_id, full_name, webhook_secret_protected, paused) values
                ('{aliceRepo}', '{alice}', 'a/one', 'x', false),
                ('{bobRepo}', '{bob}', 'b/one', 'x', false),
                ('{bobPaused}', '{bob}', 'b/two', 'x', true);
            """);
        (await IngestAsync(db, [new(aliceRepo, alice, "seen-before")])).Single().Status.Should().Be("stored");

        var outcomes = await IngestAsync(db,
        [
            new(aliceRepo, alice, "a-1"),
            new(bobRepo, bob, "b-1"),
            new(aliceRepo, alice, "seen-before"),   // stored by an earlier batch
            new(aliceRepo, alice, "a-2"),
            new(bobRepo, bob, "b-1"),               // earlier in this batch
            new(goneRepo, alice, "g-1"),            // no such repo
            new(aliceRepo, bob, "wrong-owner"),     // the repo is not this user's
            new(bobPaused, bob, "b-2", "ping"),
            new(aliceRepo, alice, "a-3"),
        ]);

        outcomes.Select(o => o.Status).Should().Equal(
            "stored", "stored", "duplicate", "stored", "duplicate", "repo_gone", "repo_gone", "stored", "stored");
        outcomes.Where((_, i) => i is 0 or 3 or 8).Select(o => o.Position).Should().Equal(2L, 3L, 4L);
        outcomes.Where((_, i) => i is 1 or 7).Select(o => o.Position).Should().Equal(1L, 2L);
        outcomes.Where(o => o.Status == "stored").Select(o => o.Id!.Value).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        outcomes[7].Paused.Should().BeTrue("a paused repo keeps its events but is not announced live");
        outcomes[1].Paused.Should().BeFalse();

        (await db.ScalarAsync<long>($"select last_event_seq from users where id = '{alice}'")).Should().Be(4);
        (await db.ScalarAsync<long>($"select last_event_seq from users where id = '{bob}'")).Should().Be(2);
        (await db.ScalarAsync<long>("select count(*) from github_events")).Should().Be(6);
        (await db.ScalarAsync<long>("select count(*) from github_deliveries")).Should().Be(6);
        (await db.ScalarAsync<bool>($"select last_ping_at is not null from tracked_repos where id = '{bobPaused}'")).Should().BeTrue();
        (await db.ScalarAsync<bool>($"select last_ping_at is null and last_delivery_at is not null from tracked_repos where id = '{bobRepo}'"))
            .Should().BeTrue();
    }

    [Fact]
    public async Task Payloads_are_compressed_with_lz4()
    {
        await using var db = NpgsqlDataSource.Create(await infra.CreateMigratedDatabaseAsync());
        var (user, repo) = await UserWithRepoAsync(db);
        await IngestAsync(db, [new(repo, user, "big")], payload: GitHubPayloads.ForRepo("pull_request/opened.payload.json", "a/b"));

        (await db.ScalarAsync<string>("select pg_column_compression(body) from github_events")).Should().Be("lz4");
    }

    [Fact]
    public async Task The_previous_versions_jsonb_call_still_stores_during_a_rollout()
    {
        await using var db = NpgsqlDataSource.Create(await infra.CreateMigratedDatabaseAsync());
        var (user, repo) = await UserWithRepoAsync(db);

        var outcomes = await IngestAsync(db, [new(repo, user, "old-1"), new(repo, user, "old-2"), new(repo, user, "old-1")], legacyJsonb: true);

        outcomes.Select(o => o.Status).Should().Equal("stored", "stored", "duplicate");
        (await db.ScalarAsync<string>("select string_agg(convert_from(body, 'UTF8'), ',' order by seq) from github_events"))
            .Should().Be("""{"action": "opened"},{"action": "opened"}""");
    }

    /// <summary>A user tracking one webhook repo, 'a/b'.</summary>
    private static async Task<(Guid User, Guid Repo)> UserWithRepoAsync(NpgsqlDataSource db)
    {
        var (user, repo) = (Guid.NewGuid(), Guid.NewGuid());
        await ExecuteAsync(db, $"""
            insert into users (id) values ('{user}');
            insert into tracked_repos (id, user_id, full_name, webhook_secret_protected) values ('{repo}', '{user}', 'a/b', 'x');
            """);
        return (user, repo);
    }

    /// <param name="legacyJsonb">Call the jsonb[] overload, as an Api from before migration 0007 does.</param>
    private static async Task<List<Outcome>> IngestAsync(NpgsqlDataSource db, Delivery[] batch, byte[]? payload = null, bool legacyJsonb = false)
    {
        await using var command = db.CreateCommand(
            $"select o_outcome, o_id, o_position, o_paused from ingest_github_events($1, $2, $3, $4, $5, $6, $7, $8, $9{(legacyJsonb ? "::jsonb[]" : "")})");
        command.Parameters.AddWithValue(batch.Select(d => d.RepoId).ToArray());
        command.Parameters.AddWithValue(batch.Select(d => d.UserId).ToArray());
        command.Parameters.AddWithValue(batch.Select(d => d.DeliveryId).ToArray());
        command.Parameters.AddWithValue(batch.Select(d => d.EventType).ToArray());
        foreach (var _ in Enumerable.Range(0, 4))
        {
            command.Parameters.AddWithValue(batch.Select(_ => (string?)null).ToArray());
        }
        var json = payload ?? """{"action":"opened"}"""u8.ToArray();
        if (legacyJsonb)
        {
            command.Parameters.AddWithValue(batch.Select(_ => System.Text.Encoding.UTF8.GetString(json)).ToArray());
        }
        else
        {
            command.Parameters.AddWithValue(batch.Select(_ => json).ToArray());
        }

        var outcomes = new List<Outcome>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            outcomes.Add(new Outcome(reader.GetString(0),
                reader.IsDBNull(1) ? null : reader.GetInt64(1),
                reader.IsDBNull(2) ? null : reader.GetInt64(2),
                reader.IsDBNull(3) ? null : reader.GetBoolean(3)));
        }
        return outcomes;
    }

    private static async Task ExecuteAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}
