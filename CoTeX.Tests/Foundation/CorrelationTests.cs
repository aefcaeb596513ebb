extern alias api;

using CoTeX.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CoTeX.Tests.Foundation;

public sealed class CorrelationTests(TestInfrastructure infra)
{
    [Fact]
    public async Task A_sane_request_id_is_echoed_and_a_missing_or_unsafe_one_is_replaced()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var host = ServiceHost<api::Program>.Create(db, infra.Redis.ConnectionString);
        var client = host.CreateClient();

        var echoed = await SendAsync(client, "client-req.42");
        var generated = await SendAsync(client, null);
        var unsafeId = await SendAsync(client, "bad id\u0001<script>");

        echoed.Should().Be("client-req.42");
        generated.Should().MatchRegex("^[0-9a-f]{32}$");
        unsafeId.Should().MatchRegex("^[0-9a-f]{32}$");
    }

    [Fact]
    public async Task Each_log_category_gets_one_logger_that_writes_through_serilog()
    {
        var db = await infra.CreateMigratedDatabaseAsync();
        await using var host = ServiceHost<api::Program>.Create(db, infra.Redis.ConnectionString);
        var factory = host.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>();

        var first = factory.CreateLogger("CoTeX.Tests.Category");

        factory.CreateLogger("CoTeX.Tests.Category").Should().BeSameAs(first, "ASP.NET Core asks for loggers per request and per connection");
        factory.CreateLogger("CoTeX.Tests.Other").Should().NotBeSameAs(first);
        first.GetType().FullName.Should().StartWith("Serilog.", "logs still go through Serilog's JSON console output");
    }

    private static async Task<string> SendAsync(HttpClient client, string? requestId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/alive");
        if (requestId is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Request-Id", requestId);
        }
        var response = await client.SendAsync(request);
        return response.Headers.GetValues("X-Request-Id").Single();
    }
}
