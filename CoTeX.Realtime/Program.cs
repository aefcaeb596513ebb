using CoTeX.Contracts;
using CoTeX.Realtime.Hubs;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddApplicationServices();

var app = builder.Build();

app.UseServiceDefaults();
// A browser page from a disallowed origin cannot open the hub's WebSocket (CORS does not cover WebSocket upgrades).
var webSockets = new WebSocketOptions();
foreach (var origin in app.Configuration.AllowedOrigins())
{
    webSockets.AllowedOrigins.Add(origin);
}
app.UseCors();
app.UseWebSockets(webSockets);
app.UseAuthentication();
app.UseAuthorization();

app.MapDefaultEndpoints();
// A connection ends when its token does (the token's exp, kept by the authentication handler): the client reconnects
// with a fresh token and resumes. Without this a revoked session would keep streaming for as long as its socket lasts.
app.MapHub<EventsHub>(RealtimeProtocol.HubPath, options => options.CloseOnAuthenticationExpiration = true);

app.Run();
