using System.Security.Cryptography;
using CoTeX.Api.Repos;
using CoTeX.ServiceDefaults;
using Microsoft.Extensions.Caching.Memory;
using Npgsql;

namespace CoTeX.Api.GitHubWebhooks;

/// <summary>A tracked repo as the receiver needs it: owner, name and the decrypted HMAC key.</summary>
public sealed record WebhookRepo(Guid Id, Guid UserId, string FullName, byte[] Key, DateTimeOffset LoadedAt);

/// <summary>
/// Keeps decrypted webhook keys in memory, so a delivery costs no key lookup and no decryption. Entries expire after
/// a few minutes; a rotation on this replica evicts at once, and a signature that fails against a cached key is
/// checked once more against the database (a rotation on another replica), at most once a second per repo.
/// <para>
/// An id with no webhook repo is remembered as unknown for <see cref="UnknownLifetime"/>, in a cache of its own capped
/// at <see cref="MaxUnknown"/> ids: a stranger repeating deliveries to a made-up URL costs a dictionary lookup, not a
/// database query each, and made-up ids cannot grow the Api's memory. Ids are random GUIDs the server hands out, so
/// no real repo appears under an id someone probed a moment earlier; deleting a repo evicts it here as before.
/// </para>
/// </summary>
public sealed class WebhookRepoCache(NpgsqlDataSource dataSource, WebhookSecrets secrets, IMemoryCache cache, TimeProvider time,
    ILogger<WebhookRepoCache> logger) : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan MinimumReloadInterval = TimeSpan.FromSeconds(1);
    internal static readonly TimeSpan UnknownLifetime = TimeSpan.FromSeconds(30);
    private const int MaxUnknown = 10_000;

    private readonly MemoryCache _unknown = new(new MemoryCacheOptions { SizeLimit = MaxUnknown });

    /// <summary>
    /// The repo, from memory or from the database (retried until <paramref name="deadline"/> while it is away); null
    /// when there is none, remembered for a while.
    /// </summary>
    public async ValueTask<WebhookRepo?> GetAsync(Guid repoId, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        if (cache.TryGetValue(Key(repoId), out WebhookRepo? repo))
        {
            return repo;
        }
        if (_unknown.TryGetValue(repoId, out _))
        {
            return null;
        }
        return await LoadAsync(repoId, deadline, cancellationToken);
    }

    /// <summary>Loads the repo again if the cached copy may be stale; null when it was loaded just now.</summary>
    public async ValueTask<WebhookRepo?> ReloadAsync(WebhookRepo cached, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        time.GetUtcNow() - cached.LoadedAt < MinimumReloadInterval ? null : await LoadAsync(cached.Id, deadline, cancellationToken);

    public void Evict(Guid repoId)
    {
        cache.Remove(Key(repoId));
        _unknown.Remove(repoId);
    }

    public void Dispose() => _unknown.Dispose();

    private async Task<WebhookRepo?> LoadAsync(Guid repoId, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var row = await DatabaseRetry.RunAsync(async attemptToken =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(attemptToken);
            return await TrackedRepoQueries.WebhookAsync(connection, repoId, attemptToken);
        }, dataSource, deadline, time, logger, cancellationToken);
        if (row is not { } found)
        {
            cache.Remove(Key(repoId));
            // When the cap is reached the entry is simply not added (and the cache compacts): the id is then looked up again.
            _unknown.Set(repoId, true, new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = UnknownLifetime, Size = 1 });
            return null;
        }
        byte[] key;
        try
        {
            key = secrets.UnprotectToKey(found.ProtectedSecret);
        }
        catch (CryptographicException ex)
        {
            // The key ring cannot be decrypted here (another key-encryption key; see /health), not a bad request.
            throw new ServiceUnavailableException("This service cannot read webhook secrets right now; nothing was stored. Retry later.", ex);
        }
        var repo = new WebhookRepo(repoId, found.UserId, found.FullName, key, time.GetUtcNow());
        cache.Set(Key(repoId), repo, new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = Lifetime, Size = 1 });
        return repo;
    }

    private static (string, Guid) Key(Guid repoId) => (nameof(WebhookRepoCache), repoId);
}
