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
app.MapHub<EventsHub>(RealtimeProtocol.HubPath);

app.Run();
