using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Tests.Train;

/// <summary>TorchSharp tests share one native runtime; run them one at a time.</summary>
[CollectionDefinition("torch", DisableParallelization = true)]
public sealed class TorchCollection;

[Collection("torch")]
public class TrainTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-train-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static RunConfig Tiny(string arch, string task = "copy") => RunConfig.Preset("tiny", arch, task);

    public static TheoryData<string> Architectures()
    {
        var d = new TheoryData<string>();
        foreach (var n in ModelRegistry.Names) d.Add(n);
        return d;
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Every_architecture_maps_tokens_to_logits_at_every_length(string arch)
    {
        var task = TaskRegistry.Get("badd");
        var config = Tiny(arch, "badd") with { Relaxation = arch == "ngpu" ? 3 : 1 };
        using var model = ModelRegistry.Create(config.Validate(), task.Vocab.Count);
        model.eval();
        using var _ = torch.no_grad();
        foreach (int size in new[] { 1, 3, 20, 50 })
        {
            using var scope = torch.NewDisposeScope();
            int length = task.LengthForSize(size);
            var tokens = torch.randint(0, task.Vocab.Count, [3, length], dtype: ScalarType.Int64);
            var output = model.Run(tokens, keepStates: true);
            output.Logits.shape.Should().Equal(3, length, task.Vocab.Count);
            output.States!.shape[0].Should().Be(3);
            output.States.shape[2].Should().Be(length, "states are [batch, steps, positions, channels]");
            float.IsFinite(output.Logits.abs().sum().item<float>()).Should().BeTrue();
        }
    }

    [Fact]
    public void Progress_eta_counts_hours_past_a_day_instead_of_wrapping()
    {
        Trainer.Eta(305).Should().Be("00:05:05");
        Trainer.Eta(27 * 3600 + 60 + 28).Should().Be("27:01:28", "a 27-hour run is not 3 hours from done");
        Trainer.Eta(-5).Should().Be("00:00:00");
    }

    [Fact]
    public void Neural_gpu_states_have_one_image_per_step_and_the_documented_channels()
    {
        var config = Tiny("ngpu") with { Maps = 6, Width = 3 };
        using var model = ModelRegistry.Create(config, 3);
        using var _ = torch.no_grad();
        var output = model.Run(torch.ones(2, 7, dtype: ScalarType.Int64), keepStates: true);
        output.States!.shape.Should().Equal(2, 8, 7, 18); // n + 1 images of [n, w*m]
    }

    [Fact]
    public void Tiny_dngpu_learns_copy_to_full_sequence_accuracy_at_its_training_length()
    {
        var config = Tiny("dngpu", "copy") with { Maps = 16, BatchSize = 16, Steps = 200, LogEvery = 50, CheckpointEvery = 200, ProbeEvery = 100, ProbeSizes = "6, 30" };
        var log = new StringWriter();
        using var trainer = new Trainer(config, _dir, log);
        trainer.Run();
        var task = TaskRegistry.Get("copy");
        var model = trainer.Model;
        model.eval();
        using var _ = torch.no_grad();
        var rng = new Rng(12345);
        int correct = 0, total = 128;
        for (int i = 0; i < total; i++)
        {
            using var scope = torch.NewDisposeScope();
            var ex = task.Generate(config.TrainLength, "random", rng);
            var logits = model.forward(torch.tensor(ex.Input.Select(t => (long)t).ToArray(), [1, ex.Length]));
            var predicted = logits.argmax(-1).data<long>().Select(v => (int)v).ToArray();
            if (task.Check(ex.Input, predicted).Correct) correct++;
        }
        correct.Should().Be(total, "a tiny dngpu must learn copy exactly at its training length");

        // the length probe ran at steps 100 and 200 and agrees with the exact check above at the training size
        var probes = File.ReadAllLines(Path.Combine(_dir, "metrics.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
            .Where(n => n["probe"] is not null).ToList();
        probes.Select(n => n["step"]!.GetValue<long>()).Should().Equal(100, 200);
        probes[^1]["probe"]!["6"]!["sequence_accuracy"]!.GetValue<double>().Should().Be(1.0);
        probes[^1]["probe"]!["30"]!["samples"]!.GetValue<int>().Should().Be(32);
        log.ToString().Should().Contain("probe     200  size 6 (x1) seq 100.0%").And.Contain("size 30 (x5)");
    }

    [Fact]
    public void A_resumed_run_repeats_the_uninterrupted_losses()
    {
        var config = Tiny("dngpu", "badd") with { Steps = 12, CheckpointEvery = 4, LogEvery = 4, Dropout = 0.2, GradNoise = 1e-3, SaturationWeight = 1e-3, SaturationRebalance = 3, Beta2Schedule = true, LrDecay = 0.5, LrDecayEvery = 1 };
        List<(long, double)> straight;
        using (var t = new Trainer(config, Path.Combine(_dir, "a"))) straight = t.Run().Losses;

        string b = Path.Combine(_dir, "b");
        using (var t = new Trainer(config with { Steps = 6 }, b)) t.Run();  // "killed" after step 6
        File.Delete(Path.Combine(b, Checkpoint.FileName(6)));             // ...before its step-6 checkpoint was complete
        List<(long, double)> resumed;
        using (var t = new Trainer(config, b))
        {
            t.TryResume().Should().BeTrue();
            resumed = t.Run().Losses;
        }
        resumed.First().Item1.Should().Be(4, "the newest intact checkpoint is the one at step 4");
        var expected = straight.Where(s => s.Item1 >= 4).ToList();
        resumed.Select(x => x.Item1).Should().Equal(expected.Select(x => x.Item1));
        for (int i = 0; i < expected.Count; i++)
            resumed[i].Item2.Should().BeApproximately(expected[i].Item2, 1e-5);
    }

    [Fact]
    public void A_warm_start_takes_the_weights_and_optimizer_state_of_another_run_and_reads_them_once()
    {
        var source = Tiny("dngpu", "badd") with { TrainLength = 4, Steps = 6, CheckpointEvery = 6, LogEvery = 6, SaturationWeight = 1e-3, SaturationMode = "mean", SaturationRebalance = 3 };
        string a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b");
        using (var t = new Trainer(source, a)) t.Run();
        string from = Path.Combine(_dir, "from.tckpt");
        File.Copy(Path.Combine(a, Checkpoint.FileName(6)), from);

        // a longer training length and another seed: only the shapes must agree
        var warm = source with { TrainLength = 6, Seed = 7, Steps = 0, InitFrom = from };
        var log = new StringWriter();
        using (var t = new Trainer(warm, b, log)) t.Run();
        log.ToString().Should().Contain($"init_from: starting from {from} (task badd, train length 4, step 6, seed 1; weights and optimizer state, 6 optimizer steps)");
        var started = Checkpoint.Load(Path.Combine(b, Checkpoint.FileName(0)));
        var original = Checkpoint.Load(from);
        TrainerState.FromJson(started.State).Step.Should().Be(0, "the new run counts its own steps");
        TrainerState.FromJson(started.State).OptimizerSteps.Should().Be(6, "AdaMax goes on where the source stopped");
        TrainerState.FromJson(original.State).SaturationScale.Should().NotBe(1.0, "the source re-balanced its weight");
        TrainerState.FromJson(started.State).SaturationScale.Should().Be(TrainerState.FromJson(original.State).SaturationScale,
            "the saturation weight goes on from the source's re-balanced one, not from the cap");
        TrainerState.FromJson(started.State).InitFrom.Should().Be(new WarmStartOrigin(original.FileHash!, "badd", 4, 1, 6,
            TrainerState.FromJson(original.State).WallSeconds) { SourceInitFrom = "" }, "the origin, with its hash, stays in every checkpoint of the run (its source started fresh)");
        started.Tensors.Keys.Should().BeEquivalentTo(original.Tensors.Keys);
        foreach (var (name, tensor) in original.Tensors)
            started.Tensors[name].allclose(tensor, rtol: 0, atol: 0).Should().BeTrue($"{name} is copied exactly");
        started.Config.InitFrom.Should().Be(from, "the checkpoint (and so the card) names where the run started");

        // a resume continues from the run's own checkpoints: the source is not read again
        File.Delete(from);
        using (var t = new Trainer(warm with { Steps = 2 }, b))
        {
            t.TryResume().Should().BeTrue();
            t.Run().Losses.Should().NotBeEmpty();
            t.Step.Should().Be(2);
        }
    }

    [Fact]
    public void A_chain_of_warm_starts_is_recorded_in_the_state_and_known_after_the_earlier_files_are_gone()
    {
        var config = Tiny("dngpu", "badd") with { TrainLength = 4, Steps = 2, CheckpointEvery = 2, LogEvery = 2 };
        string a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b"), c = Path.Combine(_dir, "c");
        using (var t = new Trainer(config, a)) t.Run();
        string fromA = Path.Combine(a, Checkpoint.FileName(2)), fromB = Path.Combine(b, Checkpoint.FileName(2));
        using (var t = new Trainer(config with { Seed = 2, InitFrom = fromA }, b)) t.Run();
        using (var t = new Trainer(config with { Seed = 3, InitFrom = fromB }, c)) t.Run();
        string hashA = Checkpoint.Load(fromA).FileHash!, hashB = Checkpoint.Load(fromB).FileHash!;
        var last = Checkpoint.Load(Path.Combine(c, Checkpoint.FileName(2)));

        var origin = TrainerState.FromJson(last.State).InitFrom!;
        origin.Sha256.Should().Be(hashB);
        origin.Seed.Should().Be(2UL);
        origin.SourceInitFrom.Should().Be(fromA, "the source's own init_from is recorded");
        origin.From!.Sha256.Should().Be(hashA);
        origin.From.SourceInitFrom.Should().Be("", "a started fresh");
        origin.From.From.Should().BeNull();

        var read = WarmStartChain.Resolve(last);
        read.Stages.Select(s => s.Path).Should().Equal(fromB, fromA);
        read.Stages.Should().OnlyContain(s => s.Config != null, "both files are there with the recorded hashes");
        read.Complete.Should().BeTrue();

        // with the earlier runs' files gone, the recorded chain still names every stage (settings unread)
        Directory.Delete(a, recursive: true);
        Directory.Delete(b, recursive: true);
        var recorded = WarmStartChain.Resolve(last);
        recorded.Stages.Select(s => (s.Path, s.Origin.Sha256, s.Origin.Step)).Should().Equal((fromB, hashB, 2L), (fromA, hashA, 2L));
        recorded.Stages.Should().OnlyContain(s => s.Config == null);
        recorded.End.Should().Be(WarmStartChain.FreshStart);

        // an origin written before chains were recorded, whose file is gone: the chain says where it stops knowing
        var old = new WarmStartOrigin(hashB, "badd", 4, 2, 2, 1.0);
        var unknown = WarmStartChain.Resolve(old, fromB);
        unknown.Stages.Should().HaveCount(1);
        unknown.Complete.Should().BeFalse();
        unknown.End.Should().Be($"unknown before the stage at step 2: {fromB} is not here");

        // a file at the path that is not the recorded one is not read as the stage
        Directory.CreateDirectory(b);
        File.Copy(Path.Combine(c, Checkpoint.FileName(2)), fromB);
        var other = WarmStartChain.Resolve(old, fromB);
        other.Stages[0].Config.Should().BeNull();
        other.End.Should().StartWith($"unknown before the stage at step 2: {fromB} is not the recorded file");
    }

    [Fact]
    public void Init_update_scale_multiplies_the_loaded_update_gate_once_and_leaves_every_other_weight_as_loaded()
    {
        var source = Tiny("dngpu", "badd") with { TrainLength = 4, Steps = 3, CheckpointEvery = 3, LogEvery = 3 };
        using (var t = new Trainer(source, Path.Combine(_dir, "a"))) t.Run();
        string from = Path.Combine(_dir, "a", Checkpoint.FileName(3));
        var sharpened = source with { Steps = 0, InitFrom = from, InitUpdateScale = 1.5 };
        var log = new StringWriter();
        using (var t = new Trainer(sharpened.Validate(), Path.Combine(_dir, "b"), log)) t.Run();
        log.ToString().Should().Contain("init_from: the update gate's pre-activation scaled by 1.5 (init_update_scale)");
        var original = Checkpoint.Load(from);
        var started = Checkpoint.Load(Path.Combine(_dir, "b", Checkpoint.FileName(0)));
        long m = source.Maps;
        foreach (var (name, tensor) in original.Tensors.Where(kv => kv.Key.StartsWith("model/", StringComparison.Ordinal)))
        {
            var got = started.Tensors[name];
            if (name is "model/gate_weight" or "model/gate_bias")
            {
                got.narrow(0, 0, m).allclose(tensor.narrow(0, 0, m), rtol: 0, atol: 0).Should().BeTrue($"{name}'s reset rows are as loaded");
                got.narrow(0, m, m).allclose(tensor.narrow(0, m, m) * 1.5, rtol: 1e-6, atol: 0).Should().BeTrue($"{name}'s update rows are scaled");
                got.narrow(0, m, m).allclose(tensor.narrow(0, m, m), rtol: 0, atol: 0).Should().BeFalse($"{name}'s update rows changed");
            }
            else got.allclose(tensor, rtol: 0, atol: 0).Should().BeTrue($"{name} is as loaded");
        }
        started.Config.InitUpdateScale.Should().Be(1.5, "the checkpoint (and so the card) records the scale");

        // a resume does not scale again: the run's own checkpoint is loaded as it is
        using (var t = new Trainer(sharpened, Path.Combine(_dir, "b")))
        {
            t.TryResume().Should().BeTrue();
            t.Run();
        }
        var again = Checkpoint.Load(Path.Combine(_dir, "b", Checkpoint.FileName(0)));
        again.Tensors["model/gate_bias"].allclose(started.Tensors["model/gate_bias"], rtol: 0, atol: 0).Should().BeTrue();

        // refused without a warm start, on another architecture, or when not positive
        FluentActions.Invoking(() => (source with { InitUpdateScale = 1.5 }).Validate()).Should().Throw<ArgumentException>().WithMessage("*init_update_scale*needs arch dngpu and init_from*");
        FluentActions.Invoking(() => (Tiny("gru", "badd") with { InitFrom = from, InitUpdateScale = 1.5 }).Validate()).Should().Throw<ArgumentException>().WithMessage("*needs arch dngpu*");
        FluentActions.Invoking(() => (sharpened with { InitUpdateScale = 0 }).Validate()).Should().Throw<ArgumentException>().WithMessage("*init_update_scale must be a positive number*");
        FluentActions.Invoking(() => (sharpened with { InitUpdateScale = double.NaN }).Validate()).Should().Throw<ArgumentException>().WithMessage("*init_update_scale must be a positive number*");
    }

    [Fact]
    public void A_warm_start_from_a_missing_file_or_another_architecture_is_refused_with_the_file_named()
    {
        var config = Tiny("dngpu", "badd") with { Steps = 1, InitFrom = Path.Combine(_dir, "nowhere.tckpt") };
        using (var t = new Trainer(config, Path.Combine(_dir, "a")))
            t.Invoking(x => x.Run()).Should().Throw<CheckpointException>()
                .WithMessage($"{config.InitFrom}: init_from names no checkpoint file*");
        Checkpoint.InDirectory(Path.Combine(_dir, "a")).Should().BeEmpty("nothing is written before the source is read");

        var gru = Tiny("gru", "badd") with { Steps = 1, CheckpointEvery = 1 };
        using (var t = new Trainer(gru, Path.Combine(_dir, "gru"))) t.Run();
        var wrong = config with { InitFrom = Path.Combine(_dir, "gru", Checkpoint.FileName(1)) };
        using (var t = new Trainer(wrong, Path.Combine(_dir, "b")))
            t.Invoking(x => x.Run()).Should().Throw<CheckpointException>()
                .WithMessage("*init_from holds a 'gru' model, but this run trains 'dngpu'*");
    }

    [Fact]
    public void A_resume_after_a_kill_keeps_each_step_once_in_the_metrics_log()
    {
        var config = Tiny("dngpu", "copy") with { Steps = 6, LogEvery = 1, CheckpointEvery = 4 };
        using (var t = new Trainer(config, _dir)) t.Run();
        File.Delete(Path.Combine(_dir, Checkpoint.FileName(6)));  // killed after logging steps 5 and 6, before their checkpoint
        string path = Path.Combine(_dir, "metrics.jsonl");
        File.AppendAllText(path, "{\"step\": 7, \"lo");              // and in the middle of a line
        var log = new StringWriter();
        using (var t = new Trainer(config with { Steps = 8 }, _dir, log))
        {
            t.TryResume().Should().BeTrue();
            t.Run();
        }
        var steps = File.ReadAllLines(path).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["step"]!.GetValue<long>()).ToList();
        steps.Should().Equal(1, 2, 3, 4, 5, 6, 7, 8);
        log.ToString().Should().Contain("resume: 3 line(s) of metrics.jsonl past step 4 dropped");
        Trainer.TrimMetrics(path, 8).Should().Be(0, "nothing past the last step: the file is left alone");
    }

    [Fact]
    public void The_probe_also_grades_with_dropout_on_for_a_model_that_trains_with_it_and_does_not_disturb_training()
    {
        var config = Tiny("dngpu", "badd") with { Steps = 6, LogEvery = 1, CheckpointEvery = 6, Dropout = 0.5, EmbedClip = true, EmbedDropout = 0.5 };
        List<(long, double)> plain, probed;
        using (var t = new Trainer(config, Path.Combine(_dir, "plain"))) plain = t.Run().Losses;
        var log = new StringWriter();
        using (var t = new Trainer(config with { ProbeEvery = 2, ProbeSizes = "6,12" }, Path.Combine(_dir, "probed"), log))
        {
            probed = t.Run().Losses;
            // the dropout-off result is the inference model's: the same weights without dropout grade the same
            var eval = t.Probe();
            using var noDropout = new Trainer(config with { Dropout = 0, EmbedDropout = 0, ProbeSizes = "6,12" }, Path.Combine(_dir, "copy"));
            noDropout.Model.load_state_dict(t.Model.state_dict());
            var reference = noDropout.Probe();
            reference.Select(p => (p.Seq, p.Sym)).Should().Equal(eval.Select(p => (p.Seq, p.Sym)));
            reference.Should().OnlyContain(p => p.Dropout == null, "a model without dropout has no dropout-on grade");
            eval.Should().OnlyContain(p => p.Dropout!.Value.Sym >= 0 && p.Dropout.Value.Sym <= 1 && p.Dropout.Value.Seq >= 0 && p.Dropout.Value.Seq <= p.Dropout.Value.Sym);
            eval.Should().Contain(p => p.Dropout!.Value.Sym != p.Sym, "half the candidate and input maps dropped changes some answers of an untrained model");
        }
        probed.Should().Equal(plain, "the probe's draws must not change the training run's");
        var records = File.ReadAllLines(Path.Combine(_dir, "probed", "metrics.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
            .Where(n => n["probe"] is not null).ToList();
        records.Select(n => n["step"]!.GetValue<long>()).Should().Equal(2, 4, 6);
        records[^1]["probe"]!["12"]!["dropout_sequence_accuracy"].Should().NotBeNull();
        records[^1]["probe"]!["12"]!["dropout_symbol_accuracy"]!.GetValue<double>().Should().BeInRange(0, 1);
        log.ToString().Should().Contain("(dropout on: seq ");
    }

    [Theory]
    [InlineData(new[] { 1.0, 0.9, 0.8 }, false)]  // improving
    [InlineData(new[] { 0.5, 0.6, 0.7 }, true)]   // both later windows worse than the oldest
    [InlineData(new[] { 0.5, 0.6, 0.4 }, false)]  // the newest window improved
    [InlineData(new[] { 0.5, 0.6 }, false)]       // not enough windows yet
    public void Plateau_decay_fires_only_when_two_windows_failed_to_beat_the_one_before(double[] windows, bool expected) =>
        Trainer.NoProgress(windows).Should().Be(expected);

    [Fact]
    public void Plateau_decay_lowers_the_learning_rate_and_a_resume_may_change_the_decay_but_not_the_model()
    {
        // learning rate 0: the loss cannot improve, so every window after the third triggers the decay
        var config = Tiny("dngpu", "copy") with { Steps = 30, LogEvery = 1, CheckpointEvery = 10, LearningRate = 1e-12, LrDecay = 0.5, LrDecayEvery = 1, LrMinFactor = 0.2 };
        var log = new StringWriter();
        using (var t = new Trainer(config, _dir, log)) t.Run();
        var lines = File.ReadAllLines(Path.Combine(_dir, "metrics.jsonl"));
        var rates = lines.Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["learning_rate"]!.GetValue<double>()).ToList();
        rates.Last().Should().BeLessThan(rates.First(), log.ToString());
        rates.Min().Should().BeGreaterThanOrEqualTo(1e-12 * 0.2 * 0.999, "never below learning_rate * lr_min_factor");
        var resumeLog = new StringWriter();
        using (var t = new Trainer(config with { Steps = 40, LrDecay = 0.9, GradNoise = 0.01, ProbeEvery = 5, ProbeSizes = "12" }, _dir, resumeLog)) t.TryResume().Should().BeTrue();
        resumeLog.ToString().Should().Contain("gradient noise changes from 0 to 0.01 at step 30");
        var stepsLog = new StringWriter();
        using (var t = new Trainer(config with { Steps = 40, InferenceStepFactor = 1.5 }, _dir, stepsLog)) t.TryResume().Should().BeTrue();
        stepsLog.ToString().Should().Contain("inference step factor changes from 1 to 1.5 at step 30");
        using (var t = new Trainer(config with { Steps = 40, Maps = 12 }, _dir))
            t.Invoking(x => x.TryResume()).Should().Throw<ArgumentException>().WithMessage("*different configuration*");
    }

    [Fact]
    public void Relaxation_sets_are_averaged_into_one_parameter_set()
    {
        var config = Tiny("ngpu", "copy") with { Relaxation = 3, Steps = 6, CheckpointEvery = 6, LogEvery = 6, RelaxationPull = 0.0 };
        using var trainer = new Trainer(config, _dir);
        trainer.Model.ParameterSets.Should().Be(3);
        Tensor? meanBefore = null;
        trainer.AfterStep = step =>
        {
            if (step == 5)
            {
                var gw = trainer.Model.named_parameters().Single(p => p.name == "gate_weight").parameter;
                meanBefore = gw.detach().mean([0], keepdim: true).clone().DetachFromDisposeScope();
                (gw[0] - gw[1]).abs().max().item<float>().Should().BeGreaterThan(0, "the sets drift apart while training");
            }
        };
        var result = trainer.Run();
        // the last step changes the parameters, so compare against a fresh average of the final sets: the model
        // has exactly one set and it is the mean of what the sets were
        trainer.Model.ParameterSets.Should().Be(1);
        result.Events.Should().Contain(e => e.Contains("averaged"));
        var averaged = trainer.Model.named_parameters().Single(p => p.name == "gate_weight").parameter;
        averaged.shape[0].Should().Be(1);
        meanBefore.Should().NotBeNull();
        // reload the final checkpoint: a single set, and it runs
        var ckpt = Checkpoint.LoadLatest(_dir);
        ckpt.Tensors["model/gate_weight"].shape[0].Should().Be(1);
        using var reloaded = ModelRegistry.Create(config, 3);
        Trainer.LoadCheckpoint(reloaded, ckpt, "test"); // averages the fresh model's sets to match the checkpoint
        reloaded.ParameterSets.Should().Be(1);

        // extending the finished run goes on with the averaged set, and says so
        var log = new StringWriter();
        using var extended = new Trainer(config with { Steps = 8 }, _dir, log);
        extended.TryResume().Should().BeTrue();
        extended.Model.ParameterSets.Should().Be(1);
        log.ToString().Should().Contain("resume: warning: ckpt-00000006.tckpt holds the relaxation sets averaged at the end of its run (step 6)");
    }

    [Fact]
    public void Averaging_gives_the_elementwise_mean_of_the_sets()
    {
        var config = Tiny("ngpu", "copy") with { Relaxation = 4 };
        using var model = ModelRegistry.Create(config, 3);
        var gw = model.named_parameters().Single(p => p.name == "cand_weight").parameter;
        using (torch.no_grad()) gw.copy_(torch.randn(gw.shape));
        var expected = gw.detach().mean([0], keepdim: true).clone();
        model.AverageParameterSets();
        model.ParameterSets.Should().Be(1);
        var after = model.named_parameters().Single(p => p.name == "cand_weight").parameter;
        (after - expected).abs().max().item<float>().Should().BeLessThan(1e-6f);
        model.named_parameters().Select(p => p.name).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void A_nan_loss_restores_the_last_checkpoint_with_a_lower_learning_rate()
    {
        var config = Tiny("dngpu", "copy") with { Steps = 10, CheckpointEvery = 4, LogEvery = 5 };
        var log = new StringWriter();
        using var trainer = new Trainer(config, _dir, log);
        int poisoned = 0;
        trainer.PoisonLoss = step => step == 6 && poisoned++ == 0;
        var result = trainer.Run();
        result.Events.Should().ContainSingle(e => e.Contains("NaN") && e.Contains(Checkpoint.FileName(4)));
        log.ToString().Should().Contain("lowered the learning rate to 0.005");
        result.Losses.Select(l => l.Step).Should().Equal(0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9);
        result.Losses.Should().OnlyContain(l => double.IsFinite(l.Loss));
        foreach (var (_, p) in trainer.Model.named_parameters())
            float.IsFinite(p.abs().sum().item<float>()).Should().BeTrue();
        // step 5 was logged, then trained again after the recovery: the log has it once
        File.ReadAllLines(Path.Combine(_dir, "metrics.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["step"]!.GetValue<long>())
            .Should().Equal(5, 10);
        log.ToString().Should().Contain("NaN recovery: 1 line(s) of metrics.jsonl past step 4 dropped");
    }

    [Fact]
    public void Memory_stays_flat_across_steps()
    {
        var config = Tiny("dngpu", "copy") with { Steps = 300, CheckpointEvery = 100, LogEvery = 100, GradNoise = 1e-3, SaturationWeight = 1e-3, Dropout = 0.1 };
        using var trainer = new Trainer(config, _dir);
        long at50 = 0, at300 = 0;
        trainer.AfterStep = step =>
        {
            if (step == 50) at50 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            if (step == 300) at300 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        };
        trainer.Run();
        at50.Should().BeGreaterThan(0);
        at300.Should().Be(at50, "every step's tensors are disposed with its scope");
    }

    [Fact]
    public void Truncated_corrupt_and_foreign_checkpoints_are_refused_clearly()
    {
        var config = Tiny("dngpu", "copy") with { Steps = 2, CheckpointEvery = 2 };
        using (var t = new Trainer(config, _dir)) t.Run();
        string good = Checkpoint.InDirectory(_dir)[0];
        Checkpoint.Load(good).Config.Should().Be(config);

        string truncated = Path.Combine(_dir, "truncated.tckpt");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        FluentActions.Invoking(() => Checkpoint.Load(truncated)).Should().Throw<CheckpointException>().WithMessage($"{truncated}: *truncated or corrupt*");

        string flipped = Path.Combine(_dir, "flipped.tckpt");
        bytes[bytes.Length / 2] ^= 0x55;
        File.WriteAllBytes(flipped, bytes);
        FluentActions.Invoking(() => Checkpoint.Load(flipped)).Should().Throw<CheckpointException>().WithMessage("*checksum*");

        string foreign = Path.Combine(_dir, "model.onnx");
        File.WriteAllText(foreign, "not a checkpoint at all, just text");
        FluentActions.Invoking(() => Checkpoint.Load(foreign)).Should().Throw<CheckpointException>().WithMessage("*not a Toolchain checkpoint*");
    }

    [Fact]
    public void The_reference_adamax_clips_each_gradient_element_to_the_running_max_and_skips_bias_correction()
    {
        using var p = new TorchSharp.Modules.Parameter(torch.tensor(new float[] { 1f, 1f, 1f }));
        var optimizer = new Optimizer("adamax-dngpu");
        void StepWith(float[] grad)
        {
            p.grad?.zero_();
            (p * torch.tensor(grad)).sum().backward(); // d/dp = grad
            optimizer.Step([("w", p)], lr: 0.1, beta1: 0.9, beta2: 0.5, eps: 1e-8);
        }
        // step 1: u = 0, so every element is clipped to +-1e-4: m = 1e-5 * sign, u = 1e-4, update lr * m/u = 0.01
        StepWith([5f, -3f, 0f]);
        var after1 = p.data<float>().ToArray();
        after1[0].Should().BeApproximately(1f - 0.01f, 1e-5f);
        after1[1].Should().BeApproximately(1f + 0.01f, 1e-5f);
        after1[2].Should().Be(1f);
        // step 2: the limit is 1.2 * 1e-4 + 1e-4 = 2.2e-4; element 0: m = 0.9e-5 + 0.1 * 2.2e-4 = 3.1e-5, u = 2.2e-4
        StepWith([5f, -3f, 0f]);
        p.data<float>()[0].Should().BeApproximately(after1[0] - 0.1f * 3.1e-5f / 2.2e-4f, 1e-5f);
        // plain adamax (bias-corrected, unclipped) moves by lr on its first step
        using var q = new TorchSharp.Modules.Parameter(torch.tensor(new float[] { 1f }));
        (q * 5f).sum().backward();
        new Optimizer("adamax").Step([("w", q)], lr: 0.1, beta1: 0.9, beta2: 0.5, eps: 0);
        q.data<float>()[0].Should().BeApproximately(0.9f, 1e-6f);
    }

    [Fact]
    public void Glorot_initialisation_draws_within_its_bound_and_is_wider_than_the_default()
    {
        var task = TaskRegistry.Get("badd");
        torch.manual_seed(3);
        using var glorot = ModelRegistry.Create((RunConfig.Preset("dngpu-port", "dngpu", "badd") with { Init = "glorot" }).Validate(), task.Vocab.Count);
        torch.manual_seed(3);
        using var plain = ModelRegistry.Create(RunConfig.Preset("dngpu-port", "dngpu", "badd").Validate(), task.Vocab.Count);
        float Max(AlgorithmicModel m, string name) => m.named_parameters().Single(p => p.name == name).parameter.abs().max().item<float>();
        double bound = Math.Sqrt(6.0 / (144 + 144)); // kernel 3 x 48 maps in and out
        Max(glorot, "cand_weight").Should().BeLessThanOrEqualTo((float)bound).And.BeGreaterThan((float)(0.95 * bound));
        Max(glorot, "gate_weight").Should().BeLessThanOrEqualTo((float)bound).And.BeGreaterThan((float)(0.95 * bound));
        Max(plain, "cand_weight").Should().BeLessThanOrEqualTo((float)(1 / Math.Sqrt(144)));
        FluentActions.Invoking(() => (RunConfig.Preset("baseline", "gru", "badd") with { Init = "glorot" }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("init=glorot is a dngpu setting");
    }

    [Fact]
    public void Unknown_or_mistyped_settings_are_errors()
    {
        var c = RunConfig.Preset("dngpu-port", "dngpu", "bmul");
        c.Maps.Should().Be(96);
        c.With(["maps=24", "dropout=0.25", "curriculum=true"]).Should().Be(c with { Maps = 24, Dropout = 0.25, Curriculum = true });
        FluentActions.Invoking(() => c.With(["mapz=3"])).Should().Throw<ArgumentException>().WithMessage("unknown setting 'mapz'*");
        FluentActions.Invoking(() => c.With(["maps=many"])).Should().Throw<ArgumentException>().WithMessage("setting 'maps' expects a whole number*");
        FluentActions.Invoking(() => c.With(["curriculum=maybe"])).Should().Throw<ArgumentException>().WithMessage("*true or false*");
        FluentActions.Invoking(() => (c with { Arch = "rnn" }).Validate()).Should().Throw<ArgumentException>().WithMessage("*architectures*");
        FluentActions.Invoking(() => (c with { Task = "bmull" }).Validate()).Should().Throw<ArgumentException>()
            .WithMessage("unknown task 'bmull'; known tasks: *bmul_zeros*");
        FluentActions.Invoking(() => RunConfig.Preset("fast", "dngpu", "badd")).Should().Throw<ArgumentException>().WithMessage("*presets*");
        FluentActions.Invoking(() => c.With(["probe_every=100", "probe_sizes=40,x"]).Validate()).Should().Throw<ArgumentException>().WithMessage("probe_sizes: 'x' is not a size*");
        FluentActions.Invoking(() => (c with { Arch = "gru", EmbedClip = true }).Validate()).Should().Throw<ArgumentException>().WithMessage("embed_clip and embed_dropout are dngpu settings");
        FluentActions.Invoking(() => c.With(["probe_every=100"]).Validate()).Should().Throw<ArgumentException>().WithMessage("probe_every needs probe_sizes*");
        RunConfig.FromJson(c.ToJson()).Should().Be(c);
    }

    [Fact]
    public void Cuda_request_without_a_cuda_backend_fails_with_one_clear_error()
    {
        if (torch.cuda.is_available()) return; // a machine with CUDA takes the other branch; nothing to check here
        FluentActions.Invoking(() => Trainer.ResolveDevice("cuda")).Should().Throw<ArgumentException>().WithMessage("*-p:TorchBackend=cuda*");
        var (code, _, err) = CliRunner.InProcess("train", "--task", "copy", "--arch", "dngpu", "--device", "cuda", "--out", Path.Combine(_dir, "cuda"));
        code.Should().Be(2);
        err.Should().StartWith("error: --device cuda");
    }

    [Fact]
    public void A_time_limit_stops_training_with_a_checkpoint_that_resumes()
    {
        string run = Path.Combine(_dir, "limited");
        var (code, output, err) = CliRunner.InProcess("train", "--task", "copy", "--arch", "dngpu", "--preset", "tiny", "--steps", "100000",
            "--minutes", "0.05", "--out", run);
        code.Should().Be(0, err);
        output.Should().Contain("time limit of 0.05 min reached; checkpoint saved at step");
        long step = long.Parse(System.Text.RegularExpressions.Regex.Match(output, @"checkpoint saved at step (\d+)").Groups[1].Value);
        step.Should().BeGreaterThan(0).And.BeLessThan(100000);
        File.Exists(Path.Combine(run, Checkpoint.FileName(step))).Should().BeTrue();
        var (code2, output2, _) = CliRunner.InProcess("train", "--task", "copy", "--arch", "dngpu", "--preset", "tiny", "--steps", (step + 3).ToString(),
            "--out", run, "--resume");
        code2.Should().Be(0);
        output2.Should().Contain($"resumed from {Checkpoint.FileName(step)} at step {step}").And.Contain("done:");
        CliRunner.InProcess("train", "--task", "copy", "--arch", "dngpu", "--minutes", "-1", "--out", Path.Combine(_dir, "bad")).Code.Should().Be(2);
    }

    [Fact]
    public async Task Sigterm_finishes_the_step_and_saves_a_checkpoint()
    {
        if (!OperatingSystem.IsLinux()) return;
        string run = Path.Combine(_dir, "term");
        string dll = Path.Combine(AppContext.BaseDirectory, "toolchain.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "train", "--task", "copy", "--arch", "dngpu", "--preset", "tiny", "--steps", "100000", "--set", "log_every=1", "--out", run })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var errTask = p.StandardError.ReadToEndAsync();
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null && !line.StartsWith("step ")) { }  // the first logged step
        line.Should().NotBeNull("training must log steps before it is signalled");
        System.Diagnostics.Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        string rest = p.StandardOutput.ReadToEnd();
        p.WaitForExit(60_000).Should().BeTrue();
        p.ExitCode.Should().Be(0, await errTask);
        var m = System.Text.RegularExpressions.Regex.Match(rest, @"interrupted; checkpoint saved at step (\d+)");
        m.Success.Should().BeTrue(rest);
        File.Exists(Path.Combine(run, Checkpoint.FileName(long.Parse(m.Groups[1].Value)))).Should().BeTrue();
    }

    [Fact]
    public void Loss_mask_ignores_positions_where_input_and_target_are_both_PAD()
    {
        const int V = 5;
        // two examples of length 6; the second is a shorter example padded into the bin (last 2 positions PAD)
        var tokens = torch.tensor(new long[] { 2, 3, 4, 2, 3, 4, 2, 2, 3, 3, 0, 0 }, [2, 6]);
        var targets = torch.tensor(new long[] { 1, 2, 1, 0, 0, 0, 2, 1, 2, 0, 0, 0 }, [2, 6]);
        var logits = torch.randn([2, 6, V], generator: torch.random.manual_seed(3));
        var garbage = logits.clone();
        garbage[1, 4] = torch.tensor(new float[] { -9, 9, 9, 9, 9 });
        garbage[1, 5] = torch.tensor(new float[] { -9, 9, 9, 9, 9 });

        var (masked, counted) = Trainer.Loss(logits, tokens, targets, lossMask: true);
        counted!.sum().item<long>().Should().Be(10);
        // by hand: the mean of -log softmax at the ten counted positions
        var logp = torch.nn.functional.log_softmax(logits, -1);
        double sum = 0;
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 6; i++)
                if (b == 0 || i < 4) sum -= logp[b, i, targets[b, i].item<long>()].item<float>();
        masked.item<float>().Should().BeApproximately((float)(sum / 10), 1e-5f);
        Trainer.Loss(garbage, tokens, targets, lossMask: true).Loss.item<float>().Should().BeApproximately(masked.item<float>(), 1e-6f);
        // without the mask the PAD tail counts: the garbage there raises the loss
        Trainer.Loss(garbage, tokens, targets, lossMask: false).Loss.item<float>()
            .Should().BeGreaterThan(Trainer.Loss(logits, tokens, targets, lossMask: false).Loss.item<float>() + 0.5f);

        // accuracy: the second example is wrong only in its PAD tail, which the mask does not count
        var perfect = torch.nn.functional.one_hot(targets, V).to(ScalarType.Float32) * 10;
        perfect[1, 5] = torch.tensor(new float[] { 0, 10, 0, 0, 0 });
        Trainer.Accuracy(perfect, targets).Seq.Should().Be(0.5);
        Trainer.Accuracy(perfect, targets, counted).Should().Be((1.0, 1.0));
    }

    [Fact]
    public void Bin_padding_trains_on_padded_shorter_examples_and_refuses_tasks_with_PAD_in_their_inputs()
    {
        var config = Tiny("dngpu", "badd") with { Steps = 4, LogEvery = 1, CheckpointEvery = 4, BinPadding = true, TrainLength = 8 };
        using (var t = new Trainer(config, Path.Combine(_dir, "padded")))
        {
            var losses = t.Run().Losses;
            losses.Should().HaveCount(4).And.OnlyContain(l => double.IsFinite(l.Item2));
        }
        var task = TaskRegistry.Get("badd");
        var rng = Rng.For(1, "test", 0);
        var sizes = Enumerable.Range(0, 2000).Select(_ => Trainer.PaddedExampleSize(task, 20, 16, rng)).ToList();
        sizes.Should().OnlyContain(k => k >= task.MinSize && k <= 20);
        sizes.Count(k => k > 16).Should().BeInRange(1850, 1990, "about 95% fill the bin from the one below");
        sizes.Count(k => k <= 16).Should().BeGreaterThan(10, "about 5% are shorter still");
        sizes.Distinct().Count().Should().BeGreaterThan(8);
        FluentActions.Invoking(() => new Trainer(Tiny("dngpu", "duplicate") with { BinPadding = true }, Path.Combine(_dir, "dup")))
            .Should().Throw<ArgumentException>().WithMessage("bin_padding: task 'duplicate' puts PAD inside its inputs*");
        FluentActions.Invoking(() => (Tiny("gru", "badd") with { BinPadding = true }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("*bin_padding needs arch dngpu*");
    }
}
