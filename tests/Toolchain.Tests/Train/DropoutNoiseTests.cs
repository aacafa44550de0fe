using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Tests.Train;

/// <summary><see cref="DropoutNoise"/> must draw what libtorch's bernoulli_ + div_ draws from the same generator
/// state, bit for bit, and leave the generator where libtorch leaves it: training with it must learn what training
/// with libtorch's draws learned.</summary>
[Collection("torch")]
public class DropoutNoiseTests
{
    private static byte[] State(Generator g) { using var s = g.get_state(); return s.data<byte>().ToArray(); }

    [Theory]
    [InlineData(0.5, 3, 7, 50)]
    [InlineData(0.9, 2, 48, 41)]
    [InlineData(0.94, 1, 1, 3)]
    public void Draws_what_libtorch_draws_and_leaves_the_generator_where_it_does(double keep, long b, long m, long n)
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(2026);
        torch.rand(5, generator: g); // not at a fresh seed: mid-way through the twister's block
        var start = State(g);
        var expected = torch.empty(b, m, n).bernoulli_(keep, generator: g).div_(keep).permute(0, 2, 1).contiguous();
        var after = State(g);
        var expectedNext = torch.rand(7, generator: g);
        using (var s = torch.tensor(start, dtype: ScalarType.Byte)) g.set_state(s);
        var actual = DropoutNoise.Draw(g, keep, [b, m, n], [0, 2, 1]);
        actual.shape.Should().Equal(b, n, m);
        actual.Equals(expected).Should().BeTrue("the same multipliers, bit for bit");
        State(g).Should().Equal(after);
        torch.rand(7, generator: g).Equals(expectedNext).Should().BeTrue();
        // not a constant where there is room for both values: some dropped, some kept at 1 / keep
        if (b * m * n > 20)
        {
            actual.eq(0).any().item<bool>().Should().BeTrue();
            actual.eq((float)(1 / keep)).any().item<bool>().Should().BeTrue();
        }
    }

    [Fact]
    public void Any_other_axis_order_is_libtorchs_permute()
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator(5);
        var start = State(g);
        var expected = torch.empty(3, 4, 5).bernoulli_(0.75, generator: g).div_(0.75).permute(1, 0, 2).contiguous();
        using (var s = torch.tensor(start, dtype: ScalarType.Byte)) g.set_state(s);
        DropoutNoise.Draw(g, 0.75, [3, 4, 5], [1, 0, 2]).Equals(expected).Should().BeTrue();
    }

    [Fact]
    public void The_default_generator_is_used_without_one_and_its_state_advances()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(17);
        var expected = torch.empty(4, 5, 6).bernoulli_(0.5).div_(0.5);
        var next = torch.rand(3);
        torch.manual_seed(17);
        DropoutNoise.Draw(null, 0.5, [4, 5, 6]).Equals(expected).Should().BeTrue();
        torch.rand(3).Equals(next).Should().BeTrue();
    }
}
