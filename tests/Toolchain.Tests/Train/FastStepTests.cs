using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Tests.Train;

/// <summary>The improved Neural GPU's three ways of computing its recurrence (<see cref="ImprovedNeuralGpu.StepPath"/>):
/// the fused node with its hand-written backward (in use), the channels-last step (matrix-product convolutions, one
/// clamp per gate pair, lerp mix, autograd's backward) and the first port's conv1d step. They compute the same
/// function, so the same seed must give the same outputs, gradients and losses up to float32 rounding.</summary>
[Collection("torch")]
public class FastStepTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-fast-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The reference recipe, small: every feature of the step is on (input layer with dropout, state
    /// mask over padded bins, candidate dropout, saturation cost, gradient noise).</summary>
    private static RunConfig Small(string mode = "dngpu") => RunConfig.Preset("dngpu-ref", "dngpu", "badd") with
    {
        Maps = 12, TrainLength = 6, BatchSize = 8, Steps = 20, CheckpointEvery = 100, LogEvery = 5, SaturationMode = mode,
        TrainSetSize = 0, SaturationRebalance = 4, LrDecayEvery = 3,
    };

    [Theory]
    [InlineData(ImprovedNeuralGpu.StepPath.Fused)]
    [InlineData(ImprovedNeuralGpu.StepPath.ChannelsLast)]
    [InlineData(ImprovedNeuralGpu.StepPath.Conv1d)]
    public void A_training_mode_pass_without_gradient_frees_each_step_and_computes_the_same(ImprovedNeuralGpu.StepPath path)
    {
        // the probe's dropout-on pass: no autograd graph, so each step's intermediates are released at its end;
        // the logits and the saturation cost (carried across the steps) must be those of the pass with a graph
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var model = (ImprovedNeuralGpu)ModelRegistry.Create(Small(), TaskRegistry.Get("badd").Vocab.Count);
        model.train();
        model.Path = path;
        var rng = Rng.For(9, "fast-step", 1);
        var tokens = torch.tensor(Enumerable.Range(0, 4 * 13).Select(i => (long)(i % 13 >= 11 ? AlgorithmicTask.Pad : rng.NextInt(1, 3))).ToArray(), [4, 13]);
        torch.manual_seed(11);
        var graph = model.Run(tokens, keepStates: false);
        ModelOutput free;
        using (torch.no_grad())
        {
            torch.manual_seed(11);
            free = model.Run(tokens, keepStates: false);
        }
        (free.Logits - graph.Logits.detach()).abs().max().item<float>().Should().Be(0);
        free.Saturation!.item<float>().Should().Be(graph.Saturation!.item<float>()).And.BeGreaterThan(0);
    }

    [Theory]
    [InlineData(ImprovedNeuralGpu.StepPath.Fused)]
    [InlineData(ImprovedNeuralGpu.StepPath.ChannelsLast)]
    public void Inference_keeps_no_tensor_per_step(ImprovedNeuralGpu.StepPath path)
    {
        // a probe at 10x runs hundreds of steps: tensors kept per step would grow its memory as n^2
        torch.manual_seed(3);
        using var model = (ImprovedNeuralGpu)ModelRegistry.Create(Small(), TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        model.Path = path;
        int Live(int n)
        {
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            var tokens = torch.ones(2, n, dtype: ScalarType.Int64);
            model.Run(tokens, keepStates: false).Logits.shape.Should().Equal(2, n, TaskRegistry.Get("badd").Vocab.Count);
            return scope.DisposablesView.OfType<Tensor>().Count(x => !x.IsInvalid);
        }
        Live(40).Should().Be(Live(10));
    }

    [Theory]
    [InlineData("dngpu", ImprovedNeuralGpu.StepPath.Fused, 3)]
    [InlineData("mean", ImprovedNeuralGpu.StepPath.Fused, 3)]
    [InlineData("dngpu", ImprovedNeuralGpu.StepPath.Fused, 5)]
    [InlineData("dngpu", ImprovedNeuralGpu.StepPath.ChannelsLast, 3)]
    [InlineData("mean", ImprovedNeuralGpu.StepPath.ChannelsLast, 3)]
    public void One_training_forward_and_backward_match_the_first_ports_step(string mode, ImprovedNeuralGpu.StepPath path, int kernel)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var model = (ImprovedNeuralGpu)ModelRegistry.Create(Small(mode) with { KernelWidth = kernel }, TaskRegistry.Get("badd").Vocab.Count);
        model.train();
        var rng = Rng.For(9, "fast-step", 0);
        var tokens = torch.tensor(Enumerable.Range(0, 4 * 13).Select(i => (long)(i % 13 >= 11 ? AlgorithmicTask.Pad : rng.NextInt(1, 3))).ToArray(), [4, 13]);
        (Tensor Logits, Tensor Saturation, Dictionary<string, Tensor> Grads) Pass(ImprovedNeuralGpu.StepPath which)
        {
            model.Path = which;
            foreach (var p in model.parameters()) p.grad?.zero_();
            torch.manual_seed(11); // the same dropout masks
            var output = model.Run(tokens, keepStates: false);
            (output.Logits.square().mean() + output.Saturation! * 10).backward();
            return (output.Logits.detach().clone(), output.Saturation!.detach().clone(),
                model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
        }
        var fast = Pass(path);
        var slow = Pass(ImprovedNeuralGpu.StepPath.Conv1d);
        double Rel(Tensor a, Tensor b) => (a - b).abs().max().item<float>() / Math.Max(1e-12, b.abs().max().item<float>());
        Rel(fast.Logits, slow.Logits).Should().BeLessThan(1e-5);
        slow.Saturation.item<float>().Should().BeGreaterThan(0, "the test must exercise the saturation cost");
        Rel(fast.Saturation, slow.Saturation).Should().BeLessThan(1e-5);
        foreach (var (name, g) in slow.Grads)
            Rel(fast.Grads[name], g).Should().BeLessThan(1e-4, name);
        // and the step is not a no-op: dropout is on, so a different seed gives different logits
        model.Path = path;
        torch.manual_seed(12);
        Rel(model.Run(tokens, keepStates: false).Logits, fast.Logits).Should().BeGreaterThan(1e-3);
    }

    [Theory]
    [InlineData(ImprovedNeuralGpu.StepPath.Fused)]
    [InlineData(ImprovedNeuralGpu.StepPath.ChannelsLast)]
    public void Twenty_training_steps_give_the_first_ports_losses(ImprovedNeuralGpu.StepPath path)
    {
        List<(long Step, double Loss)> Train(ImprovedNeuralGpu.StepPath p, string dir)
        {
            using var trainer = new Trainer(Small(), dir);
            ((ImprovedNeuralGpu)trainer.Model).Path = p;
            return trainer.Run().Losses;
        }
        var fast = Train(path, Path.Combine(_dir, "fast"));
        var slow = Train(ImprovedNeuralGpu.StepPath.Conv1d, Path.Combine(_dir, "slow"));
        fast.Should().HaveCount(20);
        fast.Select(l => l.Step).Should().Equal(slow.Select(l => l.Step));
        for (int i = 0; i < fast.Count; i++)
            fast[i].Loss.Should().BeApproximately(slow[i].Loss, 1e-4 * Math.Abs(slow[i].Loss), $"step {i}");
        // the losses move: the comparison is not between two constant sequences
        fast.Select(l => l.Loss).Distinct().Count().Should().BeGreaterThan(15);
    }
}
