using System.Globalization;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Cli.Bench;

/// <summary>One model of the training-speed table: architecture, maps and the task whose preset it trains.</summary>
public sealed record TrainSpeedModel(string Arch, int Maps, string Task)
{
    public string Name => $"{Arch} m={Maps}";
}

/// <summary>One training-speed measurement: seconds per optimizer step of one code path, and what that is in
/// convolution GFLOP/s and as a fraction of the measured one-thread peak.</summary>
public sealed record TrainSpeedRow(string Model, string Task, string Step, string Path, int Threads, int Bins, int Batch,
    double SecondsPerStep, double ExamplesPerSecond, double GflopPerStep, double Gflops, double FractionOfPeak, double SpeedupOverBaseline, int Reps);

/// <summary>One part of a training step's time (milliseconds per step) and how it was measured.</summary>
public sealed record ProfileRow(string Part, double Milliseconds, double Share, string How);

/// <summary>S seeds packed in one process (one thread) against the same S seeds as separate runs stepping in turn on
/// that thread, interleaved.</summary>
public sealed record SeedScalingRow(string Model, string Step, int Seeds, double PackedSecondsPerStep, double SeparateSecondsPerStep,
    double PackedExamplesPerSecondPerSeed, double SeparateExamplesPerSecondPerSeed, double PackedOverSeparate, double PackedOverOneSeed,
    double PackedFractionOfPeak, int Reps);

public sealed record TrainProfile(string Model, int Length, int Batch, int Threads, double TotalMilliseconds, List<ProfileRow> Rows);

