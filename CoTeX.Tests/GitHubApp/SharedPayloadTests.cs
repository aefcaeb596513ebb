extern alias worker;

using System.Net;
using System.Text;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using worker::CoTeX.Worker.Retention;

namespace CoTeX.Tests.GitHubApp;

/// <summary>
/// Team fan-out (migration 0009): an app delivery's payload is stored once for all of its followers, each follower's
/// event references it, and it goes with the last of them; what each user sees is as before.
/// </summary>
public sealed class SharedPayloadTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_delivery_to_three_followers_stores_its_payload_once_and_each_reads_it_whole()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var followers = new[]
        {
            await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api")),
            await world.NewFollowerAsync(2, "bob", (GitHubAppWorld.Api, "acme/api")),
            await world.NewFollowerAsync(3, "carol", (GitHubAppWorld.Api, "acme/api")),
        };
        var push = GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api");

        (await world.DeliverAsync("push", push))["stored"]!.GetValue<int>().Should().Be(3);

        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_event_payloads")).Should().Be(1);
        (await world.ApiApp.ScalarAsync<int>("select refs from github_event_payloads")).Should().Be(3);
        (await world.ApiApp.ScalarAsync<byte[]>("select body from github_event_payloads")).Should().Equal(push);
        (await world.ApiApp.ScalarAsync<long>(
            "select count(*) from github_events e join github_event_payloads p on p.id = e.payload_id and p.received_at = e.received_at where e.body is null"))
            .Should().Be(3, "each follower's row references the one payload and holds no copy");
        foreach (var follower in followers)
        {
            var detail = await EventDetailAsync(world, follower);
            detail.Should().Contain(Encoding.UTF8.GetString(push), "the payload is served byte for byte, as before");
        }

        // A per-repo webhook has one recipient: its payload stays in its own row, with nothing shared.
        var own = await ApiRequests.TrackRepoAsync(world.ApiApp.ClientFor(followers[0]), "alice/own");
        (await world.ApiApp.DeliverAsync(own.Id, own.WebhookSecret, "push", GitHubPayloads.ForRepo("push/payload.json", "alice/own")))
            .EnsureSuccessStatusCode();
        (await world.ApiApp.ScalarAsync<long>($"select count(*) from github_events where repo_id = '{own.Id}' and body is not null and payload_id is null"))
            .Should().Be(1);
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_event_payloads")).Should().Be(1);
    }

    [Fact]
    public async Task Closing_a_followers_account_keeps_the_others_events_and_payloads_and_the_last_reference_takes_the_payload()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        var bob = await world.NewFollowerAsync(2, "bob", (GitHubAppWorld.Api, "acme/api"));
        var carol = await world.NewFollowerAsync(3, "carol", (GitHubAppWorld.Api, "acme/api"));
        var first = GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api");
        await world.DeliverAsync("push", first);
        await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_event_payloads")).Should().Be(2);

        (await world.ApiApp.ClientFor(alice).DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await world.CountEventsAsync(alice)).Should().Be(0);
        (await world.CountEventsAsync(bob)).Should().Be(2);
        (await world.CountEventsAsync(carol)).Should().Be(2);
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_event_payloads where refs = 2")).Should().Be(2);
        (await EventDetailAsync(world, bob, oldest: true)).Should().Contain(Encoding.UTF8.GetString(first));

        // Bob stops tracking the repository (its events go with it), then Carol closes her account: nobody references
        // the payloads any more, and they are gone.
        var bobRepo = await world.ApiApp.ScalarAsync<Guid>($"select id from tracked_repos where user_id = '{bob}'");
        (await world.ApiApp.ClientFor(bob).DeleteAsync($"/api/repos/{bobRepo}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_event_payloads where refs = 1")).Should().Be(2);
        (await EventDetailAsync(world, carol, oldest: true)).Should().Contain(Encoding.UTF8.GetString(first));

        (await world.ApiApp.ClientFor(carol).DeleteAsync("/api/me")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_events")).Should().Be(0);
        (await world.ApiApp.ScalarAsync<long>("select count(*) from github_event_payloads")).Should().Be(0);
    }

    [Fact]
    public async Task Retention_removes_shared_payloads_with_their_events_and_keeps_the_recent_ones()
    {
        await using var world = await GitHubAppWorld.StartAsync(infra);
        var alice = await world.NewFollowerAsync(1, "alice", (GitHubAppWorld.Api, "acme/api"));
        await world.NewFollowerAsync(2, "bob", (GitHubAppWorld.Api, "acme/api"));
        var app = world.ApiApp;
        await app.ScalarAsync<int>("select ensure_github_event_partitions(current_date - 25, current_date)");
        // Three deliveries, then two of them back-dated, events, payloads and dedupe keys alike (one ingest, one time):
        // one into a day wholly past the window, one just past the cut-off in the day that straddles it.
        for (var i = 0; i < 3; i++)
        {
            await world.DeliverAsync("push", GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api"));
        }
        var ids = (await app.ScalarAsync<long[]>("select array_agg(id order by id) from github_event_payloads"))!;
        ids.Should().HaveCount(3);
        foreach (var (id, age) in new[] { (ids[0], "20 days"), (ids[1], "14 days 1 minute") })
        {
            await app.ScalarAsync<int>(
                $"""
                with moved as (
                    update github_event_payloads set received_at = received_at - interval '{age}' where id = {id} returning received_at
                ), events as (
                    update github_events e set received_at = e.received_at - interval '{age}' where e.payload_id = {id} returning delivery_id
                )
                update github_deliveries set received_at = received_at - interval '{age}' where delivery_id in (select delivery_id from events)
                """);
        }
        (await app.ScalarAsync<long>($"select count(*) from github_event_payloads_p{DateTime.UtcNow.AddDays(-20):yyyyMMdd}")).Should().Be(1);

        await using var worker = ServiceHost<worker::Program>.Create(app.DatabaseConnectionString, infra.Redis.ConnectionString,
            new() { ["Retention:Enabled"] = "false" });
        var report = await worker.Services.GetRequiredService<RetentionJob>().RunOnceAsync(CancellationToken.None);

        (await app.ScalarAsync<long[]>("select array_agg(id) from github_event_payloads")).Should().Equal(ids[2]);
        (await app.ScalarAsync<long>("select count(*) from github_events")).Should().Be(2, "the recent delivery's two followers keep it");
        (await app.ScalarAsync<string>($"select to_regclass('github_event_payloads_p{DateTime.UtcNow.AddDays(-20):yyyyMMdd}')::text"))
            .Should().BeNull("the day past the window is dropped with its events");
        report.PartitionsDropped.Should().Contain($"github_events_p{DateTime.UtcNow.AddDays(-20):yyyyMMdd}");
        (await app.ScalarAsync<string>($"select to_regclass('github_event_payloads_p{DateTime.UtcNow.AddDays(7):yyyyMMdd}')::text"))
            .Should().NotBeNull("the coming week has partitions for payloads too");
        (await EventDetailAsync(world, alice)).Should().Contain("\"payload\"");
    }

    [Fact]
    public async Task Events_stored_before_migration_0009_keep_their_payloads_after_it()
    {
        // A database as the version before left it: the versioned scripts up to 0008, journaled as DbUp does.
        var db = await infra.Postgres.CreateDatabaseAsync();
        var assembly = typeof(CoTeX.Shared.Data.DatabaseMigrator).Assembly;
        const string folder = ".Data.Migrations.";
        var scripts = assembly.GetManifestResourceNames().Where(n => n.Contains(folder, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
        var before = scripts.Where(n => string.CompareOrdinal(n[(n.IndexOf(folder, StringComparison.Ordinal) + folder.Length)..], "0009") < 0).ToList();
        var (alice, bob) = (Guid.NewGuid(), Guid.NewGuid());
        var push = GitHubAppWorld.Push(GitHubAppWorld.Api, "acme/api");
        await using (var dataSource = Npgsql.NpgsqlDataSource.Create(db))
        {
            await dataSource.ScalarAsync<object?>(
                "create table schemaversions (schemaversionsid serial primary key, scriptname varchar(255) not null, applied timestamp not null)");
            foreach (var name in before)
            {
                using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
                await dataSource.ScalarAsync<object?>(await reader.ReadToEndAsync());
                await dataSource.ScalarAsync<object?>($"insert into schemaversions (scriptname, applied) values ('{name}', now())");
            }
            // One app delivery to two followers, stored as 0008's ingest stored it: a copy of the payload in each row.
            var hex = Convert.ToHexStringLower(push);
            await dataSource.ScalarAsync<object?>(
                $"""
                insert into users (id, last_event_seq) values ('{alice}', 1), ('{bob}', 1);
                insert into tracked_repos (id, user_id, full_name, source, github_repo_id)
                values (gen_random_uuid(), '{alice}', 'acme/api', 'app', 100), (gen_random_uuid(), '{bob}', 'acme/api', 'app', 100);
                insert into github_events (repo_id, user_id, seq, delivery_id, event_type, body)
                select id, user_id, 1, 'old-delivery', 'push', '\x{hex}'::bytea from tracked_repos;
                """);
        }

        (await TestInfrastructure.MigrateAsync(db)).Should().Equal(scripts.Except(before));

        await using var app = await ApiApp.StartAsync(infra, databaseConnectionString: db);
        foreach (var user in new[] { alice, bob })
        {
            var id = await app.ScalarAsync<long>($"select id from github_events where user_id = '{user}'");
            var detail = await app.ClientFor(user).GetStringAsync($"/api/github-events/event?id={id}");
            detail.Should().Contain(Encoding.UTF8.GetString(push), "an event stored before 0009 keeps its own copy and is read from it");
        }
        (await app.ScalarAsync<long>("select count(*) from github_event_payloads")).Should().Be(0, "nothing is rewritten");
    }

    /// <summary>GET /api/github-events/event for the user's newest (or oldest) event: the JSON.</summary>
    private static async Task<string> EventDetailAsync(GitHubAppWorld world, Guid userId, bool oldest = false)
    {
        var id = await world.ApiApp.ScalarAsync<long>(
            $"select id from github_events where user_id = '{userId}' order by id {(oldest ? "asc" : "desc")} limit 1");
        var response = await world.ApiApp.ClientFor(userId).GetAsync($"/api/github-events/event?id={id}");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return await response.Content.ReadAsStringAsync();
    }
}
