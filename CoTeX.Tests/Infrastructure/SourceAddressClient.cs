using System.Net;
using System.Net.Sockets;

namespace CoTeX.Tests.Infrastructure;

/// <summary>
/// An HttpClient whose connections leave from a chosen loopback address (127.0.0.2, ...): on Linux all of 127.0.0.0/8 is
/// loopback, so one test can play GitHub from inside the sender ranges and a stranger from outside them.
/// </summary>
public static class SourceAddressClient
{
    public static HttpClient Create(Uri baseAddress, string sourceAddress, TimeSpan? timeout = null) =>
        new(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(IPAddress.Parse(sourceAddress), 0));
                    // The servers listen on localhost; an IPv4 source needs the IPv4 side of it.
                    var host = context.DnsEndPoint.Host is "localhost" ? "127.0.0.1" : context.DnsEndPoint.Host;
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(host), context.DnsEndPoint.Port), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = baseAddress,
            Timeout = timeout ?? TimeSpan.FromSeconds(100),
        };
}
