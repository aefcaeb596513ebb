namespace CoTeX.Tests.Infrastructure;

/// <summary>Retries an assertion until it passes or the time is up (for state that converges: reconnects, pools).</summary>
public static class Eventually
{
    public static async Task SucceedsAsync(Func<Task> assertion, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }
}
