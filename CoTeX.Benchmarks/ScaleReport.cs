using System.Globalization;
using System.Text;
using ScottPlot;

namespace CoTeX.Benchmarks;

/// <summary>The scale scenarios' lines in the report, and their charts (connections-memory.png, storm-timeline.png).</summary>
public static class ScaleReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Console(object result)
    {
        switch (result)
        {
            case ConnectionsScaleResult c:
                foreach (var s in c.Steps)
                {
                    System.Console.WriteLine(string.Create(Inv,
                        $"connections-100k: {s.Connections} idle on realtime-1: {s.KbPerConnection:F1} KB RSS/conn, {s.ConnectsPerSecond:F0} connects/s, " +
                        $"idle CPU {s.IdleCpuPercent:F1}%, Redis {s.RedisBytesPerConnection:F0} B and {s.RedisChannelsPerConnection:F2} channels per conn, live {s.Live}"));
                }
                if (c.Wall is not null)
                {
                    System.Console.WriteLine($"connections-100k: stopped at {c.Steps[^1].Connections}: {c.Wall}");
                }
                break;
            case StormResult r:
                System.Console.WriteLine(string.Create(Inv,
                    $"storm: {r.Reconnecting} of {r.Clients} clients reconnected after a kill and caught up on {r.Missed} events each in {r.SecondsToAllCaughtUp:F1} s " +
                    $"(all reconnected after {r.SecondsToAllReconnected:F1} s); lost {r.Lost}, duplicated {r.Duplicated}, out of order {r.OutOfOrder}, " +
                    $"unexpected {r.Unexpected}; {r.FailedAttempts} failed connects, {r.RefusedWithRetryAfter} answered 503 with Retry-After, {r.ServerCloses} server closes; Postgres peak {r.PgPeakTransactionsPerSecond:F0} xact/s, {r.PgPeakActive} active; " +
                    $"realtime-2 restarted: {(r.SecondsToBalanced is { } b ? $"balanced after {b:F1} s" : "NOT balanced")}, {r.RebalanceNotices} clients moved"));
                break;
        }
    }

    public static void Markdown(StringBuilder md, Dictionary<string, object> results)
    {
        if (results.GetValueOrDefault("connections100k") is ConnectionsScaleResult c)
        {
            md.AppendLine(Inv, $"| Idle connections on one replica, in steps ({c.ConnectionsPerUser} per user; cheap raw-WebSocket clients) | " +
                $"before: RSS {c.RssBeforeKb / 1024} MB, Redis {c.RedisBeforeBytes / 1048576.0:F1} MB, {c.RedisChannelsBefore} channels | |");
            foreach (var s in c.Steps)
            {
                md.AppendLine(Inv, $"| {s.Connections} idle ({s.Failed} failed; {s.SecondsToConnect:F1} s, {s.ConnectsPerSecond:F0}/s) | " +
                    $"**{s.KbPerConnection:F1} KB** RSS per connection ({s.KbPerConnectionAdded:F1} KB for the step's); idle CPU {s.IdleCpuPercent:F1}% of a core " +
                    $"(load generator {s.LoadGeneratorCpuPercent:F1}%); Redis {s.RedisUsedBytes / 1048576.0:F1} MB ({s.RedisBytesPerConnection:F0} B per connection), " +
                    $"{s.RedisChannels} channels ({s.RedisChannelsPerConnection:F2} per connection), {s.RedisClients} clients; " +
                    $"live {s.LiveReceived}/{s.LiveSent * 4}: {s.Live} | < 20 KB; live p99 < 25 ms |");
            }
            if (c.Wall is not null)
            {
                md.AppendLine(Inv, $"| Idle connections: the wall | {c.Wall} | 100,000 |");
            }
        }
        if (results.GetValueOrDefault("storm") is StormResult r)
        {
            md.AppendLine(Inv, $"| Reconnect storm ({r.Clients} clients{(r.Clients < r.Requested ? $" of {r.Requested} asked" : "")}, one per user, {r.KilledShare:P0} on the replica killed; " +
                $"{r.Reconnecting} on the killed one, {r.Missed} missed each) | **{r.SecondsToAllCaughtUp:F1} s** from the kill to all caught up " +
                $"({(r.Complete ? "complete" : "INCOMPLETE")}; all reconnected after {r.SecondsToAllReconnected:F1} s); lost {r.Lost}, duplicated {r.Duplicated}, " +
                $"out of order {r.OutOfOrder} | < 30 s, 0 lost, 0 duplicated |");
            md.AppendLine(Inv, $"| Storm: failed connects | {r.FailedAttempts} failed (the dead replica refusing, other errors), {r.RefusedWithRetryAfter} more answered 503 with Retry-After (the replica's database pool busy), {r.ServerCloses} closed by the server | |");
            md.AppendLine(Inv, $"| Storm: Postgres | peak {r.PgPeakTransactionsPerSecond:F0} transactions/s, {r.PgPeakRowsPerSecond:F0} rows read/s, {r.PgPeakActive} statements running at once | |");
            md.AppendLine(Inv, $"| Storm: CPU ms from the kill to all caught up | {string.Join(", ", r.CpuMs.Where(kv => !CpuMeter.IsBreakdown(kv.Key)).Select(kv => string.Create(Inv, $"{kv.Key} {kv.Value:F0}")))} | |");
            var balanced = r.SecondsToBalanced is { } b ? string.Create(Inv, $"balanced (the survivor within 10% of its share) {b:F1} s later") : "**not balanced**";
            var rebalanceCpu = string.Join(", ", r.RebalanceCpuMs.Where(kv => !CpuMeter.IsBreakdown(kv.Key)).Select(kv => string.Create(Inv, $"{kv.Key} {kv.Value:F0}")));
            md.AppendLine(Inv, $"| Storm: the killed replica restarted, taking load back | healthy in {r.MsRestartedHealthy:F0} ms; {balanced}, {r.RebalanceNotices} clients asked to move, {r.RebalanceFailedAttempts} failed connects; then {r.OnSurvivorAfterRestart} clients on the survivor, {r.OnRestartedAfterRestart} on it; CPU ms until balanced: {rebalanceCpu} | |");
        }
    }

    public static void Charts(string folder, Dictionary<string, object> results)
    {
        if (results.GetValueOrDefault("connections100k") is ConnectionsScaleResult { Steps.Count: > 0 } c)
        {
            var plot = new Plot();
            var xs = new[] { 0.0 }.Concat(c.Steps.Select(s => (double)s.Connections)).ToArray();
            var rss = plot.Add.Scatter(xs, new[] { c.RssBeforeKb / 1024.0 }.Concat(c.Steps.Select(s => s.RssKb / 1024.0)).ToArray());
            rss.LegendText = "realtime-1 RSS (MB, left)";
            rss.LineWidth = 2;
            rss.MarkerSize = 8;
            var perConnection = plot.Add.Scatter(c.Steps.Select(s => (double)s.Connections).ToArray(), c.Steps.Select(s => s.KbPerConnection).ToArray());
            perConnection.Axes.YAxis = plot.Axes.Right;
            perConnection.LegendText = "KB per connection (right)";
            perConnection.LineWidth = 2;
            perConnection.MarkerSize = 8;
            plot.Axes.Bottom.Label.Text = "idle connections on the replica";
            plot.Axes.Left.Label.Text = "RSS (MB)";
            plot.Axes.Right.Label.Text = "KB per connection";
            plot.Axes.SetLimitsY(0, c.Steps.Max(s => s.RssKb) / 1024.0 * 1.15, plot.Axes.Left);
            plot.Axes.SetLimitsY(0, Math.Max(25, c.Steps.Max(s => s.KbPerConnection) * 1.15), plot.Axes.Right);
            plot.Title($"Idle connections on one Realtime replica: memory{(c.Wall is null ? "" : " (stopped by the open-file limit)")}");
            plot.ShowLegend(Alignment.UpperLeft);
            plot.SavePng(Path.Combine(folder, "connections-memory.png"), 900, 480);
        }
        if (results.GetValueOrDefault("storm") is StormResult { Timeline.Count: > 0 } r)
        {
            var plot = new Plot();
            var xs = r.Timeline.Select(s => s.Seconds).ToArray();
            foreach (var (name, ys) in new (string, double[])[]
                     {
                         ("connected (all clients)", r.Timeline.Select(s => (double)s.Connected).ToArray()),
                         ("caught up (the killed replica's)", r.Timeline.Select(s => (double)s.CaughtUp).ToArray()),
                         ("on realtime-1", r.Timeline.Select(s => (double)s.OnReplica1).ToArray()),
                         ("on realtime-2 (restarted, taking clients back)", r.Timeline.Select(s => (double)s.OnReplica2).ToArray()),
                     })
            {
                var line = plot.Add.ScatterLine(xs, ys);
                line.LegendText = name;
                line.LineWidth = 2;
            }
            var pg = plot.Add.ScatterLine(xs, r.Timeline.Select(s => s.PgTransactionsPerSecond).ToArray());
            pg.Axes.YAxis = plot.Axes.Right;
            pg.LegendText = "Postgres transactions/s (right)";
            pg.LinePattern = LinePattern.Dashed;
            plot.Axes.Bottom.Label.Text = "seconds after realtime-2 was killed";
            plot.Axes.Left.Label.Text = "clients";
            plot.Axes.Right.Label.Text = "transactions/s";
            plot.Title($"Reconnect storm: {r.Reconnecting} clients move to the survivor ({r.Missed} missed events each), then back");
            plot.ShowLegend(Alignment.LowerRight);
            plot.SavePng(Path.Combine(folder, "storm-timeline.png"), 900, 480);
        }
    }
}
