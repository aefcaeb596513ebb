using CoTeX.Contracts;
using CoTeX.Realtime.Feeds;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Microsoft.Extensions.Hosting;

internal static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.AddCoTeXDatabase(maxPoolSize: 15, FeedQueries.ConfigureDataSource);
        builder.AddCoTeXRedis();
        builder.AddCoTeXAuthentication(RealtimeProtocol.HubPath);
        builder.AddCoTeXCors();

        builder.Services.AddOptions<RealtimeOptions>().BindConfiguration(RealtimeOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        // Upgraded connections (the hub's WebSockets) leave Kestrel's connection count and enter this one.
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<RealtimeOptions>>((kestrel, realtime) =>
            kestrel.Limits.MaxConcurrentUpgradedConnections = realtime.Value.ConnectionLimit());

        // The Redis backplane lets hub-level sends (Clients.User, groups) reach connections on every replica, over
        // the same multiplexer the rest of the service uses.
        builder.Services.AddSignalR().AddStackExchangeRedis(options =>
            options.Configuration.ChannelPrefix = RedisChannel.Literal("cotex:signalr"));
        builder.Services.AddOptions<RedisOptions>()
            .Configure<IConnectionMultiplexer>((options, redis) => options.ConnectionFactory = _ => Task.FromResult(redis));

        builder.Services.AddSingleton<FeedQueries>();
        builder.Services.AddSingleton<FeedRegistry>();
        builder.Services.AddSingleton<FeedMetrics>();
        builder.Services.AddSingleton<ShutdownNotifier>();
        builder.Services.AddHostedService<LiveEventRouter>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddHostedService<ReplicaBalancer>();
    }
}
