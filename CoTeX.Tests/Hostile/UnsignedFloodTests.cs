extern alias api;

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using api::CoTeX.Api.WebhookIngress;
using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.Hostile;

/// <summary>
/// Strangers who send what the receivers must read before they can check a signature: 25 MB bodies with a made-up
/// signature, from an address outside GitHub's and Stripe's ranges, many at once. The Api holds no more of them than
/// its unverified budget (the rest get 503 + Retry-After without being read), its memory stays bounded, and GitHub,
/// delivering from inside the ranges meanwhile, is still answered 200 well within its 10 s. The sender ranges are set so
/// that 127.0.0.2 plays GitHub and 127.0.0.1 the stranger. A summary is written to unsigned-flood-summary.txt.
/// </summary>
public sealed class UnsignedFloodTests(TestInfrastructure infra)
{
    private const string GitHubAddress = "127.0.0.2";
    private const string StrangerAddress = "127.0.0.1";
    private const int FloodBodyBytes = 25 * 1024 * 1024;

    [Fact]
    public async Task A_flood_of_unsigned_25_MB_bodies_gets_503s_past_the_budget_while_a_genuine_delivery_is_acked_and_stored()
    {
        await using var app = await ApiApp.StartAsync(infra, new()
        {
            ["Webhooks:SenderRanges:0"] = GitHubAddress + "/32",
            ["Webhooks:SenderRanges:1"] = GitHubAddress + "/32",
            // The budget is under test here, not the per-address limit (tested below).
            ["RateLimiting:PerWebhookSender"] = "1000000",
        }, kestrel: true);
        var baseAddress = app.Host.ClientOptions.BaseAddress;
        var options = app.Host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<WebhookIngressOptions>>().Value;
        var budget = app.Host.Services.GetRequiredService<UnverifiedBodyBudget>();
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var push = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        using var gitHub = SourceAddressClient.Create(baseAddress, GitHubAddress, TimeSpan.FromSeconds(30));
        (await ApiRequests.DeliverAsync(gitHub, repo.Id, repo.WebhookSecret, "push", push)).StatusCode.Should().Be(HttpStatusCode.OK,
            "a warm-up delivery: the repo's key is cached and the code paths are compiled before the clock starts");

        var flood = new byte[FloodBodyBytes]; // one array for every forged body: the client's side costs 25 MB once
        Array.Fill(flood, (byte)'a');
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var workingSetBefore = Environment.WorkingSet;
        long peakHeap = heapBefore, peakWorkingSet = workingSetBefore, peakHeld = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20)); // the flood's hard bound in time
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false));
                peakWorkingSet = Math.Max(peakWorkingSet, Environment.WorkingSet);
                peakHeld = Math.Max(peakHeld, budget.Held);
                await Task.Delay(20);
            }
        });

        // 12 senders, at most 120 bodies (3 GB offered), stopped after the genuine deliveries are through.
        var answers = new ConcurrentDictionary<string, int>();
        var retryAfterOn503 = true;
        var sent = 0;
        using var stranger = SourceAddressClient.Create(baseAddress, StrangerAddress, TimeSpan.FromSeconds(30));
        var senders = Enumerable.Range(0, 12).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && Interlocked.Increment(ref sent) <= 120)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/webhooks/github/{repo.Id}")
                {
                    Content = new ByteArrayContent(flood) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
                };
                request.Headers.Add("X-GitHub-Event", "push");
                request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
                request.Headers.Add("X-Hub-Signature-256", "sha256=" + new string('0', 64));
                try
                {
                    using var response = await stranger.SendAsync(request, stop.Token);
                    var status = (int)response.StatusCode;
                    answers.AddOrUpdate(status.ToString(), 1, (_, n) => n + 1);
                    if (status == 503 && response.Headers.RetryAfter is null)
                    {
                        retryAfterOn503 = false;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
                {
                    // A refused upload: the Api answered and closed while the 25 MB were still being sent.
                    answers.AddOrUpdate("connection closed", 1, (_, n) => n + 1);
                }
            }
        })).ToList();

        // GitHub delivers during the flood, from inside its ranges, once the budget is under pressure.
        await Eventually.SucceedsAsync(() =>
        {
            answers.GetValueOrDefault("503").Should().BePositive();
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(15));
        var latencies = new List<TimeSpan>();
        var genuine = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var delivery = $"genuine-{i}";
            var stopwatch = Stopwatch.StartNew();
            var response = await ApiRequests.DeliverAsync(gitHub, repo.Id, repo.WebhookSecret, "push", push, delivery);
            latencies.Add(stopwatch.Elapsed);
            response.StatusCode.Should().Be(HttpStatusCode.OK, $"genuine delivery {i} during the flood: {await response.Content.ReadAsStringAsync()}");
            genuine.Add(delivery);
            await Task.Delay(200); // spread over the flood, as GitHub's deliveries would be
        }
        await stop.CancelAsync();
        await Task.WhenAll(senders);
        await sampler;

        var stored = await app.ScalarAsync<long>($"select count(*) from github_events where delivery_id like 'genuine-%'");
        // A sender cancelled mid-body holds its reservation until the server notices the abort: given back soon after.
        var heldAfter = budget.Held;
        await Eventually.SucceedsAsync(() =>
        {
            heldAfter = budget.Held;
            heldAfter.Should().Be(0, "every reservation is given back");
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(15));
        var summary = new StringBuilder("Unsigned flood (12 senders x 25 MB from outside the sender ranges, genuine deliveries from inside)\n");
        summary.AppendLine($"  flood answers: {string.Join(", ", answers.OrderBy(a => a.Key).Select(a => $"{a.Key}: {a.Value}"))}");
        summary.AppendLine($"  budget {options.MaxUnverifiedBytes / 1048576} MB ({options.MaxUnverifiedBytesOutsideRanges / 1048576} MB outside the ranges); peak held {peakHeld / 1048576} MB; held after {heldAfter}");
        summary.AppendLine($"  managed heap peak +{(peakHeap - heapBefore) / 1048576} MB; working set peak +{(peakWorkingSet - workingSetBefore) / 1048576} MB (test process, flood client included)");
        summary.AppendLine($"  genuine: {genuine.Count} acked, {stored} stored; latency max {latencies.Max().TotalMilliseconds:0} ms, median {latencies.Order().ElementAt(latencies.Count / 2).TotalMilliseconds:0} ms");
        await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "unsigned-flood-summary.txt"), summary.ToString());

        answers.Keys.Should().BeSubsetOf(["401", "503", "connection closed"], "a forged body is refused (unread when over the budget), never stored, never a 500");
        answers.GetValueOrDefault("503").Should().BePositive("the flood passes the budget");
        retryAfterOn503.Should().BeTrue("every 503 says when to come back");
        peakHeld.Should().BeLessThanOrEqualTo(options.MaxUnverifiedBytes, "the budget is a hard bound");
        // Without the budget 12 concurrent 25 MB bodies (read, then copied) are over 600 MB; with it the Api holds at
        // most the 96 MB budget. Generous: the test process also hosts the flood's client and the GC runs when it likes.
        (peakHeap - heapBefore).Should().BeLessThan(options.MaxUnverifiedBytes + 200L * 1024 * 1024, "unverified bytes are bounded");
        latencies.Should().OnlyContain(l => l < TimeSpan.FromSeconds(10), "GitHub waits 10 s");
        stored.Should().Be(genuine.Count, "every acked genuine delivery is stored");
    }

    [Fact]
    public async Task The_per_address_limit_answers_429_to_a_stranger_on_every_receiver_and_never_limits_an_address_in_the_ranges()
    {
        await using var servers = await PrivateServers.StartAsync();
        var redis = servers.Redis; // counts of its own: other tests also send from loopback
        await using var app = await ApiApp.StartAsync(infra, new()
        {
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            ["Webhooks:SenderRanges:0"] = GitHubAddress + "/32",
            ["Webhooks:SenderRanges:1"] = GitHubAddress + "/32",
            ["RateLimiting:PerWebhookSender"] = "3",
        }, kestrel: true);
        var baseAddress = app.Host.ClientOptions.BaseAddress;
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var push = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        using var stranger = SourceAddressClient.Create(baseAddress, StrangerAddress);
        using var gitHub = SourceAddressClient.Create(baseAddress, GitHubAddress);

        // Three forged deliveries are read and refused; the stranger's next request, to any receiver, is not let in.
        for (var i = 0; i < 3; i++)
        {
            (await ApiRequests.DeliverAsync(stranger, repo.Id, "not-the-secret", "push", push)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }
        var limited = new[]
        {
            await ApiRequests.DeliverAsync(stranger, repo.Id, repo.WebhookSecret, "push", push),
            await stranger.PostAsync("/api/webhooks/github-app", new ByteArrayContent(push)),
            await stranger.PostAsync("/webhooks/stripe", new StringContent("{}")),
        };
        foreach (var response in limited)
        {
            response.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, response.RequestMessage!.RequestUri!.AbsolutePath);
            response.Headers.RetryAfter!.Delta.Should().BePositive();
            response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        }

        // GitHub's address is not counted: twenty deliveries in the same window, all stored.
        for (var i = 0; i < 20; i++)
        {
            (await ApiRequests.DeliverAsync(gitHub, repo.Id, repo.WebhookSecret, "push", push, $"from-github-{i}")).StatusCode
                .Should().Be(HttpStatusCode.OK);
        }
        (await app.CountEventsAsync(repo.Id)).Should().Be(20);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_the_address_it_forwards_counts_and_a_forged_forwarded_address_does_not()
    {
        const string gitHubHook = "140.82.112.5"; // inside GitHub's published hooks ranges
        await using var servers = await PrivateServers.StartAsync();
        var redis = servers.Redis;
        await using var app = await ApiApp.StartAsync(infra, new()
        {
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            ["Api:TrustedProxies:0"] = "127.0.0.1/32", // 127.0.0.1 plays the ingress
            ["Webhooks:SenderRanges:0"] = "140.82.112.0/20",
            ["Webhooks:SenderRanges:1"] = "140.82.112.0/20",
            ["RateLimiting:PerWebhookSender"] = "2",
        }, kestrel: true);
        var baseAddress = app.Host.ClientOptions.BaseAddress;
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var push = GitHubPayloads.ForRepo("push/payload.json", repo.FullName);
        using var ingress = SourceAddressClient.Create(baseAddress, "127.0.0.1");
        using var direct = SourceAddressClient.Create(baseAddress, "127.0.0.3");

        async Task<List<int>> SendAsync(HttpClient client, string forwardedFor, int count)
        {
            var statuses = new List<int>();
            for (var i = 0; i < count; i++)
            {
                var response = await ApiRequests.DeliverAsync(client, repo.Id, "not-the-secret", "push", push,
                    tamper: r => r.Headers.Add("X-Forwarded-For", forwardedFor));
                statuses.Add((int)response.StatusCode);
            }
            return statuses;
        }

        (await SendAsync(ingress, gitHubHook, 5)).Should().AllBeEquivalentTo(401, "GitHub behind the ingress is not limited");
        (await SendAsync(ingress, "203.0.113.9", 3)).Should().Equal([401, 401, 429], "a stranger behind the ingress is");
        (await SendAsync(ingress, $"{gitHubHook}, 203.0.113.10", 3)).Should().Equal([401, 401, 429],
            "a client's own X-Forwarded-For entry is not believed: the ingress's appended one counts");
        (await SendAsync(direct, gitHubHook, 3)).Should().Equal([401, 401, 429],
            "X-Forwarded-For from a peer that is not a trusted proxy is ignored");
    }

    [Fact]
    public async Task A_body_that_trickles_is_answered_408_and_gives_its_reservation_back()
    {
        await using var app = await ApiApp.StartAsync(infra, new() { ["Webhooks:BodySeconds"] = "1" }, kestrel: true);
        var budget = app.Host.Services.GetRequiredService<UnverifiedBodyBudget>();
        var repo = await ApiRequests.TrackRepoAsync(app.ClientFor());
        var baseAddress = app.Host.ClientOptions.BaseAddress;

        // A raw socket, as a slow sender would hold one: HttpClient would not show the answer before its body is sent.
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, baseAddress.Port));
        await using var stream = new System.Net.Sockets.NetworkStream(socket);
        var head = $"POST /api/webhooks/github/{repo.Id} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   + $"Content-Length: {1024 * 1024}\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: {Guid.NewGuid()}\r\n"
                   + $"X-Hub-Signature-256: sha256={new string('0', 64)}\r\n\r\n";
        var stopwatch = Stopwatch.StartNew();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head + "{\"zen\": \"slow"));  // 1 MB declared, 14 bytes sent, then nothing

        var answer = new StringBuilder();
        var buffer = new byte[4096];
        using var readTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (!answer.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer, readTimeout.Token);
            if (read == 0)
            {
                break;
            }
            answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        answer.ToString().Should().StartWith("HTTP/1.1 408").And.Contain("application/problem+json");
        stopwatch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(8), "cut off after Webhooks:BodySeconds, not when the sender gives up");
        await Eventually.SucceedsAsync(() =>
        {
            budget.Held.Should().Be(0, "the 1 MB it declared was reserved, and is given back");
            return Task.CompletedTask;
        }, TimeSpan.FromSeconds(5));
    }
}
