namespace Microsoft.Extensions.Hosting;

internal static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        builder.AddCoTeXDatabase();
        builder.AddCoTeXRedis();
        builder.AddCoTeXAuthentication("/ws");
    }
}
