using System.ComponentModel.DataAnnotations;

namespace CoTeX.ServiceDefaults;

/// <summary>How long a service may take to finish accepted work after SIGTERM (Azure Container Apps allows 30 s).</summary>
public sealed class ShutdownOptions
{
    public const string Section = "Shutdown";
    public const int DefaultTimeoutSeconds = 25;

    [Range(1, 300)]
    public int TimeoutSeconds { get; set; } = DefaultTimeoutSeconds;
}
