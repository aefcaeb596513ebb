using System.Diagnostics.Metrics;
using System.Security.Claims;
using CoTeX.Shared.Auth;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CoTeX.Tests.Auth;

/// <summary>
/// The token check's reads are batched (<see cref="UserProvisioner"/>): concurrent checks share one read on one
/// connection, with the same answers one check at a time gave; a check that must write does so on its own. The
/// provisioner runs on a data source of its own, whose statements are counted through Npgsql's meter and whose
/// sessions Postgres lists. To put checks in one batch for certain, a test holds a lock on the users table that the
/// read before them waits on.
/// </summary>
public sealed class UserCheckBatchingTests(TestInfrastructure infra)
{
    [Fact]
    public async Task Two_hundred_concurrent_checks_of_returning_users_are_a_few_reads_on_one_connection()
    {
        await using var checks = await Checks.StartAsync(infra);
        var users = Enumerable.Range(0, 200).Select(_ => Guid.NewGuid()).ToList();
        var warmUp = Guid.NewGuid();
        await checks.ExecuteAsync($"insert into users (id) select unnest('{{{string.Join(',', users.Append(warmUp))}}}'::uuid[])");
        (await checks.EnsureAsync(warmUp)).Should().BeTrue("a warm-up: the data source's first connection");
        var before = checks.Operations;

        var answers = await Task.WhenAll(users.Select(u => checks.EnsureAsync(u)));

        answers.Should().AllSatisfy(a => a.Should().BeTrue());
        (checks.Operations - before).Should().BeInRange(1, 10, "one read per batch, not one per check (200)");
        (await checks.SessionsAsync()).Should().Be(1, "the reads go through one pooled connection at a time");
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

        var answers = await checks.InOneBatchAsync(
            () => checks.EnsureAsync(tombstone, "gone@example.test"),
            () => checks.EnsureAsync(returning, "back@example.test"),
            () => checks.EnsureAsync(returning, "back@example.test"),
            () => checks.EnsureAsync(changed, "new@example.test"),
            () => checks.EnsureAsync(anonymousUser, anonymous: true),
            () => checks.EnsureAsync(twice),
            () => checks.EnsureAsync(twice));

        answers.Should().Equal(false, true, true, true, true, true, true);
        (await checks.ScalarAsync<bool>($"select deleted_at is not null and email = 'gone@example.test' from users where id = '{tombstone}'"))
            .Should().BeTrue("a tombstone is never resurrected nor updated");
        (await checks.ScalarAsync<string>($"select xmin::text from users where id = '{returning}'"))
            .Should().Be(returningRow, "a returning user seen within the hour is read, not written");
        (await checks.ScalarAsync<string>($"select email from users where id = '{changed}'")).Should().Be("new@example.test");
        (await checks.ScalarAsync<bool>($"select is_anonymous and email is null from users where id = '{anonymousUser}'")).Should().BeTrue();
        (await checks.ScalarAsync<long>($"select count(*) from users where id = '{twice}'")).Should().Be(1);
    }

    [Fact]
    public async Task A_check_that_writes_waits_on_its_users_row_lock_alone_and_other_checks_go_on()
    {
        await using var checks = await Checks.StartAsync(infra);
        var (locked, other) = (await checks.SeedStaleUserAsync(), await checks.SeedStaleUserAsync());
        Task<bool> waiting;
        await using (await checks.LockRowAsync(locked)) // as billing holds it while it calls Stripe
        {
            waiting = checks.EnsureAsync(locked);
            await checks.WaitForABlockedSessionAsync();

            (await checks.EnsureAsync(other)).Should().BeTrue("another user's check is not held up by that write");
            (await checks.EnsureAsync(Guid.NewGuid())).Should().BeTrue();
            waiting.IsCompleted.Should().BeFalse();
        }
        (await waiting).Should().BeTrue();
    }

    [Fact]
    public async Task A_check_whose_caller_gives_up_stops_waiting_and_the_rest_of_its_batch_is_served()
    {
        await using var checks = await Checks.StartAsync(infra);
        using var giveUp = new CancellationTokenSource();
        Task<bool> first, abandoned, kept;
        await using (await checks.LockUsersAsync())
        {
            first = checks.EnsureAsync(Guid.NewGuid());
            await checks.WaitForABlockedSessionAsync();
            (abandoned, kept) = (checks.EnsureAsync(Guid.NewGuid(), cancellationToken: giveUp.Token), checks.EnsureAsync(Guid.NewGuid()));

            await giveUp.CancelAsync();

            await FluentActions.Awaiting(() => abandoned).Should().ThrowAsync<OperationCanceledException>("its caller stops waiting at once");
            kept.IsCompleted.Should().BeFalse("the read still waits on the lock");
        }
        (await first).Should().BeTrue();
        (await kept).Should().BeTrue();
    }

