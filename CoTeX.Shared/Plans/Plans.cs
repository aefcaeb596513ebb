using System.ComponentModel.DataAnnotations;
using Dapper;
using Npgsql;

namespace CoTeX.Shared.Plans;

public enum Plan
{
    Free,
    Pro,
}

/// <summary>What each plan allows. Bound from <c>Plans</c>.</summary>
public sealed class PlanOptions
{
    public const string Section = "Plans";

    /// <summary>How many active (not paused) repos a Free user may track.</summary>
    [Range(0, 100_000)]
    public int FreeRepoLimit { get; set; } = 3;

    /// <summary>How many active (not paused) repos a Pro user may track.</summary>
    [Range(0, 100_000)]
    public int ProRepoLimit { get; set; } = 50;

    public int RepoLimit(Plan plan) => plan == Plan.Pro ? ProRepoLimit : FreeRepoLimit;
}

/// <summary>A user's plan as the database has it: Pro needs a Pro subscription and a non-anonymous account.</summary>
public static class PlanQueries
{
    /// <summary>SQL expression for the plan of <c>users u</c> left-joined with <c>subscriptions s</c>.</summary>
    public const string PlanExpression = "case when s.plan = 'pro' and not u.is_anonymous then 'pro' else 'free' end";

    /// <summary>
    /// Locks the user's row for the rest of the transaction: every writer that changes a user's repos, plan or
    /// events takes it first, so plan limits hold under concurrency and lock order is always user-then-repos.
    /// Returns false when the user does not exist or the account is closed, and then the caller writes nothing: a
    /// request authenticated just before <c>DELETE /api/me</c> committed waits here for the closing transaction and
    /// must not add a repo (or a plan) to the tombstone it finds when the lock is granted.
    /// </summary>
    public static async Task<bool> LockUserAsync(this NpgsqlConnection connection, Guid userId, NpgsqlTransaction transaction,
        CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<bool?>(new CommandDefinition(
            "select deleted_at is null from users where id = @userId for update", new { userId }, transaction,
            cancellationToken: cancellationToken)) == true;

    /// <summary>Whether the user's account has been closed (<c>DELETE /api/me</c>); false for an unknown user.</summary>
    public static async Task<bool> IsClosedAsync(this NpgsqlConnection connection, Guid userId, NpgsqlTransaction? transaction,
        CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<bool?>(new CommandDefinition(
            "select deleted_at is not null from users where id = @userId", new { userId }, transaction,
            cancellationToken: cancellationToken)) == true;

    public static async Task<Plan> GetPlanAsync(this NpgsqlConnection connection, Guid userId,
        NpgsqlTransaction? transaction = null, CancellationToken cancellationToken = default)
    {
        var plan = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            $"select {PlanExpression} from users u left join subscriptions s on s.user_id = u.id where u.id = @userId",
            new { userId }, transaction, cancellationToken: cancellationToken));
        return plan == "pro" ? Plan.Pro : Plan.Free;
    }
}
