using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Toolchain.Tests.Train;

/// <summary>The DNGPU reference's recipe (preset dngpu-ref), one setting at a time, against the reference's code
/// (LUMII-Syslab/DNGPU: DNGPU_model.py, DNGPU_trainer.py, data_utils_2.py).</summary>
[Collection("torch")]
public class ReferenceRecipeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-ref-" + Guid.NewGuid().ToString("N"));
    private static readonly AlgorithmicTask Badd = TaskRegistry.Get("badd");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static RunConfig Reference(string task = "badd") => RunConfig.Preset("dngpu-ref", "dngpu", task).Validate();

    [Fact]
    public void The_reference_preset_holds_the_reference_settings_and_is_the_dngpu_default()
    {
        var c = Reference();
        (c.Maps, c.LearningRate, c.Optimizer, c.Init, c.Beta1, c.Beta2Schedule, c.Epsilon).Should().Be((48, 0.01, "adamax-dngpu", "glorot", 0.9, true, 1e-8));
        (c.AllBins, c.BinPadding, c.BinLengths, c.BinLoss, c.TrainSetSize, c.BatchSize).Should().Be((true, true, "dngpu", "mean", 10000, 32));
        (c.Dropout, c.EmbedClip, c.EmbedDropout, c.LossMask).Should().Be((0.5, true, 0.5, false));
        (c.SaturationMode, c.SaturationWeight, c.SaturationRebalance).Should().Be(("dngpu", 1e-3, 200));
        (c.GradNoise, c.GradNoiseLr, c.GradClip).Should().Be((0.0, 1e-4, 0.0));
        (c.LrDecay, c.LrDecayEvery, c.LrMinFactor, c.Steps).Should().Be((0.7, 200, 1.0 / 60, 20000));
        (c.Curriculum, c.Relaxation).Should().Be((false, 1));
        var mul = Reference("bmul");
        (mul.Maps, mul.LearningRate, mul.Dropout, mul.EmbedDropout).Should().Be((96, 0.005, 0.1, 0.1));
        RunConfig.DefaultPreset("dngpu").Should().Be("dngpu-ref");
        FluentActions.Invoking(() => RunConfig.Preset("dngpu-paper", "dngpu", "badd"))
            .Should().Throw<ArgumentException>().WithMessage("*dngpu-port*dngpu-ref*");
    }

    [Fact]
    public void Reference_bins_are_the_reference_lengths_and_hold_every_size()
    {
        var bins = Trainer.TrainingBins(Reference(), Badd);
        bins.Select(b => b.Length).Should().Equal(8, 12, 16, 20, 25, 28, 31, 36, 41);
        // odd lengths 2k+1 go into the next bin up: sizes (below, size]
        bins.Select(b => b.Size).Should().Equal(3, 5, 7, 9, 12, 13, 15, 17, 20);
        bins.Select(b => b.Below).Should().Equal(0, 3, 5, 7, 9, 12, 13, 15, 17);
        // a shorter training size keeps the reference's lengths below it and closes with its own length
        Trainer.TrainingBins(Reference() with { TrainLength = 10 }, Badd).Select(b => b.Length).Should().Equal(8, 12, 16, 20, 21);
        // without bin_lengths: one bin per default size, each of its own length, unpadded unless bin_padding
        var port = RunConfig.Preset("dngpu-port", "dngpu", "badd");
        var plain = Trainer.TrainingBins(port, Badd);
        plain.Select(b => b.Size).Should().Equal(Trainer.Bins(Badd, 20));
        plain.Should().OnlyContain(b => b.Length == 2 * b.Size + 1 && b.Below == null);
        Trainer.TrainingBins(port with { BinPadding = true }, Badd).Select(b => b.Below).Should().Equal(0, 4, 6, 8, 10, 12, 14, 16, 18);

        void Refused(string lengths, string message) =>
            FluentActions.Invoking(() => Trainer.TrainingBins(Reference() with { BinLengths = lengths }, Badd))
                .Should().Throw<ArgumentException>().WithMessage(message);
        Refused("8,8,41", "*must increase*");
        Refused("7,8,41", "*length 8 holds no size*");
        Refused("8,12", "*last bin must be the training length 41*");
        Refused("8,x,41", "*'x' is not a length*");
        FluentActions.Invoking(() => (Reference() with { BinLengths = "8,12" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("*last bin must be*", "Validate (and --dry-run) refuses it before training");
        FluentActions.Invoking(() => (port with { BinLengths = "8,41" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("*bin_lengths needs bin_padding*");
    }

    [Fact]
    public void A_fixed_training_set_draws_only_its_pool_of_examples()
    {
        var bin = new Trainer.Bin(21, 10, null);
        string Draw(int pool, Rng rng) => string.Join(",", Trainer.DrawExample(Badd, 7, bin, pool, rng).Input);
        var rngA = Rng.For(1, "a");
        var pool = Enumerable.Range(0, 300).Select(_ => Draw(3, rngA)).ToHashSet();
        pool.Should().HaveCount(3);
        var rngB = Rng.For(2, "b");
        Enumerable.Range(0, 300).Select(_ => Draw(3, rngB)).ToHashSet().Should().BeEquivalentTo(pool, "the pool depends on the seed and size only");
        var fresh = Rng.For(1, "c");
        Enumerable.Range(0, 300).Select(_ => Draw(0, fresh)).Distinct().Count().Should().BeGreaterThan(290);
    }

    [Fact]
    public void Hard_fraction_mixes_in_every_other_family_at_the_training_sizes_and_at_zero_changes_nothing()
    {
        var bin = new Trainer.Bin(41, 20, 17); // sizes 18..20, 5% any smaller size
        var plain = Rng.For(3, "draws");
        var zero = Rng.For(3, "draws");
        for (int i = 0; i < 200; i++)
            Trainer.DrawExample(Badd, 7, bin, 100, zero, hardFraction: 0).Should().BeEquivalentTo(Trainer.DrawExample(Badd, 7, bin, 100, plain),
                "hard_fraction 0 draws exactly what the recipe without it draws (the long runs resume unchanged)");

        var rng = Rng.For(4, "draws");
        var drawn = Enumerable.Range(0, 3000).Select(_ => Trainer.DrawExample(Badd, 7, bin, 10000, rng, hardFraction: 0.25)).ToList();
        double hard = drawn.Count(e => e.Family != AlgorithmicTask.Random) / (double)drawn.Count;
        hard.Should().BeInRange(0.22, 0.28, "a quarter of the examples come from the other families");
        drawn.Select(e => e.Family).Distinct().Should().BeEquivalentTo(Badd.Families.Except(Badd.OptInFamilies),
            "every family is drawn (identity_a and no_carry included) but the opt-in ones, which a run names in hard_families");
        drawn.Should().NotContain(e => e.Family == Toolchain.Suites.Tasks.ArithmeticTask.FarPowersOfTwo);
        foreach (var e in drawn)
        {
            e.Size.Should().BeInRange(1, 20);
            Badd.Check(e.Input, e.Target).Correct.Should().BeTrue("every training target is the exact sum");
        }
        FluentActions.Invoking(() => (Reference() with { HardFraction = 1.5 }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("hard_fraction must be in [0, 1]*");
    }

    [Fact]
    public void Hard_families_draws_the_named_families_in_proportion_to_their_weights_and_refuses_unknown_names()
    {
        var bin = new Trainer.Bin(41, 20, 17);
        var config = Reference() with { HardFraction = 0.5, HardFamilies = "powers_of_two:3, carry" };
        var table = Trainer.HardFamilyTable(config.Validate(), Badd);
        table.Should().Equal("powers_of_two", "powers_of_two", "powers_of_two", "carry");

        var rng = Rng.For(5, "draws");
        var drawn = Enumerable.Range(0, 4000).Select(_ => Trainer.DrawExample(Badd, 7, bin, 0, rng, 0.5, table)).ToList();
        drawn.Select(e => e.Family).Distinct().Should().BeEquivalentTo([AlgorithmicTask.Random, "powers_of_two", "carry"]);
        double Share(string family) => drawn.Count(e => e.Family == family) / (double)drawn.Count;
        Share("powers_of_two").Should().BeInRange(0.34, 0.41, "half the examples are hard, three quarters of those powers of two");
        Share("carry").Should().BeInRange(0.10, 0.15);
        foreach (var e in drawn) Badd.Check(e.Input, e.Target).Correct.Should().BeTrue();

        var plain = Rng.For(6, "draws");
        var empty = Rng.For(6, "draws");
        for (int i = 0; i < 200; i++)
            Trainer.DrawExample(Badd, 7, bin, 0, empty, 0.25, []).Should().BeEquivalentTo(Trainer.DrawExample(Badd, 7, bin, 0, plain, 0.25),
                "an empty hard_families draws every other family equally, as before the setting existed");

        FluentActions.Invoking(() => (Reference() with { HardFraction = 0.5, HardFamilies = "powers_of_three" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("hard_families: badd has no family 'powers_of_three'*");
        FluentActions.Invoking(() => (Reference() with { HardFraction = 0.5, HardFamilies = "carry:0" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("hard_families: 'carry:0' is not a family name with an optional weight*");
        FluentActions.Invoking(() => (Reference() with { HardFraction = 0.5, HardFamilies = "carry,carry:2" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("hard_families: 'carry' is named twice*");
        FluentActions.Invoking(() => (Reference() with { HardFamilies = "carry" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("hard_families needs hard_fraction above 0*");
    }

    [Fact]
    public void Reference_saturation_cost_is_the_sum_over_maps_positions_and_steps_over_n_squared_B()
    {
        foreach (var mode in new[] { "dngpu", "mean" })
        {
            var config = Reference() with { Maps = 6, Dropout = 0, EmbedDropout = 0, SaturationMode = mode };
            using var model = ModelRegistry.Create(config, Badd.Vocab.Count);
            using var scope = torch.NewDisposeScope();
            using (torch.no_grad())
                foreach (var (_, param) in model.named_parameters()) param.mul_(3); // push pre-activations past 0.9
            var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
            const int B = 2, n = 3;
            var tokens = torch.tensor(new long[] { 2, 3, 1, 1, 3, 2 }, [B, n]);
            model.train();
            var output = model.Run(tokens, keepStates: true);
            using var noGrad = torch.no_grad();
            Tensor Over(Tensor x) => F.relu(x.abs() - 0.9);
            int m = config.Maps;
            // the reference: input layer (hard_tanh, counted n times) and every step's three pre-activations
            var embedded = p["embedding"].index_select(0, tokens.reshape(-1)).reshape(B, n, m);
            double sum = Over(embedded).sum().item<float>() * n, mean = Over(embedded).mean().item<float>() * n;
            for (int t = 0; t < n; t++)
            {
                var s = output.States![.., t].permute(0, 2, 1);
                var gatesPre = F.conv1d(s, p["gate_weight"], p["gate_bias"], padding: 1);
                var reset = (gatesPre.narrow(1, 0, m) * 0.5 + 0.5).clamp(0, 1);
                var candPre = F.conv1d(reset * s, p["cand_weight"], p["cand_bias"], padding: 1);
                sum += Over(gatesPre).sum().item<float>() + Over(candPre).sum().item<float>();
                mean += Over(gatesPre).mean().item<float>() + Over(candPre).mean().item<float>();
            }
            double expected = mode == "dngpu" ? sum / (n * n * B) : mean / n;
            sum.Should().BeGreaterThan(1, "the test needs saturated pre-activations");
            output.Saturation!.item<float>().Should().BeApproximately((float)expected, (float)(1e-5 * expected), mode);
        }
    }

    [Fact]
    public void Reference_saturation_weight_is_lr_times_loss_over_cost_capped_at_its_start()
    {
        var c = Reference();
        // weight = min(lr * avgLoss / avgSat, 1e-3); scale = weight / 1e-3
        Trainer.RebalancedSaturationScale(c, 0.01, 0.5, 10, 1).Should().BeApproximately(0.5, 1e-12);
        Trainer.RebalancedSaturationScale(c, 0.01, 1, 1, 0.2).Should().Be(1, "capped at the starting weight");
        Trainer.RebalancedSaturationScale(c, 0.01, 1, 0, 0.2).Should().Be(1, "no saturation: capped");
        Trainer.RebalancedSaturationScale(c, 0.01, 0, 1, 0.2).Should().BeApproximately(1e-17, 1e-25, "at least 1e-20");
        // this project's first port: avgLoss / avgSat, kept when there is no saturation
        var port = RunConfig.Preset("dngpu-port", "dngpu", "badd");
        Trainer.RebalancedSaturationScale(port, 0.01, 0.5, 10, 7).Should().BeApproximately(0.05, 1e-12);
        Trainer.RebalancedSaturationScale(port, 0.01, 0.5, 0, 7).Should().Be(7);
    }

    [Fact]
    public void Bin_loss_mean_is_the_summed_loss_over_the_number_of_bins()
    {
        var tiny = RunConfig.Preset("tiny", "dngpu", "badd") with { Steps = 1, LogEvery = 1, CheckpointEvery = 1 };
        double First(RunConfig c, string name)
        {
            using var t = new Trainer(c, Path.Combine(_dir, name));
            return t.Run().Losses[0].Loss;
        }
        int bins = Trainer.TrainingBins(tiny, Badd).Length;
        bins.Should().BeGreaterThan(1);
        First(tiny with { BinLoss = "mean" }, "mean").Should().BeApproximately(First(tiny, "sum") / bins, 1e-5);
    }

    [Fact]
    public void Reference_gradient_noise_is_truncated_normal_scaled_by_the_learning_rate()
    {
        var x = Trainer.TruncatedNormal(torch.zeros(200_000));
        x.abs().max().item<float>().Should().BeLessThanOrEqualTo(2f);
        x.mean().item<float>().Should().BeInRange(-0.01f, 0.01f);
        x.std().item<float>().Should().BeInRange(0.87f, 0.89f, "a unit normal cut at 2 deviations has std 0.880");

        var tiny = RunConfig.Preset("tiny", "dngpu", "badd") with { Steps = 2, LogEvery = 1, CheckpointEvery = 2 };
        List<double> Losses(RunConfig c, string name)
        {
            using var t = new Trainer(c, Path.Combine(_dir, name));
            return [.. t.Run().Losses.Select(l => l.Loss)];
        }
        var quiet = Losses(tiny, "quiet");
        Losses(tiny with { GradNoiseLr = 0 }, "zero").Should().Equal(quiet);
        var loud = Losses(tiny with { GradNoiseLr = 1000 }, "loud"); // noise of 10 x N(0,1) per element at lr 0.01
        loud[0].Should().Be(quiet[0]);
        Math.Abs(loud[1] - quiet[1]).Should().BeGreaterThan(1e-3, "the noise reached the parameters");
    }

    [Fact]
    public void The_reference_recipe_trains_and_resumes_exactly()
    {
        var c = Reference() with { Maps = 8, TrainLength = 4, Steps = 6, LogEvery = 1, CheckpointEvery = 3, SaturationRebalance = 2, LrDecayEvery = 2 };
        Trainer.TrainingBins(c, Badd).Select(b => b.Length).Should().Equal(8, 9);
        List<(long, double)> whole;
        using (var t = new Trainer(c, Path.Combine(_dir, "whole"))) whole = t.Run().Losses;
        whole.Should().HaveCount(6).And.OnlyContain(l => double.IsFinite(l.Item2));
        string split = Path.Combine(_dir, "split");
        using (var t = new Trainer(c with { Steps = 3 }, split)) t.Run();
        using (var t = new Trainer(c, split))
        {
            t.TryResume().Should().BeTrue();
            t.Run().Losses.Should().Equal(whole.Skip(3));
        }
    }
}