    [Fact]
    public async Task A_database_error_fails_the_checks_of_its_batch_and_the_next_batch_is_served()
    {
        await using var checks = await Checks.StartAsync(infra);
        Task<bool> failing, next;
        await using (await checks.LockUsersAsync())
        {
            failing = checks.EnsureAsync(Guid.NewGuid());
            await checks.WaitForABlockedSessionAsync();
            next = checks.EnsureAsync(Guid.NewGuid());

            await checks.ExecuteAsync($"select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{checks.Name}'");

            await FluentActions.Awaiting(() => failing).Should().ThrowAsync<NpgsqlException>("its batch's connection was broken");
        }
        (await next).Should().BeTrue("the loop serves the next batch, on a new connection");
    }

    [Fact]
    public async Task A_check_that_began_before_ForgetAll_is_not_remembered()
    {
        await using var checks = await Checks.StartAsync(infra);
        var user = Guid.NewGuid();
        Task<bool> check;
        await using (await checks.LockUsersAsync())
        {
            check = checks.EnsureAsync(user);
            await checks.WaitForABlockedSessionAsync();
            checks.Provisioner.ForgetAll(); // after the check read the generation, before its batch ran
        }
        (await check).Should().BeTrue();

        var before = checks.Operations;
        (await checks.EnsureAsync(user)).Should().BeTrue();
        (checks.Operations - before).Should().Be(1, "the user is read again (the row is current: nothing to write)");
        (await checks.EnsureAsync(user)).Should().BeTrue();
        (checks.Operations - before).Should().Be(1, "now the user is remembered");
    }

    [Fact]
    public async Task A_check_under_way_when_its_account_is_closed_is_not_remembered()
    {
        await using var checks = await Checks.StartAsync(infra);
        var user = Guid.NewGuid();
        await checks.ExecuteAsync($"insert into users (id) values ('{user}')");
        Task<bool> check;
        await using (await checks.LockUsersAsync())
        {
            check = checks.EnsureAsync(user);
            await checks.WaitForABlockedSessionAsync();
            checks.Provisioner.Forget(user); // the closing's announcement, before the check's read
        }
        (await check).Should().BeTrue("its read saw the account before it was closed");
        await checks.ExecuteAsync($"update users set deleted_at = now() where id = '{user}'");

        (await checks.EnsureAsync(user)).Should().BeFalse("the closed account's next token is checked against the tombstone");
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
        /// Blocks the loop on a read of one (waiting on a table lock this holds), starts every check while it waits, so
        /// they all queue for the next read, then lets go. Returns their answers.
        /// </summary>
        public async Task<bool[]> InOneBatchAsync(params Func<Task<bool>>[] starts)
        {
            Task<bool> blocked;
            var started = new List<Task<bool>>();
            await using (await LockUsersAsync())
            {
                blocked = EnsureAsync(Guid.NewGuid());
                await WaitForABlockedSessionAsync();
                foreach (var start in starts)
                {
                    started.Add(start());
                }
            }
            (await blocked).Should().BeTrue();
            return await Task.WhenAll(started);
        }

        /// <summary>A user whose last-seen time is two hours old: their check writes.</summary>
        public async Task<Guid> SeedStaleUserAsync()
        {
            var userId = Guid.NewGuid();
            await ExecuteAsync($"insert into users (id, email, last_seen_at) values ('{userId}', '{userId:N}@example.test', now() - interval '2 hours')");
            return userId;
        }

        /// <summary>Holds the row's lock (in a transaction of another session) until disposed.</summary>
        public Task<IAsyncDisposable> LockRowAsync(Guid userId) => HoldAsync($"select 1 from users where id = '{userId}' for update");

        /// <summary>Holds a lock on the users table that even reads wait on, until disposed.</summary>
        public Task<IAsyncDisposable> LockUsersAsync() => HoldAsync("lock table users in access exclusive mode");

        private async Task<IAsyncDisposable> HoldAsync(string sql)
        {
            var connection = new NpgsqlConnection(_database);
            await connection.OpenAsync();
            var transaction = await connection.BeginTransactionAsync();
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync();
            return connection; // closing it rolls back
        }

        /// <summary>Waits until one of the provisioner's sessions waits on a lock.</summary>
        public Task WaitForABlockedSessionAsync() => Eventually.SucceedsAsync(async () =>
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
