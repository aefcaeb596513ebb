extern alias worker;

using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using worker::CoTeX.Worker.Retention;

namespace CoTeX.Tests.Operations;

public sealed class RetentionTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Retention_removes_exactly_what_is_older_than_the_window_dropping_whole_days_where_it_can()
    {
        await using var app = await ApiApp.StartAsync(infra);
        var userId = Guid.NewGuid();
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor(userId));
        await using var connection = new NpgsqlConnection(app.DatabaseConnectionString);
        await connection.OpenAsync();
        await Exec(connection, "select ensure_github_event_partitions(current_date - 25, current_date)");

        // Back-dated events at positions 1..6, oldest first.
        var ages = new[] { "20 days", "15 days", "14 days 1 minute", "13 days 23 hours", "3 days", "1 minute" };
        for (var i = 0; i < ages.Length; i++)
        {
            await Exec(connection,
                $$"""
                insert into github_deliveries (repo_id, delivery_id, received_at) values ('{{repo.Id}}', 'd{{i}}', now() - interval '{{ages[i]}}');
                insert into github_events (repo_id, user_id, seq, delivery_id, event_type, payload, received_at)
                values ('{{repo.Id}}', '{{userId}}', {{i + 1}}, 'd{{i}}', 'push', '{}', now() - interval '{{ages[i]}}');
                """);
        }
        await Exec(connection, $"update users set last_event_seq = {ages.Length} where id = '{userId}'");
        await Exec(connection,
            """
            insert into stripe_events (id, type, payload, received_at, processed_at) values
              ('evt_old_done', 'invoice.paid', '{}', now() - interval '20 days', now() - interval '20 days'),
              ('evt_old_failed', 'invoice.paid', '{}', now() - interval '20 days', null),
              ('evt_new_done', 'invoice.paid', '{}', now() - interval '1 day', now() - interval '1 day');
            """);
        var oldestPartition = $"github_events_p{DateTime.UtcNow.AddDays(-20):yyyyMMdd}";

        await using var worker = ServiceHost<worker::Program>.Create(app.DatabaseConnectionString, infra.Redis.ConnectionString,
            new() { ["Retention:Enabled"] = "false" });
        var report = await worker.Services.GetRequiredService<RetentionJob>().RunOnceAsync(CancellationToken.None);

        (await Query<long>(connection, "select seq from github_events order by seq")).Should().Equal(4, 5, 6);
        (await Query<string>(connection, "select delivery_id from github_deliveries order by delivery_id")).Should().Equal("d3", "d4", "d5");
        (await Query<string>(connection, "select id from stripe_events order by id")).Should().Equal("evt_new_done", "evt_old_failed");
        (await Query<long>(connection, $"select pruned_through_seq from users where id = '{userId}'")).Should().Equal(3);
        report.PartitionsDropped.Should().Contain(oldestPartition);
        (await Query<string>(connection, $"select to_regclass('{oldestPartition}')::text")).Should().Equal([null!]);
        report.EventsDeleted.Should().BeGreaterThan(0, "the day that straddles the cut-off loses its expired rows one by one");

        var again = await worker.Services.GetRequiredService<RetentionJob>().RunOnceAsync(CancellationToken.None);
        again.EventsDeleted.Should().Be(0);
        again.PartitionsDropped.Should().BeEmpty();
    }

    private static async Task Exec(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<List<T>> Query<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<T>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.IsDBNull(0) ? default! : reader.GetFieldValue<T>(0));
        }
        return values;
    }
}
