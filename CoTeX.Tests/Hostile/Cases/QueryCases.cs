using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>Garbage in query strings: limits, cursors, ids and filters that are not what the events API takes.</summary>
internal static class QueryCases
{
    public static IEnumerable<HostileCase> For(Random random, HttpClient owner)
    {
        string[] garbage =
        [
            "-1", "0", "abc", "1e5", "99999999999999999999999", "1;drop table users", "%27%20or%201%3D1", "%00", "NaN",
            "<script>", "１２", "0x10", " ", "1.5",
        ];
        foreach (var value in garbage)
        {
            yield return new("query garbage", $"limit={value}", () => Get($"/api/github-events?limit={value}"), owner);
            yield return new("query garbage", $"cursor={value}", () => Get($"/api/github-events?cursor={value}&limit=abc"), owner);
            yield return new("query garbage", $"repoId={value}", () => Get($"/api/github-events?repoId={value}"), owner);
            yield return new("query garbage", $"recent since={value}", () => Get($"/api/github-events/recent?since={value}&limit=0"), owner);
            yield return new("query garbage", $"event id={value}", () => Get($"/api/github-events/event?id={value}"), owner);
        }
        yield return new("query garbage", "limit twice", () => Get("/api/github-events?limit=1&limit=2"), owner);
        yield return new("query garbage", "type too long", () => Get($"/api/github-events?type={new string('x', 500)}"), owner);
        for (var i = 0; i < 10; i++)
        {
            var limit = random.Next(101, int.MaxValue);
            yield return new("query garbage", $"limit {limit}", () => Get($"/api/github-events?limit={limit}"), owner);
        }
    }
}
