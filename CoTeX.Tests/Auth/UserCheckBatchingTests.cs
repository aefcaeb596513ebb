using System.Diagnostics.Metrics;
using System.Security.Claims;
using CoTeX.Shared.Auth;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CoTeX.Tests.Auth;

/// <summary>
/// The token check's database work is batched (<see cref="UserProvisioner"/>): concurrent checks share one read and
/// one write on one connection, with the same answers one check at a time gave. The provisioner runs on a data source
/// of its own, whose statements are counted through Npgsql's meter and whose sessions Postgres lists. To put checks in
/// one batch for certain, a test holds a row lock that the batch before them waits on.
/// </summary>
public sealed class UserCheckBatchingTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Two_hundred_concurrent_checks_of_new_users_create_every_row_in_a_few_round_trips_on_one_connection()
    {
        await using var checks = await Checks.StartAsync(infra);
        (await checks.EnsureAsync(Guid.NewGuid())).Should().BeTrue("a warm-up: the data source's first connection");
        var before = checks.Operations;
        var users = Enumerable.Range(0, 200).Select(_ => Guid.NewGuid()).ToList();

        var answers = await Task.WhenAll(users.Select(u => checks.EnsureAsync(u)));

        answers.Should().AllSatisfy(a => a.Should().BeTrue());
        (checks.Operations - before).Should().BeInRange(2, 10, "one read and one write per batch, not two statements per check (400)");
        (await checks.SessionsAsync()).Should().Be(1, "all checks go through one pooled connection at a time");
        (await checks.ScalarAsync<long>($"select count(*) from users where id = any('{{{string.Join(',', users)}}}'::uuid[])"))
            .Should().Be(200);
    }

    [Fact]
    public async Task In_one_batch_a_tombstone_is_refused_and_stays_deleted_while_new_returning_and_changed_users_pass()
    {
        await using var checks = await Checks.StartAsync(infra);
        var (tombstone, returning, changed, anonymousUser, twice) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        await checks.ExecuteAsync($"""
            insert into users (id, email, deleted_at) values ('{tombstone}', 'gone@example.test', now());
            insert into users (id, email) values ('{returning}', 'back@example.test'), ('{changed}', 'old@example.test');
            """);
        var returningRow = await checks.ScalarAsync<string>($"select xmin::text from users where id = '{returning}'");

        var (blocker, answers) = await checks.InOneBatchAsync(
            () => checks.EnsureAsync(tombstone, "gone@example.test"),
            () => checks.EnsureAsync(returning, "back@example.test"),
            () => checks.EnsureAsync(returning, "back@example.test"),
            () => checks.EnsureAsync(changed, "new@example.test"),
            () => checks.EnsureAsync(anonymousUser, anonymous: true),
            () => checks.EnsureAsync(twice),
            () => checks.EnsureAsync(twice));

        blocker.Should().BeTrue();
        answers.Should().Equal(false, true, true, true, true, true, true);
        checks.Operations.Should().Be(4, "the blocker's batch and this one: a read and a write each");
        (await checks.ScalarAsync<bool>($"select deleted_at is not null and email = 'gone@example.test' from users where id = '{tombstone}'"))
            .Should().BeTrue("a tombstone is never resurrected nor updated");
        (await checks.ScalarAsync<string>($"select xmin::text from users where id = '{returning}'"))
            .Should().Be(returningRow, "a returning user seen within the hour is read, not written");
        (await checks.ScalarAsync<string>($"select email from users where id = '{changed}'")).Should().Be("new@example.test");
        (await checks.ScalarAsync<bool>($"select is_anonymous and email is null from users where id = '{anonymousUser}'")).Should().BeTrue();
        (await checks.ScalarAsync<long>($"select count(*) from users where id = '{twice}'")).Should().Be(1);
    }

    [Fact]
    public async Task A_check_whose_caller_gives_up_stops_waiting_and_the_rest_of_its_batch_is_served()
    {
        await using var checks = await Checks.StartAsync(infra);
        var (first, second, kept) = (await checks.SeedStaleUserAsync(), await checks.SeedStaleUserAsync(), Guid.NewGuid());
        using var giveUp = new CancellationTokenSource();
        var secondLock = await checks.LockRowAsync(second);
        Task<bool> firstCheck, abandoned, keptCheck;
        await using (await checks.LockRowAsync(first))
        {
            firstCheck = checks.EnsureAsync(first);
            await checks.WaitForABlockedBatchAsync();
            (abandoned, keptCheck) = (checks.EnsureAsync(second, cancellationToken: giveUp.Token), checks.EnsureAsync(kept));
        }
        (await firstCheck).Should().BeTrue();
        await checks.WaitForABlockedBatchAsync(); // the batch of the other two waits on the second row's lock

        await giveUp.CancelAsync();

        await FluentActions.Awaiting(() => abandoned).Should().ThrowAsync<OperationCanceledException>("its caller stops waiting at once");
        keptCheck.IsCompleted.Should().BeFalse("the batch still waits on the lock");
        await secondLock.DisposeAsync();
        (await keptCheck).Should().BeTrue();
        (await checks.ScalarAsync<long>($"select count(*) from users where id = '{kept}'")).Should().Be(1);
    }

    [Fact]
    public async Task A_database_error_fails_the_checks_of_its_batch_and_the_next_batch_is_served()
    {
        await using var checks = await Checks.StartAsync(infra);
        var (first, second, alongside, afterwards) =
            (await checks.SeedStaleUserAsync(), await checks.SeedStaleUserAsync(), Guid.NewGuid(), Guid.NewGuid());
        await using var secondLock = await checks.LockRowAsync(second);
        Task<bool> firstCheck;
        Task<bool>[] failing;
        await using (await checks.LockRowAsync(first))
        {
            firstCheck = checks.EnsureAsync(first);
            await checks.WaitForABlockedBatchAsync();
            failing = [checks.EnsureAsync(second), checks.EnsureAsync(alongside)];
        }
        (await firstCheck).Should().BeTrue();
        await checks.WaitForABlockedBatchAsync(); // the batch of the other two waits on the second row's lock

        await checks.ExecuteAsync($"select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{checks.Name}'");

        foreach (var check in failing)
        {
            await FluentActions.Awaiting(() => check).Should().ThrowAsync<NpgsqlException>("its batch's connection was broken");
        }
        (await checks.EnsureAsync(afterwards)).Should().BeTrue("the loop serves the next batch, on a new connection");
        (await checks.ScalarAsync<long>($"select count(*) from users where id = '{alongside}'")).Should().Be(0);
    }

    [Fact]
    public async Task A_check_that_began_before_ForgetAll_is_not_remembered()
    {
        await using var checks = await Checks.StartAsync(infra);
        var (blocker, user) = (await checks.SeedStaleUserAsync(), Guid.NewGuid());
        Task<bool> check;
        await using (await checks.LockRowAsync(blocker))
        {
            _ = checks.EnsureAsync(blocker);
            await checks.WaitForABlockedBatchAsync();
            check = checks.EnsureAsync(user);
            checks.Provisioner.ForgetAll(); // after the check read the generation, before its batch ran
        }
        (await check).Should().BeTrue();

        var before = checks.Operations;
        (await checks.EnsureAsync(user)).Should().BeTrue();
        (checks.Operations - before).Should().Be(1, "the user is read again (the row is current: nothing to write)");
        (await checks.EnsureAsync(user)).Should().BeTrue();
        (checks.Operations - before).Should().Be(1, "now the user is remembered");
    }

    /// <summary>A <see cref="UserProvisioner"/> on a fresh database and a data source of its own.</summary>
    private sealed class Checks : IAsyncDisposable
    {
        private readonly string _database;
        private readonly NpgsqlDataSource _dataSource;
        private readonly MemoryCache _cache = new(new MemoryCacheOptions());
        private readonly MeterListener _meter = new();
        private int _operations;

        private Checks(string database, string name)
        {
            (_database, Name) = (database, name);
            var builder = new NpgsqlDataSourceBuilder(database) { Name = name };
            builder.ConnectionStringBuilder.ApplicationName = name;
            _dataSource = builder.Build();
            Provisioner = new UserProvisioner(_dataSource, _cache, NullLogger<UserProvisioner>.Instance);

            // Every statement Npgsql runs records its duration, tagged with the data source's name.
            _meter.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument is { Name: "db.client.operation.duration", Meter.Name: "Npgsql" })
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _meter.SetMeasurementEventCallback<double>((_, _, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag is { Key: "db.client.connection.pool.name", Value: string pool } && pool == name)
                    {
                        Interlocked.Increment(ref _operations);
                    }
                }
            });
            _meter.Start();
        }

        public static async Task<Checks> StartAsync(TestInfrastructure infra) =>
            new(await infra.CreateMigratedDatabaseAsync(), $"user-checks-{Guid.NewGuid():N}");

        /// <summary>The data source's name and its sessions' application_name.</summary>
        public string Name { get; }
        public UserProvisioner Provisioner { get; }
        public int Operations => Volatile.Read(ref _operations);

        /// <summary>A check of a token for the user, with an email claim when one is given.</summary>
        public Task<bool> EnsureAsync(Guid userId, string? email = null, bool anonymous = false,
            CancellationToken cancellationToken = default)
        {
            List<Claim> claims = [new(CurrentUser.SubjectClaim, userId.ToString())];
            if (email is not null)
            {
                claims.Add(new(CurrentUser.EmailClaim, email));
            }
            claims.Add(new(CurrentUser.AnonymousClaim, anonymous ? "true" : "false"));
            return Provisioner.EnsureUserAsync(new ClaimsPrincipal(new ClaimsIdentity(claims, "test")), cancellationToken);
        }

        /// <summary>
        /// Blocks the loop on a batch of one (its write waits on a row lock this holds), starts every check while it
        /// waits, so they all queue for the next batch, then lets go. Returns the blocker's answer and theirs.
        /// </summary>
        public async Task<(bool Blocker, bool[] Answers)> InOneBatchAsync(params Func<Task<bool>>[] starts)
        {
            var blocker = await SeedStaleUserAsync();
            Task<bool> blocked;
            var started = new List<Task<bool>>();
            await using (await LockRowAsync(blocker))
            {
                blocked = EnsureAsync(blocker);
                await WaitForABlockedBatchAsync();
                foreach (var start in starts)
                {
                    started.Add(start());
                }
            }
            return (await blocked, await Task.WhenAll(started));
        }

        /// <summary>A user whose last-seen time is two hours old: their check writes.</summary>
        public async Task<Guid> SeedStaleUserAsync()
        {
            var userId = Guid.NewGuid();
            await ExecuteAsync($"insert into users (id, email, last_seen_at) values ('{userId}', '{userId:N}@example.test', now() - interval '2 hours')");
            return userId;
        }

        /// <summary>Holds the row's lock (in a transaction of another session) until disposed.</summary>
        public async Task<IAsyncDisposable> LockRowAsync(Guid userId)
        {
            var connection = new NpgsqlConnection(_database);
            await connection.OpenAsync();
            var transaction = await connection.BeginTransactionAsync();
            await using var command = new NpgsqlCommand($"select 1 from users where id = '{userId}' for update", connection, transaction);
            await command.ExecuteScalarAsync();
            return connection; // closing it rolls back
        }

        public Task WaitForABlockedBatchAsync() => Eventually.SucceedsAsync(async () =>
            (await ScalarAsync<long>($"select count(*) from pg_stat_activity where application_name = '{Name}' and wait_event_type = 'Lock'"))
                .Should().Be(1));

        /// <summary>Sessions the provisioner's data source holds on the server.</summary>
        public Task<long> SessionsAsync() =>
            ScalarAsync<long>($"select count(*) from pg_stat_activity where application_name = '{Name}'");

        public async Task<T> ScalarAsync<T>(string sql)
        {
            await using var connection = new NpgsqlConnection(_database);
            await connection.OpenAsync();
            return await connection.ScalarAsync<T>(sql);
        }

        public async Task ExecuteAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(_database);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }

        public async ValueTask DisposeAsync()
        {
            Provisioner.Dispose();
            _meter.Dispose();
            await _dataSource.DisposeAsync();
            _cache.Dispose();
        }
    }
}
