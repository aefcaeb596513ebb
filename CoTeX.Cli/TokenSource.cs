using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace CoTeX.Cli;

/// <summary>
/// Where cotex gets its Supabase access token. It is asked for every request and for every connection <c>watch</c>
/// opens, so a source that can give fresh tokens keeps <c>watch</c> running across expiries (the server closes a
/// connection when its token expires and refuses an expired one). The first variable set wins:
/// <list type="bullet">
/// <item><c>COTEX_TOKEN_COMMAND</c>: a shell command that prints a token; run again once the last token is within a
/// minute of its expiry.</item>
/// <item><c>COTEX_TOKEN_FILE</c>: a file holding a token, read again every time (whatever keeps it current replaces
/// it).</item>
/// <item><c>COTEX_TOKEN</c>: one token, good until it expires.</item>
/// </list>
/// </summary>
internal abstract class TokenSource
{
    public const string Help = """
        Token (the first one set):
          COTEX_TOKEN_COMMAND  a command that prints a fresh Supabase access token (run again before each expires)
          COTEX_TOKEN_FILE     a file holding the token, read again each time one is needed
          COTEX_TOKEN          the token itself (watch stops with exit code 3 when it expires)
        """;

    /// <summary>How long before its expiry a command's token is replaced.</summary>
    private static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(1);

    public abstract ValueTask<string> GetAsync(CancellationToken cancellationToken);

    public static TokenSource FromEnvironment()
    {
        if (Environment.GetEnvironmentVariable("COTEX_TOKEN_COMMAND") is { Length: > 0 } command)
        {
            return new CommandSource(command);
        }
        if (Environment.GetEnvironmentVariable("COTEX_TOKEN_FILE") is { Length: > 0 } file)
        {
            return new FileSource(file);
        }
        if (Environment.GetEnvironmentVariable("COTEX_TOKEN") is { } token && !string.IsNullOrWhiteSpace(token))
        {
            return new FixedSource(token.Trim());
        }
        throw new ConfigurationException("Set COTEX_TOKEN to a Supabase access token (locally: export " +
            "COTEX_TOKEN=$(eng/mint-token.sh)), or COTEX_TOKEN_FILE / COTEX_TOKEN_COMMAND for one that is refreshed.");
    }

    /// <summary>The token's <c>exp</c>, read without checking the signature (the server checks it); null when unreadable.</summary>
    public static DateTimeOffset? ExpiryOf(string token)
    {
        var parts = token.Split('.');
        if (parts.Length != 3)
        {
            return null;
        }
        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
            using var json = JsonDocument.Parse(Convert.FromBase64String(payload));
            return json.RootElement.TryGetProperty("exp", out var exp) && exp.TryGetInt64(out var seconds)
                ? DateTimeOffset.FromUnixTimeSeconds(seconds)
                : null;
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return null;
        }
    }

    private sealed class FixedSource(string token) : TokenSource
    {
        public override ValueTask<string> GetAsync(CancellationToken cancellationToken) =>
            ExpiryOf(token) is { } expiry && expiry <= DateTimeOffset.UtcNow
                ? throw new TokenExpiredException(
                    $"The token in COTEX_TOKEN expired at {expiry.ToLocalTime():HH:mm:ss}. Mint a new one (locally: export " +
                    "COTEX_TOKEN=$(eng/mint-token.sh)), or set COTEX_TOKEN_FILE or COTEX_TOKEN_COMMAND so cotex fetches " +
                    "fresh tokens itself.")
                : ValueTask.FromResult(token);
    }

    private sealed class FileSource(string path) : TokenSource
    {
        public override async ValueTask<string> GetAsync(CancellationToken cancellationToken)
        {
            string token;
            try
            {
                token = (await File.ReadAllTextAsync(path, cancellationToken)).Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ConfigurationException($"COTEX_TOKEN_FILE: cannot read {path}: {ex.Message}");
            }
            return token.Length > 0 ? token : throw new ConfigurationException($"COTEX_TOKEN_FILE: {path} is empty.");
        }
    }

    private sealed class CommandSource(string command) : TokenSource
    {
        private readonly SemaphoreSlim _lock = new(1, 1);
        private string? _token;
        private DateTimeOffset? _expiry;

        public override async ValueTask<string> GetAsync(CancellationToken cancellationToken)
        {
            await _lock.WaitAsync(cancellationToken);
            try
            {
                // Without a readable exp the command is asked every time.
                if (_token is null || _expiry is not { } expiry || expiry - RefreshMargin <= DateTimeOffset.UtcNow)
                {
                    _token = await RunAsync(cancellationToken);
                    _expiry = ExpiryOf(_token);
                }
                return _token;
            }
            finally
            {
                _lock.Release();
            }
        }

        private async Task<string> RunAsync(CancellationToken cancellationToken)
        {
            var start = OperatingSystem.IsWindows()
                ? new ProcessStartInfo("cmd.exe", ["/c", command])
                : new ProcessStartInfo("/bin/sh", ["-c", command]);
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            start.UseShellExecute = false;
            start.StandardOutputEncoding = Encoding.UTF8;
            using var process = Process.Start(start)
                ?? throw new ConfigurationException($"COTEX_TOKEN_COMMAND: could not start {command}");
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var error = process.StandardError.ReadToEndAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                throw new ConfigurationException($"COTEX_TOKEN_COMMAND: {command} printed no token within 30 s.");
            }
            var token = (await output).Trim();
            if (process.ExitCode != 0 || token.Length == 0)
            {
                var why = (await error).Trim().Split('\n')[0];
                throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture,
                    $"COTEX_TOKEN_COMMAND: {command} exited with {process.ExitCode} and no token{(why.Length > 0 ? ": " + why : ".")}"));
            }
            return token;
        }
    }
}

/// <summary>The only token cotex has has expired (exit code 3).</summary>
internal sealed class TokenExpiredException(string message) : Exception(message);
