using System.Text;
using CoTeX.Contracts;
using static CoTeX.Tests.Hostile.HostileRequests;

namespace CoTeX.Tests.Hostile;

/// <summary>Malformed JSON bodies (hostile strings, wrong types, truncation, invalid UTF-8, deep nesting, wrong content types) for the repos endpoints.</summary>
internal static class JsonBodyCases
{
    public static IEnumerable<HostileCase> For(Random random, HttpClient owner, CreatedRepo repo)
    {
        var bodies = JsonBodyCases.BadBodies(random).ToList();
        foreach (var (name, body, contentType) in bodies)
        {
            yield return new("json bodies", $"POST /api/repos {name}", () => new HttpRequestMessage(HttpMethod.Post, "/api/repos")
            {
                Content = Content(body, contentType),
            }, owner);
            yield return new("json bodies", $"PATCH /api/repos/id {name}", () => new HttpRequestMessage(HttpMethod.Patch, $"/api/repos/{repo.Id}")
            {
                Content = Content(body, contentType),
            }, owner);
        }
    }

    /// <summary>The bad bodies themselves; the webhook receivers get them too, correctly signed.</summary>
    public static IEnumerable<(string Name, byte[] Body, string ContentType)> BadBodies(Random random)
    {
        string[] hostile =
        [
            "'; drop table tracked_repos; --", "\" or 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "%00",
            "owner/repo\u0000", "🙂/🙂", new string('a', 5000) + "/x", "owner /repo", "", " ", "owner/repo/extra",
        ];
        foreach (var value in hostile)
        {
            var json = System.Text.Json.JsonSerializer.Serialize(new { fullName = value, paused = value });
            yield return ($"hostile string {Truncate(value, 20)}", Encoding.UTF8.GetBytes(json), "application/json");
        }
        string[] wrongTypes =
        [
            """{"fullName":123,"paused":"yes"}""", """{"fullName":["a/b"],"paused":[true]}""", """{"fullName":{"x":1},"paused":{}}""",
            """{"fullName":true,"paused":1}""", """{"fullName":null,"paused":null}""", "null", "[]", "42", "\"a/b\"", "true",
            """{"unknown":"field","other":[1,2,3]}""", "{}", """{"fullName":"a/b","fullName":5,"paused":"no"}""",
        ];
        foreach (var json in wrongTypes)
        {
            yield return ($"wrong types {json}", Encoding.UTF8.GetBytes(json), "application/json");
        }
        var valid = """{"fullName":"octocat/new-repo","paused":false}""";
        for (var i = 0; i < 8; i++)
        {
            var cut = random.Next(1, valid.Length - 1);
            yield return ($"truncated at {cut}", Encoding.UTF8.GetBytes(valid[..cut]), "application/json");
        }
        for (var i = 0; i < 6; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(valid);
            bytes[random.Next(2, bytes.Length - 2)] = (byte)random.Next(0x80, 0xFF);
            yield return ($"invalid utf-8 #{i}", bytes, "application/json");
        }
        yield return ("nested 10000 deep", Encoding.UTF8.GetBytes(new string('[', 10000) + new string(']', 10000)), "application/json");
        yield return ("nested objects 2000 deep", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 2000)) + "1" + new string('}', 2000)), "application/json");
        yield return ("2 MB of whitespace", Encoding.UTF8.GetBytes(new string(' ', 2_000_000)), "application/json");
        yield return ("empty body", [], "application/json");
        foreach (var type in new[] { "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "garbage" })
        {
            yield return ($"content type {type}", Encoding.UTF8.GetBytes(valid.Replace("false", "\"x\"", StringComparison.Ordinal)), type);
        }
    }
}
