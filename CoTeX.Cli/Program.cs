using System.CommandLine;
using System.Globalization;
using CoTeX.Cli;
using CoTeX.Client;
using CoTeX.Contracts;

// cotex: track repos and watch their GitHub events live, from a terminal.
//   COTEX_API_URL        default http://127.0.0.1:5080
//   COTEX_REALTIME_URLS  comma-separated, default http://127.0.0.1:5081 (the AppHost's endpoint in front of every replica)
//   COTEX_TOKEN          a Supabase access token (locally: export COTEX_TOKEN=$(eng/mint-token.sh)), or
//   COTEX_TOKEN_FILE / COTEX_TOKEN_COMMAND for a token that is refreshed (TokenSource)

var root = new RootCommand("CoTeX: your GitHub repositories' events, live.\n\n" + ExitCodes.Help + "\n\n" + TokenSource.Help);

var positionFile = new Option<FileInfo>("--position-file")
{
    Description = "Where watch keeps the last position it printed, so a restart resumes after it.",
    DefaultValueFactory = _ => new FileInfo(Path.Combine(
        Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cotex", "position")),
};
var fromStart = new Option<bool>("--from-start") { Description = "Replay every stored event first." };
var watch = new Command("watch", "Prints events as they happen; resumes where the last run stopped.") { positionFile, fromStart };
watch.SetAction(async (parse, cancellationToken) =>
{
    using var client = Settings.CreateClient();
    // The feed would keep retrying a token the hub refuses; find out first, with an answer that says why.
    await client.ListReposAsync(cancellationToken);
    var file = parse.GetValue(positionFile)!;
    long? from = parse.GetValue(fromStart) ? 0 : PositionFile.Read(file);
    await using var feed = client.Watch(from);
    feed.Connected += url => Console.Error.WriteLine($"connected to {url}, resuming after {feed.Position?.ToString(CultureInfo.InvariantCulture) ?? "now"}");
    feed.Reset += reset => Console.Error.WriteLine($"reset at {reset.Position}: {reset.Reason}");
    // The feed reconnects by itself, with a token from the token source each time; say what happens.
    var failing = false;
    feed.Connected += _ => failing = false;
    feed.ReconnectRequested += notice => Console.Error.WriteLine(notice.Code == ReconnectCodes.TokenExpired
        ? "the token has expired; reconnecting with a fresh one"
        : $"reconnecting: {notice.Reason}");
    feed.ConnectionFailed += ex =>
    {
        if (!failing)
        {
            failing = true;
            Console.Error.WriteLine($"cannot connect ({ex.Message}); retrying");
        }
    };
    try
    {
        await foreach (var e in feed.ReadAllAsync(cancellationToken))
        {
            Console.WriteLine($"{e.ReceivedAt.ToLocalTime():HH:mm:ss} #{e.Position} {e.RepoFullName} {e.Type}{(e.Action is null ? "" : "." + e.Action)} {e.Sender}: {e.Title} {e.HtmlUrl}");
            PositionFile.Write(file, e.Position);
        }
    }
    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
    {
    }
    return 0;
});

var repos = new Command("repos", "The repositories you track.");
var fullName = new Argument<string>("owner/name");
var viaWebhook = new Option<bool>("--webhook") { Description = "Use a webhook even if the GitHub App can deliver the repository." };
var add = new Command("add", "Track a repository: through the CoTeX GitHub App when it can (cotex connect), else prints the webhook URL and secret to paste into GitHub.")
{
    fullName, viaWebhook,
};
add.SetAction(async (parse, cancellationToken) =>
{
    using var client = Settings.CreateClient();
    var repo = await client.AddRepoAsync(parse.GetValue(fullName)!, parse.GetValue(viaWebhook) ? RepoSources.Webhook : null, cancellationToken);
    Console.WriteLine($"Tracking {repo.FullName} ({repo.Id}).");
    if (repo.Source == RepoSources.App)
    {
        Console.WriteLine("Delivered by the CoTeX GitHub App: nothing to set up.");
        return 0;
    }
    Console.WriteLine("In GitHub → Settings → Webhooks → Add webhook:");
    Console.WriteLine($"  Payload URL:  {repo.WebhookUrl}");
    Console.WriteLine($"  Content type: {repo.ContentType}");
    Console.WriteLine($"  Secret:       {repo.WebhookSecret}   (shown only now)");
    return 0;
});
var list = new Command("list", "Lists tracked repositories and plan usage.");
list.SetAction(async (_, cancellationToken) =>
{
    using var client = Settings.CreateClient();
    var result = await client.ListReposAsync(cancellationToken);
    Console.WriteLine($"{result.Plan.Name} plan: {result.Plan.Used} of {result.Plan.Limit} active repos");
    foreach (var r in result.Repos)
    {
        Console.WriteLine($"{r.Id}  {r.FullName}{(r.Paused ? " (paused)" : "")}  via {r.Source}  last delivery {r.LastDeliveryAt?.ToString("u", CultureInfo.InvariantCulture) ?? "never"}");
    }
    return 0;
});
var repoId = new Argument<Guid>("repo-id");
var remove = new Command("remove", "Stops tracking a repository and deletes its events.") { repoId };
remove.SetAction(async (parse, cancellationToken) =>
{
    using var client = Settings.CreateClient();
    await client.RemoveRepoAsync(parse.GetValue(repoId), cancellationToken);
    Console.WriteLine("Removed.");
    return 0;
});
repos.Subcommands.Add(add);
repos.Subcommands.Add(list);
repos.Subcommands.Add(remove);

var limit = new Option<int>("--limit") { Description = "Events per page (1-100).", DefaultValueFactory = _ => 20 };
var cursor = new Option<string?>("--cursor") { Description = "nextCursor of the previous page." };
var repoFilter = new Option<Guid?>("--repo") { Description = "Only this repo's events." };
var events = new Command("events", "One page of event history, newest first.") { limit, cursor, repoFilter };
events.SetAction(async (parse, cancellationToken) =>
{
    using var client = Settings.CreateClient();
    var page = await client.GetEventsAsync(parse.GetValue(repoFilter), null, parse.GetValue(limit), parse.GetValue(cursor), cancellationToken);
    foreach (var e in page.Items)
    {
        Console.WriteLine($"{e.ReceivedAt:u} #{e.Position} id={e.Id} {e.RepoFullName} {e.Type} {e.Title}");
    }
    if (page.NextCursor is not null)
    {
        Console.WriteLine($"more: cotex events --cursor {page.NextCursor}");
    }
    return 0;
});

var wait = new Option<int>("--wait") { Description = "Seconds to wait for the connection (0: print the URL and exit).", DefaultValueFactory = _ => 600 };
var connect = new Command("connect", "Connects your GitHub account through the CoTeX GitHub App: prints the URL to open, then waits for the connection.") { wait };
connect.SetAction(async (parse, cancellationToken) =>
{
    using var client = Settings.CreateClient();
    var before = await client.GetGitHubAppAsync(cancellationToken);
    if (!before.Enabled)
    {
        Console.Error.WriteLine("cotex: this CoTeX server has no GitHub App; track repos with webhooks (cotex repos add).");
        return ExitCodes.Refused;
    }
    var start = await client.ConnectGitHubAsync(cancellationToken);
    Console.WriteLine("Open this URL in your browser and approve CoTeX (it works once, until " +
                      $"{start.ExpiresAt.ToLocalTime():HH:mm}):");
    Console.WriteLine($"  {start.Url}");
    var seconds = parse.GetValue(wait);
    if (seconds <= 0)
    {
        return 0;
    }
    Console.Error.WriteLine("Waiting for the connection…");
    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
    try
    {
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(2), timeout.Token);
            var status = await client.GetGitHubAppAsync(timeout.Token);
            if (status.Connection is { RevokedAt: null } connection && connection.CheckedAt > (before.Connection?.CheckedAt ?? DateTimeOffset.MinValue))
            {
                Console.WriteLine($"Connected GitHub @{connection.Login}. Repositories you can track without a webhook:");
                foreach (var repository in connection.Repositories)
                {
                    Console.WriteLine($"  {repository.FullName}{(repository.Tracked ? " (tracked)" : "")}{(repository.Suspended ? " (installation suspended)" : "")}");
                }
                return 0;
            }
        }
    }
    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
    {
        Console.Error.WriteLine($"cotex: no connection within {seconds} s; run cotex connect again for a new link.");
        return ExitCodes.Refused;
    }
});

root.Subcommands.Add(watch);
root.Subcommands.Add(connect);
root.Subcommands.Add(repos);
root.Subcommands.Add(events);

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var error in parsed.Errors)
    {
        Console.Error.WriteLine($"cotex: {error.Message}");
    }
    Console.Error.WriteLine("See cotex --help.");
    return ExitCodes.Usage;
}
try
{
    // Our own handler below, not System.CommandLine's (which prints the exception with its stack).
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception ex)
{
    var (exitCode, message) = Failures.Describe(ex, Settings.ApiUrl);
    Console.Error.WriteLine($"cotex: {message}");
    return exitCode;
}
