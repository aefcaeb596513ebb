using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Xml.Linq;
using CoTeX.Contracts;
using CoTeX.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Npgsql;

namespace CoTeX.Tests.Repos;

/// <summary>
/// The Data Protection key ring that protects webhook secrets lives in the same database as those secrets, so it is
/// only ever stored encrypted under a key-encryption key the database never sees (DataProtection:KeyEncryptionKey).
/// </summary>
public sealed class KeyRingEncryptionTests(TestInfrastructure infra)
{
    private const string OtherKey = "PFueAufMatUg8N9d1vwP/fQ9qkNQsEGSsLvc8/Vm/es=";

    [Fact]
    public async Task The_stored_key_ring_holds_no_unencrypted_key_material()
    {
        await using var app = await ApiApp.StartAsync(infra);
        await ApiRequests.TrackRepoAsync(app.ClientFor()); // protects a secret: the ring gets its first key

        var rows = await KeyRowsAsync(app.DatabaseConnectionString);

        rows.Should().NotBeEmpty();
        foreach (var xml in rows)
        {
            var key = XElement.Parse(xml);
            key.Descendants().Where(e => e.Name.LocalName == "masterKey").Should().BeEmpty("master keys are inside the encrypted part");
            key.Descendants().Should().NotContain(e => e.Attributes().Any(a => a.Name.LocalName == "requiresEncryption"));
            xml.Should().NotContain("unencrypted form");
            key.Descendants(XName.Get("keyRingSecret", "urn:cotex:data-protection")).Should().NotBeEmpty();
        }
    }

    [Fact]
    public async Task An_api_without_a_key_encryption_key_refuses_to_start_and_names_the_setting()
    {
        var (exitCode, output) = await ServiceProcess.RunToExitAsync("CoTeX.Api", new()
        {
            ["ConnectionStrings__cotexdb"] = await infra.CreateMigratedDatabaseAsync(),
            ["ConnectionStrings__redis"] = infra.Redis.ConnectionString,
            ["Auth__JwtSecret"] = TestTokens.Secret,
        }, TimeSpan.FromSeconds(60));

        exitCode.Should().NotBe(0);
        output.Should().Contain("DataProtection:KeyEncryptionKey is not set").And.Contain("DataProtection__KeyEncryptionKey");
    }

