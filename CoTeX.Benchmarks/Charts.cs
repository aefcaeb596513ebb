using ScottPlot;

namespace CoTeX.Benchmarks;

/// <summary>
/// The report's pictures (ScottPlot): latency distributions as percentile curves, whose tails a table of p50/p99 hides,
/// and CPU per webhook by part as stacked bars.
/// </summary>
public static class Charts
{
    private static readonly double[] Percentiles = [50, 75, 90, 95, 98, 99, 99.5, 99.9, 99.95, 99.99];

    /// <summary>
    /// One curve per series: latency (log scale) against the percentile, on an axis that gives 90→99→99.9 the same
    /// width so the tail is visible.
    /// </summary>
    public static void Latency(string file, string title, IReadOnlyList<(string Name, IReadOnlyList<double> Milliseconds)> series)
    {
        if (series.All(s => s.Milliseconds.Count == 0))
        {
            return;
        }
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var maxMs = 1.0;
        var minMs = double.MaxValue;
        for (var s = 0; s < series.Count; s++)
        {
            var sorted = series[s].Milliseconds.Where(v => v > 0).Order().ToArray();
            if (sorted.Length == 0)
            {
                continue;
            }
            var steps = Math.Min(sorted.Length, 2000);
            var xs = new double[steps];
            var ys = new double[steps];
            for (var i = 0; i < steps; i++)
            {
                // Dense toward the tail: the fraction below goes 0 → 1 - 1/n.
                var fraction = 1 - Math.Pow(10, -Nines(sorted.Length) * i / (steps - 1));
                var index = Math.Min(sorted.Length - 1, (int)(fraction * sorted.Length));
                xs[i] = X(fraction);
                ys[i] = Math.Log10(sorted[index]);
            }
            maxMs = Math.Max(maxMs, sorted[^1]);
            minMs = Math.Min(minMs, sorted[0]);
            var line = plot.Add.ScatterLine(xs, ys, palette.GetColor(s));
            line.LineWidth = 2;
            line.LegendText = series[s].Name;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Percentiles.Select(p => X(p / 100)).ToArray(), Percentiles.Select(p => $"{p}%").ToArray());
        // Log-scale ticks from the one below the fastest to the one above the slowest.
        var all = new[] { 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000 };
        var ticks = all.Where(t => t >= all.LastOrDefault(a => a <= minMs, 0.1) && t <= all.FirstOrDefault(a => a >= maxMs, 20000)).ToArray();
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            ticks.Select(Math.Log10).ToArray(), ticks.Select(t => $"{t} ms").ToArray());
        plot.Axes.SetLimitsY(Math.Log10(ticks[0]), Math.Log10(ticks[^1]));
        plot.Axes.Bottom.Label.Text = "percentile";
        plot.Axes.Left.Label.Text = "latency (log scale)";
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(file, 900, 480);
    }

    /// <summary>
    /// Latency against a size (both log scale): one line per series, one point per size, e.g. the p50 and p99 of the
    /// fan-out's ack and delivery by team size.
    /// </summary>
    public static void BySize(string file, string title, string sizeLabel, IReadOnlyList<int> sizes,
        IReadOnlyList<(string Name, IReadOnlyList<double> Milliseconds)> series)
    {
        if (sizes.Count == 0)
        {
            return;
        }
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var xs = sizes.Select(s => Math.Log10(s)).ToArray();
        var all = series.SelectMany(s => s.Milliseconds).Where(v => v > 0).ToArray();
        for (var s = 0; s < series.Count; s++)
        {
            var line = plot.Add.Scatter(xs, series[s].Milliseconds.Select(v => Math.Log10(Math.Max(v, 0.01))).ToArray(), palette.GetColor(s));
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LegendText = series[s].Name;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs, sizes.Select(s => s.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        var steps = new[] { 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000 };
        var minMs = all.Length > 0 ? all.Min() : 1;
        var maxMs = all.Length > 0 ? all.Max() : 1;
        var ticks = steps.Where(t => t >= steps.LastOrDefault(a => a <= minMs, 0.1) && t <= steps.FirstOrDefault(a => a >= maxMs, 20000)).ToArray();
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            ticks.Select(Math.Log10).ToArray(), ticks.Select(t => $"{t} ms").ToArray());
        plot.Axes.SetLimits(xs[0] - 0.15, xs[^1] + 0.15, Math.Log10(ticks[0]), Math.Log10(ticks[^1]));
        plot.Axes.Bottom.Label.Text = sizeLabel + " (log scale)";
        plot.Axes.Left.Label.Text = "latency (log scale)";
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(file, 900, 480);
    }

    /// <summary>CPU milliseconds per webhook, one stacked bar per run, one colour per part.</summary>
    public static void Cpu(string file, string title, IReadOnlyList<(string Run, IReadOnlyDictionary<string, double> MsPerWebhook)> runs)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        // The parts stacked; 'whole machine' is their total and 'other: x' or 'postgres: x' a breakdown of a part.
        var parts = runs.SelectMany(r => r.MsPerWebhook.Keys)
            .Where(k => k != "whole machine" && !CpuMeter.IsBreakdown(k)).Distinct().ToList();
        var bars = new List<Bar>();
        for (var r = 0; r < runs.Count; r++)
        {
            var bottom = 0.0;
            foreach (var (part, index) in parts.Select((p, i) => (p, i)))
            {
                var value = Math.Max(0, runs[r].MsPerWebhook.GetValueOrDefault(part));
                bars.Add(new Bar { Position = r, ValueBase = bottom, Value = bottom + value, FillColor = palette.GetColor(index), Size = 0.6 });
                bottom += value;
            }
            if (runs[r].MsPerWebhook.TryGetValue("whole machine", out var whole))
            {
                var label = plot.Add.Text($"{whole:F2} ms", r, bottom);
                label.LabelAlignment = Alignment.LowerCenter;
                label.LabelFontSize = 13;
            }
        }
        plot.Add.Bars(bars);
        foreach (var (part, index) in parts.Select((p, i) => (p, i)))
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = part, FillColor = palette.GetColor(index) });
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, runs.Count).Select(i => (double)i).ToArray(), runs.Select(r => r.Run).ToArray());
        plot.Axes.Left.Label.Text = "CPU ms per webhook";
        plot.Axes.Margins(bottom: 0, top: 0.15);
        plot.Title(title);
        plot.ShowLegend(Edge.Right);
        plot.SavePng(file, 1000, 520);
    }

    // -log10(1 - p): 0 at p = 0, 1 at 90%, 2 at 99%, 3 at 99.9%.
    private static double X(double fraction) => -Math.Log10(Math.Max(1e-6, 1 - fraction));

    private static double Nines(int count) => Math.Log10(count);
}
