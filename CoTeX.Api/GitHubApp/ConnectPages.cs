using System.Text;
using System.Text.Encodings.Web;

namespace CoTeX.Api.GitHubApp;

/// <summary>
/// The plain pages a browser sees at the end of Connect GitHub. A client asking for JSON gets the same answer as a
/// ProblemDetails (or a small JSON body) instead. Pages can be neither framed (the Connect button must not be
/// clickjacked) nor cached, and send no Referer (the callback URL carries the code and the state).
/// </summary>
internal static class ConnectPages
{
    private static readonly HtmlEncoder Html = HtmlEncoder.Default;

    public static IResult Problem(HttpContext context, int status, string title, string detail)
    {
        if (WantsJson(context))
        {
            return TypedResults.Problem(statusCode: status, title: title, detail: detail);
        }
        return Page(context, status, title, $"<p>{Html.Encode(detail)}</p>");
    }

    /// <summary>
    /// Asks the person at the browser to confirm which CoTeX account their GitHub account joins. Without this step,
    /// anyone could start a connection for their own CoTeX account and get someone else to open the link (GitHub
    /// sends a user who authorized the app before straight back): the page names the account, and only this page
    /// holds the confirmation token.
    /// </summary>
    public static IResult Confirm(HttpContext context, string githubLogin, string cotexAccount, string state, string confirmToken)
    {
        var body = new StringBuilder()
            .Append("<p>Connect the GitHub account <b>@").Append(Html.Encode(githubLogin)).Append("</b> to the CoTeX account <b>")
            .Append(Html.Encode(cotexAccount)).Append("</b>?</p>")
            .Append("<p>CoTeX will deliver the events of every repository this GitHub account can access through the ")
            .Append("CoTeX GitHub App to that CoTeX account. Continue only if you started this from your CoTeX app ")
            .Append("and that account is yours; otherwise close this page, and nothing is connected.</p>")
            .Append("<form method=\"post\" action=\"callback\">")
            .Append("<input type=\"hidden\" name=\"state\" value=\"").Append(Html.Encode(state)).Append("\">")
            .Append("<input type=\"hidden\" name=\"confirm\" value=\"").Append(Html.Encode(confirmToken)).Append("\">")
            .Append("<button type=\"submit\">Connect</button></form>");
        return Page(context, StatusCodes.Status200OK, "Connect GitHub to CoTeX", body.ToString());
    }

    public static IResult Connected(HttpContext context, string githubLogin, IReadOnlyList<string> repositories, int installations)
    {
        var body = new StringBuilder()
            .Append("<p>The GitHub account <b>@").Append(Html.Encode(githubLogin)).Append("</b> is connected. ")
            .Append(repositories.Count).Append(" repositor").Append(repositories.Count == 1 ? "y" : "ies").Append(" in ")
            .Append(installations).Append(" installation").Append(installations == 1 ? "" : "s")
            .Append(" of the CoTeX GitHub App can be tracked without a webhook:</p><ul>");
        foreach (var repository in repositories)
        {
            body.Append("<li>").Append(Html.Encode(repository)).Append("</li>");
        }
        body.Append("</ul><p>You can close this page and go back to CoTeX.</p>");
        return Page(context, StatusCodes.Status200OK, "GitHub connected", body.ToString());
    }

    private static IResult Page(HttpContext context, int status, string title, string body)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
        headers.XFrameOptions = "DENY";
        headers.CacheControl = "no-store";
        headers["Referrer-Policy"] = "no-referrer";
        var html = $"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>{Html.Encode(title)} · CoTeX</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>body{"{"}font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em{"}"}</style></head>
            <body><h1>{Html.Encode(title)}</h1>{body}</body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    private static bool WantsJson(HttpContext context) =>
        context.Request.Headers.Accept.ToString() is var accept && accept.Contains("json", StringComparison.OrdinalIgnoreCase)
        && !accept.Contains("text/html", StringComparison.OrdinalIgnoreCase);
}
