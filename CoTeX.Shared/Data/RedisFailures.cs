using StackExchange.Redis;

namespace CoTeX.Shared.Data;

public static class RedisFailures
{
    /// <summary>
    /// Redis is away or too slow: a <see cref="RedisException"/> (e.g. no connection) or a timeout, which
    /// StackExchange.Redis throws as <see cref="RedisTimeoutException"/>, a <see cref="TimeoutException"/> and not a
    /// <see cref="RedisException"/>. Catching only the latter once let a slow Redis stop a Realtime replica.
    /// </summary>
    public static bool IsOutage(Exception exception) => exception is RedisException or TimeoutException;
}
