using System.Security.Claims;
using Dapper;
using Microsoft.Extensions.Caching.Memory;
using Npgsql;

namespace CoTeX.Shared.Auth;

/// <summary>
/// Creates the user row the first time a user's token is seen, and keeps email, anonymity and last-seen time current.
/// A process remembers whom it has checked for a few minutes, so a busy user costs one check per few minutes, not one
/// per request; and the check writes only when something changed or the row's last-seen time is over an hour old
/// (<see cref="LastSeenPrecision"/>), so thousands of clients reconnecting at once (a replica lost) cost reads, not
/// committed writes (docs/benchmarks/scale.md, storm).
/// </summary>
public sealed class UserProvisioner(NpgsqlDataSource dataSource, IMemoryCache cache)
{
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(5);

    /// <summary>How stale <c>users.last_seen_at</c> may be (the admin list shows it) before a check writes it again.</summary>
    public static readonly TimeSpan LastSeenPrecision = TimeSpan.FromHours(1);

    /// <summary>What is remembered is only trusted while this has not moved (see <see cref="ForgetAll"/>).</summary>
    private long _generation;

    /// <returns>False when the account was deleted: its tokens must be refused.</returns>
    public async Task<bool> EnsureUserAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var userId = principal.GetUserId();
        var email = principal.FindFirst(CurrentUser.EmailClaim)?.Value;
        var anonymous = principal.IsAnonymous();

        var key = (nameof(UserProvisioner), userId);
        var generation = Interlocked.Read(ref _generation);
        if (cache.TryGetValue(key, out (string? Email, bool Anonymous, long Generation) known)
            && known == (email, anonymous, generation))
        {
            return true;
        }

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(bool Active, bool Current)?>(new CommandDefinition(
            """
            select deleted_at is null,
                   email is not distinct from @email and is_anonymous = @anonymous and last_seen_at > now() - @precision
              from users where id = @userId
            """,
            new { userId, email, anonymous, precision = LastSeenPrecision }, cancellationToken: cancellationToken));
        if (row is { Active: false })
        {
            return false; // a tombstone
        }
        if (row is not { Current: true })
        {
            var active = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                """
                insert into users (id, email, is_anonymous) values (@userId, @email, @anonymous)
                on conflict (id) do update
                    set email = excluded.email, is_anonymous = excluded.is_anonymous, last_seen_at = now()
                    where users.deleted_at is null
                returning true
                """,
                new { userId, email, anonymous }, cancellationToken: cancellationToken));
            if (!active)
            {
                return false; // a tombstone: nothing was updated
            }
        }

        cache.Set(key, (email, anonymous, generation), new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = Remember, Size = 1 });
        return true;
    }

    /// <summary>Forgets a user this process has seen (after their account is closed).</summary>
    public void Forget(Guid userId) => cache.Remove((nameof(UserProvisioner), userId));

    /// <summary>Forgets every user this process has seen: each one's next request is checked against the database.</summary>
    public void ForgetAll() => Interlocked.Increment(ref _generation);
}
