namespace CoTeX.Shared.Data;

/// <summary>Npgsql reads <c>timestamptz</c> as a UTC <see cref="DateTime"/>; the wire contracts use <see cref="DateTimeOffset"/>.</summary>
public static class Timestamps
{
    public static DateTimeOffset AsUtcOffset(this DateTime value) => new(DateTime.SpecifyKind(value, DateTimeKind.Utc));

    public static DateTimeOffset? AsUtcOffset(this DateTime? value) => value?.AsUtcOffset();
}