    [Theory]
    [InlineData("cotex-test-suite-key-encryption-key-0123456789", "not base64")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "repeat")] // 32 zero bytes
    [InlineData("Y290ZXhjb3RleGNvdGV4Y290ZXhjb3RleGNvdGV4Y28=", "repeat")] // "cotex" over and over
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "sequence")] // 0, 1, 2, ... 31
    [InlineData("NqfdKblfY6Gjvlq9zNKoZw==", "16 bytes")]
    [InlineData("prz8tH4P4TegipsyUqLXDfP/gCI0j+3YGXztjtcm1BoAqMMZEsSByYVgL4dI8BPi", "48 bytes")]
    public async Task An_api_whose_key_encryption_key_is_not_32_random_bytes_in_base64_refuses_to_start_and_names_the_setting(
        string key, string why)
    {
        // A process, as the missing key's test: in-process, a host that fails to start sometimes surfaces as
        // WebApplicationFactory's own ObjectDisposedException instead of the validation error.
        var (exitCode, output) = await ServiceProcess.RunToExitAsync("CoTeX.Api", new()
        {
            ["ConnectionStrings__cotexdb"] = await infra.CreateMigratedDatabaseAsync(),
            ["ConnectionStrings__redis"] = infra.Redis.ConnectionString,
            ["Auth__JwtSecret"] = TestTokens.Secret,
            ["DataProtection__KeyEncryptionKey"] = key,
        }, TimeSpan.FromSeconds(60));

        exitCode.Should().NotBe(0);
        output.Should().Contain("DataProtection:KeyEncryptionKey must be 32 random bytes in base64").And.Contain(why)
            .And.Contain("openssl rand -base64 32");
    }

    [Fact]
    public async Task Webhooks_keep_verifying_across_a_restart_with_the_right_key()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        CreatedRepo repo;
        await using (var before = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            repo = await ApiRequests.TrackRepoAsync(before.ClientFor());
        }

        await using var after = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        var response = await after.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", repo.FullName));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_service_with_another_key_encryption_key_cannot_read_the_secrets_and_says_so_in_health_and_log()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        CreatedRepo repo;
        await using (var owner = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            repo = await ApiRequests.TrackRepoAsync(owner.ClientFor());
        }

        await using var api = await ServiceProcess.StartAsync("CoTeX.Api", new()
        {
            ["ConnectionStrings__cotexdb"] = db,
            ["ConnectionStrings__redis"] = infra.Redis.ConnectionString,
            ["DataProtection__KeyEncryptionKey"] = OtherKey,
        }, readyPath: "/alive");
        using var http = new HttpClient { BaseAddress = api.Url };

        var health = await http.GetAsync("/health");
        health.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        var keyRing = (await health.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("checks").GetProperty("key-ring");
        keyRing.GetProperty("status").GetString().Should().Be("Unhealthy");
        var description = keyRing.GetProperty("description").GetString();
        description.Should().Contain("cannot be decrypted").And.Contain("DataProtection:KeyEncryptionKey");
        foreach (var id in KeyEncryptionKeyIds(await KeyRowsAsync(db)))
        {
            description.Should().NotContain(id, "/health answers anyone: it names the setting, not the keys");
            api.Output.Should().Contain(line => line.Contains(id), "the log names them for the operator");
        }
        await Eventually.SucceedsAsync(() =>
        {
            api.Output.Should().Contain(line => line.Contains("Webhook secrets cannot be read") && line.Contains("DataProtection:KeyEncryptionKey"));
            return Task.CompletedTask;
        });
        var delivery = await ApiRequests.DeliverAsync(http, repo.Id, repo.WebhookSecret, "push",
            GitHubPayloads.ForRepo("push/payload.json", repo.FullName));
        delivery.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, "the secret cannot be read: a server problem, not a bad signature");
        (await CountAsync(db, "select count(*) from github_events")).Should().Be(0);
    }

    [Fact]
    public async Task A_service_with_another_key_encryption_key_adds_no_key_to_the_ring_and_answers_503_where_a_new_secret_is_needed()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        var userId = Guid.NewGuid();
        CreatedRepo repo;
        await using (var owner = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            repo = await ApiRequests.TrackRepoAsync(owner.ClientFor(userId));
        }
        var ring = await KeyRowsAsync(db);

        await using (var wrong = await ApiApp.StartAsync(infra, new() { ["DataProtection:KeyEncryptionKey"] = OtherKey }, db))
        {
            var user = wrong.ClientFor(userId);
            foreach (var response in new[]
                     {
                         await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/Spoon-Knife" }),
                         await user.PostAsync($"/api/repos/{repo.Id}/rotate-secret", null),
                         await user.PostAsJsonAsync("/api/repos", new { fullName = "octocat/Hello-World" }), // once more: still refused
                     })
            {
                response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, await response.Content.ReadAsStringAsync());
                response.Headers.RetryAfter.Should().NotBeNull();
                var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
                problem.GetProperty("detail").GetString().Should().Contain("nothing was stored").And.Contain("DataProtection:KeyEncryptionKey");
            }
            (await wrong.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", repo.FullName)))
                .StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        }

        (await KeyRowsAsync(db)).Should().BeEquivalentTo(ring, "no key was created under the wrong key-encryption key");
        (await CountAsync(db, "select count(*) from tracked_repos")).Should().Be(1);
        await using var right = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        (await right.DeliverAsync(repo.Id, repo.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", repo.FullName)))
            .StatusCode.Should().Be(HttpStatusCode.OK, "the secret was not rotated, and the ring is still the right key's");
        await ApiRequests.TrackRepoAsync(right.ClientFor(userId), "octocat/Spoon-Knife");
    }

    [Fact]
    public async Task A_service_with_another_key_encryption_key_does_not_seal_a_key_written_in_the_clear()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using (var owner = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            await ApiRequests.TrackRepoAsync(owner.ClientFor());
        }
        var (plainKey, repoId, secret) = await AddKeyWrittenInTheClearAsync(db);

        await using (var wrong = await ApiApp.StartAsync(infra, new() { ["DataProtection:KeyEncryptionKey"] = OtherKey }, db))
        {
            (await wrong.AnonymousClient().GetAsync("/health")).StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable); // reads the ring
        }

        (await KeyRowsAsync(db)).Should().Contain(plainKey, "a service that cannot read the whole ring re-seals nothing");
        await using var right = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        (await right.DeliverAsync(repoId, secret, "push", GitHubPayloads.ForRepo("push/payload.json", "octocat/Hello-World")))
            .StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Connecting_github_with_another_key_encryption_key_is_503_and_adds_no_key_to_the_ring()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using (var owner = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            await ApiRequests.TrackRepoAsync(owner.ClientFor());
        }
        var ring = await KeyRowsAsync(db);
        await using var world = await GitHubAppWorld.StartAsync(infra, new() { ["DataProtection:KeyEncryptionKey"] = OtherKey }, db);

        var connect = await world.ApiApp.ClientFor().PostAsync("/api/github-app/connect", null);

        connect.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, await connect.Content.ReadAsStringAsync());
        connect.Headers.RetryAfter.Should().NotBeNull();
        (await connect.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().Should().Contain("nothing was stored");
        (await KeyRowsAsync(db)).Should().BeEquivalentTo(ring);
    }

    [Fact]
    public async Task A_connect_link_opened_on_a_replica_with_another_key_encryption_key_is_503_not_a_bad_link()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var world = await GitHubAppWorld.StartAsync(infra, databaseConnectionString: db);
        world.AddGitHubUser(1, "alice", GitHubAppWorld.Api);
        var callback = await world.StartConnectAsync(Guid.NewGuid(), 1);
        await using var other = await ApiApp.StartAsync(infra,
            new(world.GitHub.Settings) { ["DataProtection:KeyEncryptionKey"] = OtherKey }, db);

        var page = await other.AnonymousClient().GetAsync(new Uri(callback).PathAndQuery);

        page.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, await page.Content.ReadAsStringAsync());
        page.Headers.RetryAfter.Should().NotBeNull();
        // The replica with the ring's key reads the same link as it should.
        (await world.BrowseAsync(callback)).Status.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_rotation_in_the_documented_order_leaves_no_replica_unable_to_read_while_settings_are_mixed()
    {
        const string NewKey = "MmjbYMvh7ULvdrVEC1RNPXIYHbeqGelMqyTIx+QZfWA=";
        var db = await infra.CreateMigratedDatabaseAsync();
        var body = (CreatedRepo r) => GitHubPayloads.ForRepo("push/payload.json", r.FullName);
        var userId = Guid.NewGuid();
        CreatedRepo first;
        await using (var before = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            first = await ApiRequests.TrackRepoAsync(before.ClientFor(userId));
        }
        var oldIds = KeyEncryptionKeyIds(await KeyRowsAsync(db));

        // Step 1: every replica learns the new key as a previous one; the ring stays under the old key.
        Dictionary<string, string?> learned = new()
        {
            ["DataProtection:KeyEncryptionKey"] = TestTokens.KeyEncryptionKey, ["DataProtection:PreviousKeyEncryptionKeys:0"] = NewKey,
        };
        await using var stepOne = await ApiApp.StartAsync(infra, learned, db);
        (await stepOne.DeliverAsync(first.Id, first.WebhookSecret, "push", body(first))).StatusCode.Should().Be(HttpStatusCode.OK);
        KeyEncryptionKeyIds(await KeyRowsAsync(db)).Should().BeEquivalentTo(oldIds);

        // Step 2, replica by replica: the new key becomes current, the old one previous. The ring is sealed under the new
        // key while step 1 replicas still run, and a step 1 replica that reads it now (a restart) reads it.
        Dictionary<string, string?> current = new()
        {
            ["DataProtection:KeyEncryptionKey"] = NewKey, ["DataProtection:PreviousKeyEncryptionKeys:0"] = TestTokens.KeyEncryptionKey,
        };
        await using var stepTwo = await ApiApp.StartAsync(infra, current, db);
        (await stepTwo.DeliverAsync(first.Id, first.WebhookSecret, "push", body(first))).StatusCode.Should().Be(HttpStatusCode.OK);
        var newIds = KeyEncryptionKeyIds(await KeyRowsAsync(db));
        newIds.Should().NotIntersectWith(oldIds, "the step 2 replica sealed the ring under the new key");
        await using (var restartedStepOne = await ApiApp.StartAsync(infra, learned, db))
        {
            await AssertHealthyKeyRingAsync(restartedStepOne);
            (await restartedStepOne.DeliverAsync(first.Id, first.WebhookSecret, "push", body(first))).StatusCode.Should().Be(HttpStatusCode.OK);
            var second = await ApiRequests.TrackRepoAsync(restartedStepOne.ClientFor(userId), "octocat/Spoon-Knife");
            (await stepTwo.DeliverAsync(second.Id, second.WebhookSecret, "push", body(second))).StatusCode.Should().Be(HttpStatusCode.OK);
        }

        // Step 3: once every replica runs step 2, the old key is dropped; a replica with only the new key reads everything.
        await using (var allOnStepTwo = await ApiApp.StartAsync(infra, current, db))
        {
            await AssertHealthyKeyRingAsync(allOnStepTwo); // reading the ring seals it under the new key again
        }
        KeyEncryptionKeyIds(await KeyRowsAsync(db)).Should().BeEquivalentTo(newIds);
        await using var after = await ApiApp.StartAsync(infra, new() { ["DataProtection:KeyEncryptionKey"] = NewKey }, db);
        await AssertHealthyKeyRingAsync(after);
        (await after.DeliverAsync(first.Id, first.WebhookSecret, "push", body(first))).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_rotation_reseals_every_key_under_the_new_key_encryption_key()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        CreatedRepo repo;
        await using (var old = await ApiApp.StartAsync(infra, databaseConnectionString: db))
        {
            repo = await ApiRequests.TrackRepoAsync(old.ClientFor());
        }
        var body = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        var oldIds = KeyEncryptionKeyIds(await KeyRowsAsync(db));

        await using (var rotating = await ApiApp.StartAsync(infra, new()
                     {
                         ["DataProtection:KeyEncryptionKey"] = OtherKey,
                         ["DataProtection:PreviousKeyEncryptionKeys:0"] = TestTokens.KeyEncryptionKey,
                     }, db))
        {
            (await rotating.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK);
        }
        var newIds = KeyEncryptionKeyIds(await KeyRowsAsync(db));
        newIds.Should().ContainSingle().And.NotIntersectWith(oldIds, "every key is sealed under the new key-encryption key");

        await using var rotated = await ApiApp.StartAsync(infra, new() { ["DataProtection:KeyEncryptionKey"] = OtherKey }, db);
        (await rotated.DeliverAsync(repo.Id, repo.WebhookSecret, "push", body)).StatusCode.Should().Be(HttpStatusCode.OK,
            "the previous key is no longer needed");
    }

    [Fact]
    public async Task Keys_written_before_the_ring_was_encrypted_are_sealed_when_first_read()
    {
        // What a database from before this change holds: a key ring written in the clear, and a secret protected by it.
        var db = await infra.CreateMigratedDatabaseAsync();
        var (_, repoId, secret) = await AddKeyWrittenInTheClearAsync(db);

        await using var app = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        var response = await app.DeliverAsync(repoId, secret, "push", GitHubPayloads.ForRepo("push/payload.json", "octocat/Hello-World"));

        response.StatusCode.Should().Be(HttpStatusCode.OK, "the old secret is still readable");
        (await KeyRowsAsync(db)).Should().OnlyContain(xml => !xml.Contains("unencrypted form") && xml.Contains("keyRingSecret"));
    }

    /// <summary>A key written in the clear (as before the ring was encrypted) and a repo whose secret it protects.</summary>
    private static async Task<(string PlainKey, Guid RepoId, string Secret)> AddKeyWrittenInTheClearAsync(string db)
    {
        var folder = Directory.CreateTempSubdirectory("cotex-plain-keys");
        var secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        var protectedSecret = DataProtectionProvider.Create(folder, b => b.SetApplicationName("CoTeX"))
            .CreateProtector("CoTeX.GitHubWebhookSecret.v1").Protect(secret);
        var plainKey = await File.ReadAllTextAsync(folder.GetFiles("key-*.xml").Single().FullName);
        folder.Delete(recursive: true);
        plainKey.Should().Contain("unencrypted form");
        var userId = Guid.NewGuid();
        var repoId = Guid.NewGuid();
        await ExecuteAsync(db, "insert into data_protection_keys (friendly_name, xml) values ('key-plain', @xml)", ("xml", plainKey));
        await ExecuteAsync(db, "insert into users (id) values (@user)", ("user", userId));
        await ExecuteAsync(db, "insert into tracked_repos (id, user_id, full_name, webhook_secret_protected) values (@repo, @user, 'octocat/Hello-World', @secret)",
            ("repo", repoId), ("user", userId), ("secret", protectedSecret));
        return (plainKey, repoId, secret);
    }

    private static async Task AssertHealthyKeyRingAsync(ApiApp app)
    {
        var health = await app.AnonymousClient().GetFromJsonAsync<JsonElement>("/health");
        health.GetProperty("checks").GetProperty("key-ring").GetProperty("status").GetString().Should().Be("Healthy");
    }

    private static HashSet<string> KeyEncryptionKeyIds(IEnumerable<string> rows) =>
        rows.SelectMany(xml => XElement.Parse(xml).Descendants(XName.Get("keyRingSecret", "urn:cotex:data-protection")))
            .Select(e => (string)e.Attribute("kek")!).ToHashSet();

    private static async Task<List<string>> KeyRowsAsync(string db)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select xml from data_protection_keys", connection);
        var rows = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }
        return rows;
    }

    private static async Task<long> CountAsync(string db, string sql)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string db, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        await command.ExecuteNonQueryAsync();
    }
}
