using System.Diagnostics;

namespace CoTeX.ServiceDefaults;

/// <summary>
/// The name CoTeX's own spans and metrics are published under (an <see cref="ActivitySource"/> here, meters through
/// <see cref="System.Diagnostics.Metrics.IMeterFactory"/>); the service defaults export both.
/// </summary>
public static class CoTeXTelemetry
{
    public const string Name = "CoTeX";

    public static readonly ActivitySource ActivitySource = new(Name);
}
