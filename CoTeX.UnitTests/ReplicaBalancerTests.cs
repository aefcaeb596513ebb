extern alias realtime;

using realtime::CoTeX.Realtime.Feeds;

namespace CoTeX.UnitTests;

/// <summary>How many connections a replica moves in one round, from every live replica's count.</summary>
public sealed class ReplicaBalancerTests
{
    [Theory]
    [InlineData(new[] { 100 }, 0)] // alone: nowhere to move to
    [InlineData(new[] { 0, 100 }, 0)] // below its share
    [InlineData(new[] { 100, 100 }, 0)] // balanced
    [InlineData(new[] { 110, 90 }, 0)] // 10% above its share of 100: within the tolerance
    [InlineData(new[] { 112, 88 }, 6)] // 12 above: half of it
    [InlineData(new[] { 9_700, 0 }, 2_425)] // a restarted replica: half the way to 4,850 (the rate caps it further)
    [InlineData(new[] { 3, 0 }, 1)] // share 2 (rounded up)
    [InlineData(new[] { 2, 1 }, 0)]
    [InlineData(new[] { 30, 0, 0 }, 10)] // a third replica added: share 10
    public void Moves_half_the_way_down_to_its_share_beyond_the_tolerance(int[] counts, int expected) =>
        ReplicaBalancer.Excess(counts[0], counts).Should().Be(expected);
}
