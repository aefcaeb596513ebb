using System.Net.Http.Headers;
using System.Net.Http.Json;
using CoTeX.Contracts;
using CoTeX.DevTools;

namespace CoTeX.Tests.Infrastructure;

/// <summary>The Api calls every test project makes, against any Api (in-process, a process, the AppHost's).</summary>
public static class ApiRequests
{
    public static async Task<CreatedRepo> TrackRepoAsync(HttpClient user, string fullName = "Codertocat/Hello-World")
    {
        var response = await user.PostAsJsonAsync("/api/repos", new { fullName });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<CreatedRepo>())!;
    }

    /// <summary>Delivers <paramref name="body"/> the way GitHub does, signed with <paramref name="secret"/> (a webhook repo's).</summary>
    public static Task<HttpResponseMessage> DeliverAsync(HttpClient client, Guid repoId, string? secret, string eventType,
        byte[] body, string? deliveryId = null, Action<HttpRequestMessage>? tamper = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repoId}")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        request.Headers.Add("X-GitHub-Event", eventType);
        request.Headers.Add("X-GitHub-Delivery", deliveryId ?? Guid.NewGuid().ToString());
        request.Headers.Add(WebhookSigning.Sha256Header, WebhookSigning.Sign(
            secret ?? throw new ArgumentNullException(nameof(secret), "An app repo has no webhook secret."), body));
        request.Headers.UserAgent.ParseAdd("GitHub-Hookshot/test");
        tamper?.Invoke(request);
        return client.SendAsync(request);
    }
}