/// <summary>
/// Training throughput: full optimizer steps (examples, forward, backward, optimizer) of the presets the zoo trains,
/// one thread (the zoo runs one single-thread run per core), the current step (the fused recurrence) interleaved
/// with the step it replaced (channels-last, <see cref="ImprovedNeuralGpu.StepPath"/>), and a profile of where one
/// step's time goes.
/// </summary>
public static class BenchTraining
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A training step's first run is its warm-up however long it takes (it allocates every buffer of the
    /// step: a packed 4-seed step took 10.5 s the first time and 6.4 s later), so training rows never take the
    /// warm-up as the sample, as long inference runs do: at least MinReps steps are timed after it.</summary>
    private const double TrainingWarmUp = double.PositiveInfinity;

    /// <summary>
    /// Floating-point operations of one training step, convolutions only:
    ///   3 x sum over the step's bins of <see cref="Bench.ConvFlops"/>(n_bin, batch)
    /// (the forward products, then in the backward pass two products of the same size each: the gradient of the
    /// input and of the weights). Elementwise work, the embedding and the output layer are not counted.
    /// </summary>
    public static double StepFlops(RunConfig c, AlgorithmicTask task) =>
        3 * StepBins(c, task).Sum(b => Bench.ConvFlops(c, b.Length, c.BatchSize));

    /// <summary>The bins one step trains: every bin (all_bins), else the one bin of the pinned curriculum size.</summary>
    public static Trainer.Bin[] StepBins(RunConfig c, AlgorithmicTask task) =>
        c.AllBins ? Trainer.TrainingBins(c, task) : [new Trainer.Bin(task.LengthForSize(c.TrainLength), c.TrainLength, null)];

    /// <summary>The configuration of one row: "reference" is the dngpu-ref step (every bin of the reference's
    /// lengths, 32 examples each); "one bin" is the same with the single bin of the training length; ngpu trains
    /// its preset pinned to the training size (no curriculum below it, no random sizes).</summary>
    public static RunConfig Config(TrainSpeedModel spec, string step, int trainSize, int batch, int maps)
    {
        var c = RunConfig.Preset(RunConfig.DefaultPreset(spec.Arch), spec.Arch, spec.Task) with { Maps = maps, TrainLength = trainSize, BatchSize = batch, Threads = 1 };
        var task = TaskRegistry.Get(spec.Task);
        if (spec.Arch != "dngpu")
            return (c with { AllBins = false, Curriculum = true, CurriculumStart = trainSize, CurriculumRandomFraction = 0 }).Validate();
        return (step == "reference" ? c : c with { BinLengths = task.LengthForSize(trainSize).ToString(Inv) }).Validate();
    }

    /// <summary>Seed packing: for each S of the options, S seeds of the first dngpu speed model's reference step packed
    /// (<see cref="MultiSeedTrainer"/>) against S separate trainers stepping in turn, one thread, interleaved.</summary>
    public static List<SeedScalingRow> SeedScaling(BenchOptions o, PeakResult peak, Action<string> log)
    {
        var rows = new List<SeedScalingRow>();
        var spec = o.SpeedModels.FirstOrDefault(s => s.Arch == "dngpu");
        if (spec is null || o.SeedCounts.Length == 0) return rows;
        int before = torch.get_num_threads();
        torch.set_num_threads(1);
        double peak1 = Math.Max(peak.TorchOneThreadGflops, peak.OrtOneThreadGflops);
        string root = Path.Combine(Path.GetTempPath(), "toolchain-bench-seeds-" + Guid.NewGuid().ToString("N"));
        try
        {
            var config = Config(spec, "reference", o.TrainSize, o.TrainBatch, spec.Maps);
            var task = TaskRegistry.Get(spec.Task);
            int examples = StepBins(config, task).Length * o.TrainBatch;
            double gflop = StepFlops(config, task) / 1e9;
            double oneSeed = double.NaN;
            foreach (int count in o.SeedCounts)
            {
                var seeds = Enumerable.Range(1, count).Select(i => (ulong)i).ToList();
                using var packed = new MultiSeedTrainer(config, seeds, Path.Combine(root, "packed-" + count));
                var separate = seeds.Select(seed => new Trainer(config with { Seed = seed }, Path.Combine(root, $"separate-{count}-{seed}"))).ToList();
                try
                {
                    var (p, sep, reps) = BenchMeasure.Interleaved(packed.BenchStep, () => { foreach (var t in separate) t.BenchStep(); }, o.MinSeconds, o.MinReps, longRun: TrainingWarmUp);
                    if (count == 1) oneSeed = examples / sep;
                    var row = new SeedScalingRow(spec.Name, $"reference step ({StepBins(config, task).Length} bins)", count, p, sep, examples / p, examples * count / sep / count,
                        sep / p, count * examples / p / oneSeed, count * gflop / p / peak1, reps);
                    rows.Add(row);
                    log(string.Create(Inv, $"seeds {count,2} packed: {p * 1e3,8:F1} ms/step, {row.PackedExamplesPerSecondPerSeed,6:F1} ex/s per seed; separate: {sep * 1e3,8:F1} ms, {row.SeparateExamplesPerSecondPerSeed,6:F1} ex/s per seed; packed/separate {row.PackedOverSeparate:F2}x; {row.PackedOverOneSeed:F2}x one seed's examples/s"));
                }
                finally
                {
                    foreach (var t in separate) t.Dispose();
                }
            }
            return rows;
        }
        finally
        {
            torch.set_num_threads(before);
            try { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    public static (List<TrainSpeedRow> Rows, TrainProfile? Profile) Run(BenchOptions o, PeakResult peak, Action<string> log)
    {
        int before = torch.get_num_threads();
        torch.set_num_threads(1);
        double peak1 = Math.Max(peak.TorchOneThreadGflops, peak.OrtOneThreadGflops);
        var rows = new List<TrainSpeedRow>();
        string root = Path.Combine(Path.GetTempPath(), "toolchain-bench-speed-" + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var spec in o.SpeedModels)
            {
                int maps = spec.Maps;
                foreach (string step in spec.Arch == "dngpu" ? new[] { "reference", "one bin" } : ["one bin"])
                {
                    var config = Config(spec, step, o.TrainSize, o.TrainBatch, maps);
                    var task = TaskRegistry.Get(spec.Task);
                    double gflop = StepFlops(config, task) / 1e9;
                    int bins = StepBins(config, task).Length;
                    string stepName = step == "reference" ? $"reference step ({bins} bins)" : $"one bin, n = {task.LengthForSize(o.TrainSize)}";
                    using var fast = new Trainer(config, Path.Combine(root, Guid.NewGuid().ToString("N")));
                    TrainSpeedRow Row(string path, double seconds, double speedup, int reps) =>
                        new(spec.Name, spec.Task, stepName, path, 1, bins, o.TrainBatch, seconds, bins * o.TrainBatch / seconds, gflop, gflop / seconds,
                            gflop / seconds / peak1, speedup, reps);
                    if (fast.Model is ImprovedNeuralGpu)
                    {
                        using var slow = new Trainer(config, Path.Combine(root, Guid.NewGuid().ToString("N")));
                        ((ImprovedNeuralGpu)slow.Model).Path = ImprovedNeuralGpu.StepPath.ChannelsLast;
                        var (f, s, reps) = BenchMeasure.Interleaved(() => fast.BenchStep(), () => slow.BenchStep(), o.MinSeconds, o.MinReps, longRun: TrainingWarmUp);
                        rows.Add(Row("fused (current)", f, s / f, reps));
                        rows.Add(Row("channels-last (baseline)", s, 1, reps));
                    }
                    else
                    {
                        var (f, reps) = BenchMeasure.Repeat(() => fast.BenchStep(), o.MinSeconds, o.MinReps, longRun: TrainingWarmUp);
                        rows.Add(Row("current", f, double.NaN, reps));
                    }
                    foreach (var r in rows.Skip(rows.Count - (fast.Model is ImprovedNeuralGpu ? 2 : 1)))
                        log(string.Create(Inv, $"training {r.Model,-12} {r.Task,-5} {r.Step,-26} {r.Path,-24}: {r.SecondsPerStep * 1e3,8:F1} ms/step  {r.ExamplesPerSecond,7:F1} ex/s  {r.Gflops,6:F1} GFLOP/s ({r.FractionOfPeak:P0} of the 1-thread peak)"));
                }
            }
            var profile = Profile(o, root);
            if (profile is not null)
                foreach (var r in profile.Rows) log(string.Create(Inv, $"profile {profile.Model} n={profile.Length}: {r.Part,-40} {r.Milliseconds,8:F1} ms ({r.Share:P0})"));
            return (rows, profile);
        }
        finally
        {
            torch.set_num_threads(before);
            try { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Where one step of the first speed model (dngpu, one bin at the training length) spends its time:
    /// the trainer's own phase clocks (examples, forward, backward, optimizer), the forward and backward split into
    /// the convolution GEMMs (the same products timed alone), per-op overhead (the same step with batch 1 and 3 maps:
    /// every op, almost no arithmetic) and the rest (the fused step's passes over the state: im2col copies, the
    /// gates, the mix, the dropout draws, and their backward).</summary>
    private static TrainProfile? Profile(BenchOptions o, string root)
    {
        var spec = o.SpeedModels.FirstOrDefault(s => s.Arch == "dngpu");
        if (spec is null) return null;
        int maps = spec.Maps;
        var config = Config(spec, "one bin", o.TrainSize, o.TrainBatch, maps);
        var task = TaskRegistry.Get(spec.Task);
        int n = task.LengthForSize(o.TrainSize);
        StepPhases Phases(RunConfig c)
        {
            using var trainer = new Trainer(c, Path.Combine(root, Guid.NewGuid().ToString("N")));
            var samples = new List<StepPhases>();
            trainer.BenchStep(); // warm-up
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (samples.Count < Math.Max(3, o.MinReps) || clock.Elapsed.TotalSeconds < o.MinSeconds)
            {
                trainer.BenchStep();
                samples.Add(trainer.LastPhases);
                if (samples.Count >= 50) break;
            }
            double Med(Func<StepPhases, double> f) => BenchMeasure.Median(samples.Select(f).ToList());
            return new StepPhases(Med(p => p.Data), Med(p => p.Forward), Med(p => p.Backward), Med(p => p.Optimizer));
        }
        var full = Phases(config);
        var tiny = Phases(config with { Maps = 3, BatchSize = 1 });
        double gemm = GemmSeconds(n, o.TrainBatch, maps, config.KernelWidth, o);
        double modelTime = full.Forward + full.Backward;
        double overhead = tiny.Forward + tiny.Backward;
        double total = full.Total;
        ProfileRow R(string part, double seconds, string how) => new(part, seconds * 1e3, seconds / total, how);
        return new TrainProfile(spec.Name, n, o.TrainBatch, 1, total * 1e3,
        [
            R("convolution GEMMs (forward + backward)", gemm, $"the {n} steps' two products and their two backward products each, timed alone"),
            R("per-op overhead (dispatch, autograd, allocation)", overhead, "the same forward + backward at batch 1, 3 maps"),
            R("elementwise passes: im2col, gates, mix, dropout draws, their backward", modelTime - gemm - overhead, "forward + backward minus the two rows above"),
            R("examples (generation, tensors)", full.Data, "trainer phase clock"),
            R("optimizer (AdaMax update, 7 parameters)", full.Optimizer, "trainer phase clock"),
            R("whole step", total, "sum of the trainer's phase clocks (medians)"),
        ]);
    }

    /// <summary>Seconds of the convolution products of one bin's forward and backward pass alone: for each of n
    /// steps the gate product [B n, k m] x [k m, 2m] and the candidate product [B n, k m] x [k m, m], each with its
    /// two backward products (input gradient dY W^T, weight gradient X^T dY): six matrix products per step.</summary>
    private static double GemmSeconds(int n, int batch, int maps, int k, BenchOptions o)
    {
        torch.manual_seed(5);
        using var x = torch.randn(batch * n, k * maps);
        using var gw = torch.randn(k * maps, 2 * maps);
        using var cw = torch.randn(k * maps, maps);
        using var gy = torch.randn(batch * n, 2 * maps);
        using var cy = torch.randn(batch * n, maps);
        void Pass()
        {
            for (int t = 0; t < n; t++)
            {
                using var scope = torch.NewDisposeScope();
                torch.mm(x, gw); torch.mm(gy, gw.t()); torch.mm(x.t(), gy);
                torch.mm(x, cw); torch.mm(cy, cw.t()); torch.mm(x.t(), cy);
            }
        }
        return BenchMeasure.Repeat(Pass, o.MinSeconds, o.MinReps, longRun: o.LongRun).Seconds;
    }

    /// <summary>The target of the issue "Training throughput": dngpu m=48's reference step at 40% of the one-thread peak.</summary>
    public static List<TargetRow> Targets(List<TrainSpeedRow> rows, List<SeedScalingRow> seeds)
    {
        var t = new List<TargetRow>();
        var multi = seeds.Where(r => r.Seeds > 1).ToList();
        if (multi.Count > 0)
        {
            var worst = multi.MinBy(r => r.PackedOverSeparate)!;
            t.Add(new TargetRow("seed_packing_cpu", "S seeds packed in one process train at least as fast per seed as S separate runs on the same thread (every S > 1)",
                worst.PackedOverSeparate, worst.PackedOverSeparate >= 1.0,
                string.Join("; ", multi.Select(r => string.Create(Inv, $"S = {r.Seeds}: {r.PackedOverSeparate:F2}x ({r.PackedExamplesPerSecondPerSeed:F1} vs {r.SeparateExamplesPerSecondPerSeed:F1} ex/s per seed)")))));
        }
        var reference = rows.FirstOrDefault(r => r.Model.StartsWith("dngpu", StringComparison.Ordinal) && r.Step.StartsWith("reference", StringComparison.Ordinal) && !r.Path.Contains("baseline"));
        if (reference is not null)
        {
            var baseline = rows.FirstOrDefault(r => r.Model == reference.Model && r.Step == reference.Step && r.Path.Contains("baseline"));
            t.Add(new TargetRow("training_fraction_of_peak", $"{reference.Model} {reference.Task}, {reference.Step}, one thread: >= 40% of the one-thread peak",
                reference.FractionOfPeak, reference.FractionOfPeak >= 0.4,
                string.Create(Inv, $"{reference.Gflops:F1} GFLOP/s, {reference.ExamplesPerSecond:F0} ex/s") +
                (baseline is null ? "" : string.Create(Inv, $"; the channels-last baseline {baseline.Gflops:F1} GFLOP/s ({baseline.FractionOfPeak * 100:F0}%): {reference.SpeedupOverBaseline:F2}x faster"))));
        }
        return t;
    }

    public static void Markdown(BenchReport r, Action<string> L)
    {
        if (r.TrainingSpeed.Count > 0)
        {
            double peak1 = Math.Max(r.Peak.TorchOneThreadGflops, r.Peak.OrtOneThreadGflops);
            L("");
            L(string.Create(Inv, $"## Training speed: whole optimizer steps, one thread, against the one-thread peak ({peak1:F1} GFLOP/s)"));
            L("");
            L("Each dngpu row pair is interleaved (current step, baseline step, ...; medians). GFLOP per step = 3 x the forward convolution FLOPs of every bin of the step (`BenchTraining.StepFlops`).");
            L("");
            L("| model | task | step | path | bins x batch | ms/step | examples/s | GFLOP/step | GFLOP/s | % of peak | vs baseline | reps |");
            L("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var x in r.TrainingSpeed)
                L(string.Create(Inv, $"| {x.Model} | {x.Task} | {x.Step} | {x.Path} | {x.Bins} x {x.Batch} | {x.SecondsPerStep * 1e3:F1} | {x.ExamplesPerSecond:F1} | {x.GflopPerStep:F2} | {x.Gflops:F1} | {x.FractionOfPeak * 100:F0}% | {(double.IsNaN(x.SpeedupOverBaseline) ? "-" : x.SpeedupOverBaseline.ToString("F2", Inv) + "x")} | {x.Reps} |"));
        }
        if (r.SeedScaling.Count > 0)
        {
            L("");
            L("## Seeds packed in one process (`train --seeds`), one thread: against the same seeds as separate runs stepping in turn");
            L("");
            L("| model | step | seeds S | packed ms/step | separate ms/step | ex/s per seed, packed | ex/s per seed, separate | packed / separate | packed total / one seed | packed % of peak | reps |");
            L("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var x in r.SeedScaling)
                L(string.Create(Inv, $"| {x.Model} | {x.Step} | {x.Seeds} | {x.PackedSecondsPerStep * 1e3:F1} | {x.SeparateSecondsPerStep * 1e3:F1} | {x.PackedExamplesPerSecondPerSeed:F1} | {x.SeparateExamplesPerSecondPerSeed:F1} | {x.PackedOverSeparate:F2}x | {x.PackedOverOneSeed:F2}x | {x.PackedFractionOfPeak * 100:F0}% | {x.Reps} |"));
        }
        if (r.TrainingProfile is { } p)
        {
            L("");
            L(string.Create(Inv, $"## Where a training step's time goes: {p.Model}, one bin n = {p.Length}, batch {p.Batch}, one thread ({p.TotalMilliseconds:F1} ms)"));
            L("");
            L("| part | ms/step | share | measured by |");
            L("| --- | ---: | ---: | --- |");
            foreach (var x in p.Rows) L(string.Create(Inv, $"| {x.Part} | {x.Milliseconds:F1} | {x.Share * 100:F0}% | {x.How} |"));
        }
    }
}
