using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Export;
using Toolchain.Export.Onnx;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Cli.Bench;

/// <summary>One benchmarked model: architecture and maps m (everything else from the paper preset).</summary>
public sealed record BenchModel(string Arch, int Maps)
{
    public string Name => $"{Arch} m={Maps}";
}

/// <summary>What the benchmark runs. <see cref="Full"/>, <see cref="Quick"/> and <see cref="Smoke"/> are the presets.</summary>
public sealed record BenchOptions
{
    public string Mode { get; init; } = "full";
    public BenchModel[] Models { get; init; } = [new("ngpu", 24), new("dngpu", 48), new("dngpu", 128)];
    /// <summary>Token lengths n of the inference comparison.</summary>
    public int[] InferenceLengths { get; init; } = [41, 401, 2001];
    /// <summary>Loop vs unrolled: which models (by name) at which lengths.</summary>
    public BenchModel[] LoopModels { get; init; } = [new("dngpu", 48), new("ngpu", 24)];
    public int[] LoopLengths { get; init; } = [41, 401];
    public BenchModel GrowthModel { get; init; } = new("dngpu", 48);
    public int[] GrowthLengths { get; init; } = [41, 101, 201, 401, 1001, 2001, 4001];
    /// <summary>ONNX Runtime settings tried at one point (model, length): threads x graph optimization.</summary>
    public BenchModel SettingsModel { get; init; } = new("dngpu", 128);
    public int SettingsLength { get; init; } = 401;
    public bool Settings { get; init; } = true;
    public BenchModel[] TrainModels { get; init; } = [new("ngpu", 24), new("dngpu", 48)];
    /// <summary>Training size k (badd: length 2k+1 = 41).</summary>
    public int TrainSize { get; init; } = 20;
    public int TrainBatch { get; init; } = 32;
    /// <summary>Memory is compared after this many training steps ...</summary>
    public int TrainStepsShort { get; init; } = 100;
    /// <summary>... and after this many.</summary>
    public int TrainStepsLong { get; init; } = 1000;
    /// <summary>Per-model override of the long step count (slow models), by model name.</summary>
    public Dictionary<string, (int Short, int Long)> TrainStepsFor { get; init; } = new() { ["ngpu m=24"] = (20, 200) };
    /// <summary>Square matrix size of the peak measurement.</summary>
    public int PeakSize { get; init; } = 2048;
    /// <summary>Seconds of repeated runs per measurement (after one warm-up), and the least repeats.</summary>
    public double MinSeconds { get; init; } = 3;
    public int MinReps { get; init; } = 3;
    /// <summary>A warm-up longer than this many seconds is the measurement.</summary>
    public double LongRun { get; init; } = 6;
    /// <summary>ONNX Runtime intra-op threads of the main comparisons; 0 = its default.</summary>
    public int OrtThreads { get; init; }
    public string Task { get; init; } = "badd";
    /// <summary>Training speed (one thread, whole optimizer steps): dngpu on badd and bmul at their presets' maps, ngpu.</summary>
    public TrainSpeedModel[] SpeedModels { get; init; } = [new("dngpu", 48, "badd"), new("dngpu", 96, "bmul"), new("ngpu", 24, "badd")];
    /// <summary>Seed counts S of the packing comparison (`train --seeds`).</summary>
    public int[] SeedCounts { get; init; } = [1, 2, 4, 8];
    /// <summary>"all", or "training": only the peak, the training speed and the profile (written as bench-training.*).</summary>
    public string Section { get; init; } = "all";

    public static BenchOptions Full => new();

    public static BenchOptions Quick => new()
    {
        Mode = "quick",
        InferenceLengths = [41, 401],
        LoopModels = [new("dngpu", 48), new("ngpu", 24)],
        LoopLengths = [41],
        GrowthLengths = [41, 101, 201, 401, 1001],
        Settings = true,
        SettingsModel = new("dngpu", 128),
        TrainStepsShort = 5,
        TrainStepsLong = 20,
        TrainStepsFor = new() { ["ngpu m=24"] = (3, 8) },
        SeedCounts = [1, 2],
        PeakSize = 1024,
        MinSeconds = 1,
        MinReps = 2,
        LongRun = 3,
    };

    /// <summary>Tiny sizes: every piece runs in seconds (tests).</summary>
    public static BenchOptions Smoke => new()
    {
        Mode = "smoke",
        Models = [new("ngpu", 4), new("dngpu", 8)],
        InferenceLengths = [9, 17],
        LoopModels = [new("dngpu", 8)],
        LoopLengths = [9],
        GrowthModel = new("dngpu", 8),
        GrowthLengths = [9, 17, 33],
        SettingsModel = new("dngpu", 8),
        SettingsLength = 17,
        TrainModels = [new("dngpu", 8), new("ngpu", 4)],
        TrainSize = 4,
        TrainBatch = 4,
        TrainStepsShort = 2,
        TrainStepsLong = 4,
        TrainStepsFor = new(),
        SpeedModels = [new("dngpu", 6, "badd"), new("ngpu", 4, "badd")],
        SeedCounts = [1, 2],
        PeakSize = 128,
        MinSeconds = 0,
        MinReps = 1,
        LongRun = 1,
    };
}

// ---- the report (JSON, snake_case) ----
public sealed record MachineInfo(string Cpu, int LogicalCores, string Os, string Dotnet, string OnnxRuntime, string TorchSharp,
    int TorchThreads, int OrtThreads, string LoadAverageAtStart, string Note);
public sealed record PeakResult(int Size, double TorchMatmulGflops, double OrtMatmulGflops, double TorchOneThreadGflops, double OrtOneThreadGflops,
    double PeakGflops, int ChosenThreads, string Formula);
public sealed record InferenceRow(string Model, string Arch, int Maps, int Length, int Batch, double ConvGflopPerRun,
    double OrtSeconds, double TorchSeconds, double OrtTokensPerSecond, double TorchTokensPerSecond, double Ratio,
    double OrtGflops, double TorchGflops, double OrtFractionOfPeak, double TorchFractionOfPeak, int Reps);
public sealed record LoopRow(string Model, int Length, int Batch, double LoopSeconds, double UnrolledSeconds, double Ratio,
    double LoopOverheadMicrosecondsPerStep, double LoopSessionSeconds, double UnrolledSessionSeconds, long LoopBytes, long UnrolledBytes,
    int LoopNodes, int UnrolledNodes, int Reps);
public sealed record SettingRow(string Model, int Length, int Batch, string Label, int Threads, string Optimization, double Seconds,
    double RelativeToDefault, double FractionOfPeak);
public sealed record GrowthPoint(int Length, int Batch, double Seconds, long PeakDeltaBytes);
public sealed record GrowthResult(string Model, string Runtime, string MemoryMethod, List<GrowthPoint> Points, double TimeExponent,
    double TimeExponentLarge, double MemoryExponent, double MemoryExponentLarge, double MemoryBytesPerToken, double MemoryInterceptBytes);
public sealed record TrainRow(string Model, string Arch, int Maps, int Size, int Length, int Batch, int StepsShort, int StepsLong,
    double ExamplesPerSecond, double SecondsPerStep, long WorkingSetShortBytes, long WorkingSetLongBytes, double WorkingSetGrowthRatio,
    long LiveTensorsShort, long LiveTensorsLong, long? InUseShortBytes = null, long? InUseLongBytes = null)
{
    /// <summary>Growth of the memory in use (C heap handed out + managed heap) from the short to the long step,
    /// or null where the C heap's figure is not known on this system (never shown as 0).</summary>
    public long? InUseGrowthBytes => InUseLongBytes - InUseShortBytes;

    /// <summary>"short SEP long" in MiB, or "not measured".</summary>
    public string InUseText(string separator) =>
        InUseShortBytes is long a && InUseLongBytes is long b ? Bench.Mb(a) + separator + Bench.Mb(b) : "not measured";
}
public sealed record TargetRow(string Name, string Goal, double Value, bool Pass, string Detail);
public sealed record BenchReport(string Mode, string Section, string Started, double Seconds, MachineInfo Machine, PeakResult Peak,
    List<InferenceRow> Inference, List<LoopRow> LoopVsUnrolled, List<SettingRow> OrtSettings, GrowthResult? Growth,
    List<TrainRow> Training, List<TrainSpeedRow> TrainingSpeed, List<SeedScalingRow> SeedScaling, TrainProfile? TrainingProfile, List<TargetRow> Targets);

/// <summary>
/// `toolchain bench`: ONNX Runtime against TorchSharp eager on the same models and inputs, loop against
/// unrolled exports, both against the machine's measured float32 peak, growth of time and memory with the
/// length, and training throughput and memory. Untrained (random-init) models: speed does not depend on
/// the weights.
/// </summary>
public static class Bench
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// Floating-point operations of one forward pass of <paramref name="batch"/> inputs of n tokens,
    /// counting the convolutions only (everything else is O(m n) per step, a few percent at most):
    ///   dngpu, per step: gates conv1d 2m out x m in x k x n  +  candidate conv1d m x m x k x n  MACs per input;
    ///   ngpu, per step and layer: gates conv2d 2m x m x kh x kw x n x w  +  candidate m x m x kh x kw x n x w MACs;
    /// n steps; FLOPs = 2 x MACs (one multiply, one add).
    /// </summary>
    public static double ConvFlops(RunConfig c, int n, int batch)
    {
        double m = c.Maps, steps = n;
        double macsPerStep = c.Arch switch
        {
            "dngpu" => (2 * m * m * c.KernelWidth + m * m * c.KernelWidth) * n,
            "ngpu" => c.Layers * (2 * m * m * c.KernelHeight * c.KernelWidth + m * m * c.KernelHeight * c.KernelWidth) * n * c.Width,
            _ => throw new NotSupportedException($"no FLOP formula for '{c.Arch}'"),
        };
        return 2 * macsPerStep * steps * batch;
    }

    /// <summary>Examples per run at a length: 32 at the training length, fewer as the length grows.</summary>
    public static int BatchFor(int n) => n <= 64 ? 32 : n <= 512 ? 2 : 1;

    public static BenchReport Run(BenchOptions o, Action<string> log)
    {
        var started = DateTime.UtcNow;
        var clock = Stopwatch.StartNew();
        var task = TaskRegistry.Get(o.Task);
        var machine = Machine(o);
        log($"bench ({o.Mode}) on {machine.Cpu}, {machine.LogicalCores} logical cores; ONNX Runtime {machine.OnnxRuntime}, TorchSharp {machine.TorchSharp}; load {machine.LoadAverageAtStart}");

        var peak = Peak(o);
        log(string.Create(Inv, $"peak ({o.PeakSize}x{o.PeakSize}): TorchSharp matmul {peak.TorchMatmulGflops:F1} GFLOP/s ({torch.get_num_threads()} threads), {peak.TorchOneThreadGflops:F1} (1 thread); ONNX Runtime MatMul {peak.OrtMatmulGflops:F1} (default threads), {peak.OrtOneThreadGflops:F1} (1 thread)"));
        // both runtimes get the same thread count: the one the peak measurement found faster here
        o = o with { OrtThreads = peak.ChosenThreads };
        if (peak.ChosenThreads > 0) torch.set_num_threads(peak.ChosenThreads);
        machine = machine with { OrtThreads = peak.ChosenThreads, TorchThreads = torch.get_num_threads() };
        log($"threads for the bench: ONNX Runtime {(o.OrtThreads == 0 ? "default" : o.OrtThreads)}, TorchSharp {torch.get_num_threads()}");

        var inference = new List<InferenceRow>();
        bool all = o.Section == "all";
        foreach (var spec in all ? o.Models : [])
        {
            using var model = CreateModel(spec, o, task);
            var loop = ExportModel(model, ExportMode.Loop, null);
            using var ort = new OrtModel(loop, o.OrtThreads, GraphOptimizationLevel.ORT_ENABLE_ALL, arena: true);
            foreach (int n in o.InferenceLengths)
            {
                int batch = BatchFor(n);
                var tokens = Inputs(task, n, batch);
                using var t = torch.tensor(tokens, [batch, n]);
                ort.Bind(tokens, batch, n, task.Vocab.Count);
                var (os, ts, reps) = BenchMeasure.Interleaved(ort.Run, () => TorchForward(model, t), o.MinSeconds, o.MinReps, longRun: o.LongRun);
                double flops = ConvFlops(model.Config, n, batch);
                var row = new InferenceRow(spec.Name, spec.Arch, spec.Maps, n, batch, flops / 1e9, os, ts, batch * n / os, batch * n / ts, ts / os,
                    flops / os / 1e9, flops / ts / 1e9, flops / os / 1e9 / peak.PeakGflops, flops / ts / 1e9 / peak.PeakGflops, reps);
                inference.Add(row);
                log(string.Create(Inv, $"inference {row.Model,-12} n={n,5} batch {batch,2}: ORT {os * 1e3,9:F1} ms  torch {ts * 1e3,9:F1} ms  ratio {row.Ratio,5:F2}x  ORT {row.OrtGflops,6:F1} GFLOP/s ({row.OrtFractionOfPeak:P0} of peak)"));
            }
        }

        var loops = new List<LoopRow>();
        foreach (var spec in all ? o.LoopModels : [])
        {
            using var model = CreateModel(spec, o, task);
            foreach (int n in o.LoopLengths)
            {
                int batch = BatchFor(n);
                var tokens = Inputs(task, n, batch);
                var loopProto = ExportModel(model, ExportMode.Loop, null);
                var unrolledProto = ExportModel(model, ExportMode.Unrolled, n);
                var (loopSession, loopOrt) = TimedSession(loopProto, o.OrtThreads);
                var (unrolledSession, unrolledOrt) = TimedSession(unrolledProto, o.OrtThreads);
                using (loopOrt)
                using (unrolledOrt)
                {
                    loopOrt.Bind(tokens, batch, n, task.Vocab.Count);
                    unrolledOrt.Bind(tokens, batch, n, task.Vocab.Count);
                    var (ls, us, reps) = BenchMeasure.Interleaved(loopOrt.Run, unrolledOrt.Run, o.MinSeconds, o.MinReps, longRun: o.LongRun);
                    var row = new LoopRow(spec.Name, n, batch, ls, us, ls / us, (ls - us) / n * 1e6, loopSession, unrolledSession,
                        loopProto.CalculateSize(), unrolledProto.CalculateSize(), CountNodes(loopProto.Graph), CountNodes(unrolledProto.Graph), reps);
                    loops.Add(row);
                    log(string.Create(Inv, $"loop vs unrolled {row.Model,-12} n={n,4}: loop {ls * 1e3,8:F2} ms  unrolled {us * 1e3,8:F2} ms  ratio {row.Ratio:F2}  ({row.LoopOverheadMicrosecondsPerStep:F0} us/step); session {loopSession:F2} s vs {unrolledSession:F2} s; {row.LoopBytes:N0} vs {row.UnrolledBytes:N0} bytes"));
                }
            }
        }

        var settings = new List<SettingRow>();
        if (o.Settings && all) settings = OrtSettings(o, task, peak, log);

        var training = new List<TrainRow>();
        foreach (var spec in o.TrainModels) // the training section too: its memory rows are training's
        {
            var row = Train(o, spec);
            training.Add(row);
            log(string.Create(Inv, $"training {row.Model,-12} size {row.Size} (n={row.Length}) batch {row.Batch}: {row.ExamplesPerSecond:F1} ex/s ({row.SecondsPerStep:F3} s/step); working set {Mb(row.WorkingSetShortBytes)} after {row.StepsShort} steps, {Mb(row.WorkingSetLongBytes)} after {row.StepsLong}; in use {row.InUseText(" -> ")}; live tensors {row.LiveTensorsShort} -> {row.LiveTensorsLong}"));
        }

        var (speed, profile) = BenchTraining.Run(o, peak, log);
        var seedScaling = BenchTraining.SeedScaling(o, peak, log);

        var growth = all ? Growth(o, task, log) : null; // last: it fixes malloc's mmap threshold for the rest of the process

        var targets = Targets(inference, loops, growth, training, o);
        targets.AddRange(BenchTraining.Targets(speed, seedScaling));
        return new BenchReport(o.Mode, o.Section, started.ToString("yyyy-MM-ddTHH:mm:ssZ", Inv), clock.Elapsed.TotalSeconds, machine, peak,
            inference, loops, settings, growth, training, speed, seedScaling, profile, targets);
    }

    // ---------------------------------------------------------------- pieces

    private static MachineInfo Machine(BenchOptions o)
    {
        string cpu = "unknown";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) is { } l
                ? l[(l.IndexOf(':') + 1)..].Trim() : RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException) { }
        string os = RuntimeInformation.OSDescription;
        try
        {
            if (File.Exists("/etc/os-release") && File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal)) is { } p)
                os = $"{p[12..].Trim('"')} ({RuntimeInformation.OSDescription})";
        }
        catch (IOException) { }
        string load = "";
        try { load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : ""; } catch (IOException) { }
        string torchSharp = typeof(torch).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0]
            ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?";
        return new MachineInfo(cpu, Environment.ProcessorCount, os, RuntimeInformation.FrameworkDescription, OrtEnv.Instance().GetVersionString(),
            torchSharp, torch.get_num_threads(), o.OrtThreads,
            load, "absolute numbers are noisy on a shared machine; every comparison is measured side by side (interleaved) "
            + "and reported as a ratio. The models are untrained, with candidate biases of +-0.5 so that their state stays "
            + "off subnormal floats over long inputs, as a trained model's does (docs/bench.md)");
    }

    /// <summary>The machine's float32 peak as this process sees it: the best of TorchSharp matmul and an ONNX
    /// Runtime MatMul of two size x size matrices (2 size^3 FLOPs each), repeated, each with the runtime's
    /// default threads and with one thread (on a shared machine one thread can be the faster). Also picks the
    /// thread count of the whole bench: one thread when the one-thread ORT MatMul is faster, else the default.</summary>
    private static PeakResult Peak(BenchOptions o)
    {
        int s = o.PeakSize;
        double flops = 2.0 * s * s * s;
        int torchDefault = torch.get_num_threads();
        double TorchGflops(int threads)
        {
            torch.set_num_threads(threads);
            using var _ = torch.no_grad();
            torch.manual_seed(7);
            using var a = torch.randn(s, s);
            using var b = torch.randn(s, s);
            return flops / BenchMeasure.Repeat(() => { using var c = torch.matmul(a, b); }, o.MinSeconds, Math.Max(3, o.MinReps), longRun: o.LongRun).Seconds / 1e9;
        }
        double tDefault = TorchGflops(torchDefault), tOne = TorchGflops(1);
        torch.set_num_threads(torchDefault);

        var g = new GraphBuilder("peak");
        string x = g.Input("a", ElementType.Float, (long)s, (long)s);
        string w = g.Input("b", ElementType.Float, (long)s, (long)s);
        g.Output(g.MatMul(x, w), "c", ElementType.Float, (long)s, (long)s);
        var proto = ModelWriter.Model(g.Build(), new Dictionary<string, string>());
        var rng = new Random(7);
        var da = new float[s * s];
        var db = new float[s * s];
        for (int i = 0; i < da.Length; i++) { da[i] = (float)rng.NextDouble() - 0.5f; db[i] = (float)rng.NextDouble() - 0.5f; }
        var dc = new float[s * s];
        using var va = OrtValue.CreateTensorValueFromMemory(da, [s, s]);
        using var vb = OrtValue.CreateTensorValueFromMemory(db, [s, s]);
        using var vc = OrtValue.CreateTensorValueFromMemory(dc, [s, s]);
        using var run = new RunOptions();
        double OrtGflops(int threads)
        {
            using var options = SessionOptionsFor(threads, GraphOptimizationLevel.ORT_ENABLE_ALL, arena: true);
            using var session = new InferenceSession(proto.ToByteArray(), options);
            return flops / BenchMeasure.Repeat(() => session.Run(run, ["a", "b"], [va, vb], ["c"], [vc]), o.MinSeconds, Math.Max(3, o.MinReps), longRun: o.LongRun).Seconds / 1e9;
        }
        int requested = o.OrtThreads;
        double oDefault = OrtGflops(requested), oOne = OrtGflops(1);
        int chosen = requested > 0 ? requested : oOne > oDefault ? 1 : 0;
        return new PeakResult(s, tDefault, oDefault, tOne, oOne, new[] { tDefault, tOne, oDefault, oOne }.Max(), chosen,
            $"2 x {s}^3 FLOPs per product; peak = the fastest of TorchSharp and ONNX Runtime, default threads and one thread");
    }

    /// <summary>The preset the bench measures: the architecture's default, except dngpu-port for dngpu, whose
    /// single-size step the committed bench runs measured before dngpu-ref became the default (dngpu-ref trains
    /// padded bins, which a step pinned to one size does not have).</summary>
    private static string BenchPreset(string arch) => arch == "dngpu" ? "dngpu-port" : RunConfig.DefaultPreset(arch);

    /// <summary>A bench model: untrained (seed 1), one parameter set, its state held off zero, in eval mode.</summary>
    public static AlgorithmicModel CreateModel(BenchModel spec, BenchOptions o, AlgorithmicTask task)
    {
        torch.manual_seed(1);
        var config = (RunConfig.Preset(BenchPreset(spec.Arch), spec.Arch, o.Task) with { Maps = spec.Maps, TrainLength = o.TrainSize }).Validate();
        var model = ModelRegistry.Create(config, task.Vocab.Count);
        model.AverageParameterSets(); // a finished run: one parameter set, as exported
        HoldStateOffZero(model);
        model.eval();
        return model;
    }

    /// <summary>Candidate bias of a bench model: +0.5 on even maps, -0.5 on odd ones (ngpu and dngpu).</summary>
    public const double CandidateBias = 0.5;

    /// <summary>
    /// Sets the candidate biases of an untrained Neural GPU to +-<see cref="CandidateBias"/>, alternating over the maps.
    /// An untrained model's state decays towards zero over a long input, into subnormal floats (ngpu m=24 at n = 401:
    /// 37% of its state values; dngpu m=48 reaches 1e-25 there), and some CPUs compute subnormals far more slowly:
    /// the long rows ran 28-45x slower on an Intel Xeon than on an AMD EPYC (docs/bench.md, "Denormals on an Intel
    /// CPU"). A trained model's state saturates instead (dngpu-bmul runs as fast with subnormals flushed), so with
    /// these biases, which keep every candidate, and so the state, away from zero, the long rows time the model and
    /// not the CPU's subnormal path. The work per step is the same; only the values differ.
    /// </summary>
    public static void HoldStateOffZero(AlgorithmicModel model)
    {
        var bias = model.named_parameters().FirstOrDefault(p => p.name == "cand_bias").parameter
            ?? throw new NotSupportedException($"bench model '{model.Config.Arch}' has no cand_bias");
        using var _ = torch.no_grad();
        using var odd = torch.arange(bias.shape[^1]).remainder(2).eq(1).expand(bias.shape);
        bias.copy_(torch.where(odd, torch.full_like(bias, -CandidateBias), torch.full_like(bias, CandidateBias)));
    }

    /// <summary>Exports with one cheap parity check (the export refuses a graph that disagrees with TorchSharp).</summary>
    private static Toolchain.Export.Onnx.Proto.ModelProto ExportModel(AlgorithmicModel model, ExportMode mode, int? length) =>
        ModelExporter.Export(model, "bench", new ExportOptions { Mode = mode, Length = length, ParityMultiples = [1], ParityBatch = 1 }).Model;

    private static void TorchForward(AlgorithmicModel model, Tensor tokens)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        model.forward(tokens);
    }

    /// <summary>Valid task inputs (random family) of n tokens, flattened [batch, n].</summary>
    private static long[] Inputs(AlgorithmicTask task, int n, int batch)
    {
        int size = task.SizeForLength(n);
        if (task.LengthForSize(size) != n) throw new ArgumentException($"no {task.Name} input has length {n}");
        var rng = Rng.For(0xBE7CUL, "bench", task.Name, size);
        var tokens = new long[batch * n];
        for (int b = 0; b < batch; b++)
        {
            var ex = task.Generate(size, AlgorithmicTask.Random, rng);
            for (int i = 0; i < n; i++) tokens[b * n + i] = ex.Input[i];
        }
        return tokens;
    }

    private static SessionOptions SessionOptionsFor(int threads, GraphOptimizationLevel level, bool arena)
    {
        var s = new SessionOptions { GraphOptimizationLevel = level, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL, EnableCpuMemArena = arena };
        if (threads > 0) s.IntraOpNumThreads = threads;
        return s;
    }

    private static (double Seconds, OrtModel Model) TimedSession(Toolchain.Export.Onnx.Proto.ModelProto proto, int threads)
    {
        long start = Stopwatch.GetTimestamp();
        var m = new OrtModel(proto, threads, GraphOptimizationLevel.ORT_ENABLE_ALL, arena: true);
        return (Stopwatch.GetElapsedTime(start).TotalSeconds, m);
    }

    private static int CountNodes(Toolchain.Export.Onnx.Proto.GraphProto g) =>
        g.Node.Count + g.Node.SelectMany(n => n.Attribute).Where(a => a.G is not null).Sum(a => CountNodes(a.G));

    /// <summary>ONNX Runtime threads x graph optimization at one point, against the default settings.</summary>
    private static List<SettingRow> OrtSettings(BenchOptions o, AlgorithmicTask task, PeakResult peak, Action<string> log)
    {
        var rows = new List<SettingRow>();
        using var model = CreateModel(o.SettingsModel, o, task);
        var proto = ExportModel(model, ExportMode.Loop, null);
        int n = o.SettingsLength, batch = BatchFor(n);
        var tokens = Inputs(task, n, batch);
        double flops = ConvFlops(model.Config, n, batch);
        var configs = new List<(string Label, int Threads, GraphOptimizationLevel Level)>
        {
            ("default threads (0), all", 0, GraphOptimizationLevel.ORT_ENABLE_ALL),
            ("1 thread, all", 1, GraphOptimizationLevel.ORT_ENABLE_ALL),
            ("2 threads, all", 2, GraphOptimizationLevel.ORT_ENABLE_ALL),
            ("bench threads, extended", o.OrtThreads, GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
            ("bench threads, basic", o.OrtThreads, GraphOptimizationLevel.ORT_ENABLE_BASIC),
            ("bench threads, disable", o.OrtThreads, GraphOptimizationLevel.ORT_DISABLE_ALL),
        };
        // the reference: the bench's own setting (threads chosen by the peak measurement, all optimizations)
        using var baseline = new OrtModel(proto, o.OrtThreads, GraphOptimizationLevel.ORT_ENABLE_ALL, arena: true);
        baseline.Bind(tokens, batch, n, task.Vocab.Count);
        foreach (var (label, threads, level) in configs)
        {
            using var candidate = new OrtModel(proto, threads, level, arena: true);
            candidate.Bind(tokens, batch, n, task.Vocab.Count);
            // each setting side by side with the default, so the ratio is free of the machine's drift
            var (cs, bs, _) = BenchMeasure.Interleaved(candidate.Run, baseline.Run, o.MinSeconds, o.MinReps, longRun: o.LongRun);
            var row = new SettingRow(o.SettingsModel.Name, n, batch, label, threads, RunnerOptionsName(level), cs, cs / bs, flops / cs / 1e9 / peak.PeakGflops);
            rows.Add(row);
            log(string.Create(Inv, $"ORT settings {row.Model} n={n}: {label,-26} {cs * 1e3,8:F1} ms  x{row.RelativeToDefault:F2} of default time  {row.FractionOfPeak:P0} of peak"));
        }
        return rows;
    }

    private static string RunnerOptionsName(GraphOptimizationLevel level) => level switch
    {
        GraphOptimizationLevel.ORT_DISABLE_ALL => "disable",
        GraphOptimizationLevel.ORT_ENABLE_BASIC => "basic",
        GraphOptimizationLevel.ORT_ENABLE_EXTENDED => "extended",
        _ => "all",
    };

    /// <summary>Time and peak memory of the loop export (no `states`) against the length, batch 1; ONNX
    /// Runtime's arena is off so that freed buffers go back to the system and the peak is the real one.</summary>
    private static GrowthResult Growth(BenchOptions o, AlgorithmicTask task, Action<string> log)
    {
        using var model = CreateModel(o.GrowthModel, o, task);
        var proto = ExportModel(model, ExportMode.Loop, null);
        // glibc keeps freed blocks (and raises its mmap threshold after frees), so a second run would need no
        // new memory and show no peak: a fixed 64 KiB threshold makes every large buffer its own mapping,
        // returned on free, and the kernel's high-water mark then is the run's real peak
        Toolchain.Train.HeapSettings.MapBlocksAbove(64 * 1024);
        using var ort = new OrtModel(proto, o.OrtThreads, GraphOptimizationLevel.ORT_ENABLE_ALL, arena: false);
        var points = new List<GrowthPoint>();
        string method = "";
        foreach (int n in o.GrowthLengths)
        {
            var tokens = Inputs(task, n, 1);
            ort.Bind(tokens, 1, n, task.Vocab.Count);
            ort.Run(); // warm-up: first-run allocations and the output buffer
            GC.Collect();
            var (seconds, delta, how) = BenchMeasure.PeakMemory(ort.Run);
            if (seconds < o.LongRun) seconds = Math.Min(seconds, BenchMeasure.Repeat(ort.Run, o.MinSeconds / 2, 1, longRun: o.LongRun).Seconds);
            method = how;
            points.Add(new GrowthPoint(n, 1, seconds, delta));
            log(string.Create(Inv, $"growth {o.GrowthModel.Name} n={n,5}: {seconds * 1e3,10:F1} ms  peak +{delta / 1024.0,9:F0} KiB"));
        }
        var x = points.Select(p => (double)p.Length).ToArray();
        var large = points.Where(p => p.Length >= 401).ToArray();
        var (a, b) = BenchMeasure.Linear(x, points.Select(p => (double)p.PeakDeltaBytes).ToArray());
        return new GrowthResult(o.GrowthModel.Name, "onnxruntime loop export, no states, batch 1, arena off", method, points,
            BenchMeasure.LogLogExponent(x, points.Select(p => p.Seconds).ToArray()),
            large.Length >= 2 ? BenchMeasure.LogLogExponent(large.Select(p => (double)p.Length).ToArray(), large.Select(p => p.Seconds).ToArray()) : double.NaN,
            BenchMeasure.LogLogExponent(x, points.Select(p => (double)p.PeakDeltaBytes).ToArray()),
            large.Length >= 2 ? BenchMeasure.LogLogExponent(large.Select(p => (double)p.Length).ToArray(), large.Select(p => (double)p.PeakDeltaBytes).ToArray()) : double.NaN,
            b, a);
    }

    /// <summary>Trains the paper preset at one size (curriculum pinned to it, no random sizes), recording
    /// speed and memory through the trainer's AfterStep hook.</summary>
    private static TrainRow Train(BenchOptions o, BenchModel spec)
    {
        var (shortSteps, longSteps) = o.TrainStepsFor.TryGetValue(spec.Name, out var s) ? s : (o.TrainStepsShort, o.TrainStepsLong);
        var task = TaskRegistry.Get(o.Task);
        var config = (RunConfig.Preset(BenchPreset(spec.Arch), spec.Arch, o.Task) with
        {
            Maps = spec.Maps, TrainLength = o.TrainSize, BatchSize = o.TrainBatch, Steps = longSteps + 1, // one more: the run's last step averages relaxation sets and checkpoints
            AllBins = false, Curriculum = true, CurriculumStart = o.TrainSize, CurriculumRandomFraction = 0,
            CheckpointEvery = longSteps + 2, LogEvery = longSteps + 2, KeepCheckpoints = 1,
        }).Validate();
        string dir = Path.Combine(Path.GetTempPath(), "toolchain-bench-train-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var trainer = new Trainer(config, dir);
            long wsShort = 0, wsLong = 0, liveShort = 0, liveLong = 0;
            long? useShort = null, useLong = null;
            int first = Math.Max(1, Math.Min(2, shortSteps));
            long t0 = 0, t1 = 0;
            trainer.AfterStep = step =>
            {
                if (step == first) t0 = Stopwatch.GetTimestamp();
                if (step == shortSteps) { (wsShort, liveShort, useShort) = Memory(); }
                if (step == longSteps) { t1 = Stopwatch.GetTimestamp(); (wsLong, liveLong, useLong) = Memory(); }
            };
            trainer.Run();
            double seconds = Stopwatch.GetElapsedTime(t0, t1).TotalSeconds;
            // (the last step's checkpoint is inside the timed span: one small file, negligible against the steps)
            double perStep = seconds / Math.Max(1, longSteps - first);
            return new TrainRow(spec.Name, spec.Arch, spec.Maps, o.TrainSize, task.LengthForSize(o.TrainSize), o.TrainBatch, shortSteps, longSteps,
                o.TrainBatch / perStep, perStep, wsShort, wsLong, (double)wsLong / Math.Max(1, wsShort), liveShort, liveLong, useShort, useLong);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>After a step: the resident set, the live tensors, and the bytes in use (the C heap's blocks handed
    /// out, where libtorch's tensors live, plus the managed heap; null where the C heap's figure is not known). The
    /// resident set also holds freed memory the allocator keeps and the holes between its blocks: under training's
    /// heap settings (<see cref="Toolchain.Train.HeapSettings"/>) it climbs while the heap settles into a layout
    /// (ngpu m=24, measured from outside: 1,622 MiB at step 10, 2,370 MiB at step 200, then level, 2,403 MiB at step 560)
    /// with the memory in use constant, so it is reported, and a leak is judged by what is in use.</summary>
    private static (long WorkingSet, long LiveTensors, long? InUse) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return (p.WorkingSet64, DisposeScopeManager.Statistics.ThreadTotalLiveCount, Toolchain.Train.HeapSettings.NativeBytesInUse() + GC.GetTotalMemory(false));
    }

    // ---------------------------------------------------------------- targets and output

    private static List<TargetRow> Targets(List<InferenceRow> inference, List<LoopRow> loops, GrowthResult? growth, List<TrainRow> training, BenchOptions o)
    {
        var t = new List<TargetRow>();
        var large = inference.Where(r => r.Length >= 401).ToList();
        if (large.Count > 0)
        {
            var worst = large.MinBy(r => r.Ratio)!;
            t.Add(new TargetRow("ort_vs_torch", "ONNX Runtime >= 1.5x TorchSharp eager at n >= 401 (every row)", worst.Ratio, worst.Ratio >= 1.5,
                string.Join("; ", large.Select(r => string.Create(Inv, $"{r.Model} n={r.Length}: {r.Ratio:F2}x") +
                    (r.Ratio < 1.5 && r.TorchFractionOfPeak > 0 ? string.Create(Inv, $" (ceiling {1 / r.TorchFractionOfPeak:F2}x: TorchSharp already at {r.TorchFractionOfPeak * 100:F0}% of peak{(1 / r.TorchFractionOfPeak < 1.5 ? ", so 1.5x is out of reach on this CPU" : "")})") : "")))));
        }
        var short41 = loops.Where(r => r.Length == 41).ToList();
        if (short41.Count == 0) short41 = loops.Where(r => r.Length == loops.Min(l => l.Length)).ToList();
        if (short41.Count > 0)
        {
            var worst = short41.MaxBy(r => r.Ratio)!;
            t.Add(new TargetRow("loop_vs_unrolled", $"loop time within 1.25x of unrolled at n = {worst.Length}", worst.Ratio, worst.Ratio <= 1.25,
                string.Join("; ", short41.Select(r => string.Create(Inv, $"{r.Model}: {r.Ratio:F2}x ({r.LoopOverheadMicrosecondsPerStep:F0} us/step)")))));
        }
        var big = inference.Where(r => r.Maps == o.Models.Max(m => m.Maps) && r.Length == (o.InferenceLengths.Contains(401) ? 401 : o.InferenceLengths.Max()))
            .OrderByDescending(r => r.Maps).FirstOrDefault();
        if (big is not null)
            t.Add(new TargetRow("fraction_of_peak", $"{big.Model} at n = {big.Length}: >= 50% of the measured peak (ONNX Runtime)", big.OrtFractionOfPeak,
                big.OrtFractionOfPeak >= 0.5, string.Create(Inv, $"{big.OrtGflops:F1} GFLOP/s of {big.OrtGflops / big.OrtFractionOfPeak:F1}")));
        if (growth is not null)
        {
            double e = double.IsFinite(growth.MemoryExponentLarge) ? growth.MemoryExponentLarge : growth.MemoryExponent;
            // When the peak deltas are at the resolution of the measurement (a few pages), the exponent is noise;
            // then linearity is shown by a bound: every delta within 64 KiB + 16 state-sized buffers (16 x 4 m n bytes),
            // where keeping every step's state (the quadratic case) would need 4 m n^2 bytes.
            int maps = o.GrowthModel.Maps;
            bool bounded = growth.Points.All(p => p.PeakDeltaBytes <= 65536 + 16L * 4 * maps * p.Length * p.Batch);
            var last = growth.Points.MaxBy(p => p.Length)!;
            t.Add(new TargetRow("memory_linear", "loop-mode memory (no states) grows linearly in n: fitted exponent in [0.7, 1.3], or every peak within 16 state buffers (linear bound)",
                e, e is >= 0.7 and <= 1.3 || bounded,
                string.Create(Inv, $"exponent all points {growth.MemoryExponent:F2}, n >= 401 {growth.MemoryExponentLarge:F2}; {growth.MemoryBytesPerToken:F0} bytes per token; at n={last.Length}: +{last.PeakDeltaBytes / 1024.0:F0} KiB (linear bound {(65536 + 16.0 * 4 * maps * last.Length) / 1024:F0} KiB, all-states quadratic {4.0 * maps * last.Length * last.Length / 1048576:F0} MiB); time exponent {growth.TimeExponent:F2} (n >= 401: {growth.TimeExponentLarge:F2})")));
        }
        foreach (var r in training)
            t.Add(TrainingMemoryTarget(r));
        return t;
    }

    /// <summary>Memory in use may grow this much from the short to the long step and still count as no leak: a
    /// quarter of one state of the smallest row (ngpu m=24, [32, 24, 4, 41] floats, 0.5 MiB), so one state tensor
    /// kept per step, or a single state kept every few dozen steps, fails.</summary>
    public const long InUseSlackBytes = 128 * 1024;

    /// <summary>No leak: the live tensors do not grow, and the memory in use (C heap + managed heap) grows by at
    /// most <see cref="InUseSlackBytes"/>; where the C heap cannot be read, the resident set within 1.2x instead.</summary>
    public static TargetRow TrainingMemoryTarget(TrainRow r)
    {
        string detail = string.Create(Inv, $"live tensors {r.LiveTensorsShort} -> {r.LiveTensorsLong}; working set {Mb(r.WorkingSetShortBytes)} -> {Mb(r.WorkingSetLongBytes)} ({r.WorkingSetGrowthRatio:F2}x)");
        bool tensors = r.LiveTensorsLong <= r.LiveTensorsShort;
        if (r.InUseGrowthBytes is long growth)
            return new TargetRow($"training_memory_{r.Arch}", string.Create(Inv, $"{r.Model}: no leak (live tensors equal, memory in use within +{InUseSlackBytes / 1024} KiB from step {r.StepsShort} to {r.StepsLong})"),
                growth / 1024.0, tensors && growth <= InUseSlackBytes,
                detail + string.Create(Inv, $"; in use {r.InUseText(" -> ")} ({(growth >= 0 ? "+" : "")}{growth / 1024.0:F0} KiB)"));
        return new TargetRow($"training_memory_{r.Arch}", $"{r.Model}: no leak (live tensors equal, working set within 1.2x from step {r.StepsShort} to {r.StepsLong}; memory in use not readable here)",
            r.WorkingSetGrowthRatio, tensors && r.WorkingSetGrowthRatio <= 1.2, detail);
    }

    public static string Mb(long bytes) => string.Create(Inv, $"{bytes / 1048576.0:F1} MiB");

    /// <summary>The report as a Markdown document (what the command prints and writes as bench.md).</summary>
    public static string Markdown(BenchReport r)
    {
        var sb = new StringBuilder();
        void L(string s = "") => sb.Append(s).Append('\n');
        var m = r.Machine;
        L($"# toolchain bench ({r.Mode}{(r.Section == "all" ? "" : ", section " + r.Section)})");
        L();
        L(string.Create(Inv, $"{r.Started}, {r.Seconds:F0} s. Machine: {m.Cpu}, {m.LogicalCores} logical cores, {m.Os}; {m.Dotnet}; ONNX Runtime {m.OnnxRuntime}; TorchSharp {m.TorchSharp} (torch threads {m.TorchThreads}, ORT intra-op threads {(m.OrtThreads == 0 ? "default" : m.OrtThreads)}); load average at start {m.LoadAverageAtStart}."));
        L($"Note: {m.Note}.");
        L();
        L("## Targets");
        L();
        L("| target | goal | value | result | detail |");
        L("| --- | --- | ---: | --- | --- |");
        foreach (var t in r.Targets) L(string.Create(Inv, $"| {t.Name} | {t.Goal} | {t.Value:F2} | **{(t.Pass ? "PASS" : "MISS")}** | {t.Detail} |"));
        L();
        L(string.Create(Inv, $"## Peak (float32, {r.Peak.Size}x{r.Peak.Size} matrix product)"));
        L();
        L(string.Create(Inv, $"TorchSharp matmul {r.Peak.TorchMatmulGflops:F1} GFLOP/s (default threads), {r.Peak.TorchOneThreadGflops:F1} (1 thread); ONNX Runtime MatMul {r.Peak.OrtMatmulGflops:F1} (default threads), {r.Peak.OrtOneThreadGflops:F1} (1 thread); peak = {r.Peak.PeakGflops:F1} GFLOP/s. Threads used by the bench: {(r.Peak.ChosenThreads == 0 ? "default" : r.Peak.ChosenThreads.ToString(Inv))} (the faster ORT MatMul setting)."));
        L();
        if (r.Inference.Count > 0)
        {
            L("## Inference: ONNX Runtime (loop export) vs TorchSharp eager (no_grad), same model, same inputs");
            L();
            L("| model | n | batch | conv GFLOP | ORT ms | torch ms | ORT tokens/s | torch tokens/s | ratio | ORT GFLOP/s | % peak | torch GFLOP/s | % peak | ratio ceiling |");
            L("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var x in r.Inference)
                L(string.Create(Inv, $"| {x.Model} | {x.Length} | {x.Batch} | {x.ConvGflopPerRun:F2} | {x.OrtSeconds * 1e3:F1} | {x.TorchSeconds * 1e3:F1} | {x.OrtTokensPerSecond:F0} | {x.TorchTokensPerSecond:F0} | {x.Ratio:F2}x | {x.OrtGflops:F1} | {x.OrtFractionOfPeak * 100:F0}% | {x.TorchGflops:F1} | {x.TorchFractionOfPeak * 100:F0}% | {(x.TorchFractionOfPeak > 0 ? 1 / x.TorchFractionOfPeak : double.NaN):F2}x |"));
            L();
            L("Ratio ceiling: the largest ratio possible if ONNX Runtime ran the convolutions at 100% of the measured peak (peak / TorchSharp's GFLOP/s; convolution FLOPs only, so the true ceiling is lower).");
            L();
            L("## Loop vs unrolled export (ONNX Runtime)");
            L();
            L("| model | n | batch | loop ms | unrolled ms | loop/unrolled | loop overhead us/step | session s (loop / unrolled) | bytes (loop / unrolled) | nodes (loop / unrolled) |");
            L("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |");
            foreach (var x in r.LoopVsUnrolled)
                L(string.Create(Inv, $"| {x.Model} | {x.Length} | {x.Batch} | {x.LoopSeconds * 1e3:F2} | {x.UnrolledSeconds * 1e3:F2} | {x.Ratio:F2} | {x.LoopOverheadMicrosecondsPerStep:F0} | {x.LoopSessionSeconds:F2} / {x.UnrolledSessionSeconds:F2} | {x.LoopBytes:N0} / {x.UnrolledBytes:N0} | {x.LoopNodes} / {x.UnrolledNodes} |"));
        }
        if (r.OrtSettings.Count > 0)
        {
            L();
            L("## ONNX Runtime settings (each interleaved with the bench's setting; time relative to it, lower is better)");
            L();
            L("| model | n | batch | setting | ms | time vs default | % peak |");
            L("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
            foreach (var x in r.OrtSettings)
                L(string.Create(Inv, $"| {x.Model} | {x.Length} | {x.Batch} | {x.Label} | {x.Seconds * 1e3:F1} | {x.RelativeToDefault:F2} | {x.FractionOfPeak * 100:F0}% |"));
        }
        if (r.Growth is { } g)
        {
            L();
            L($"## Growth with n: {g.Model}, {g.Runtime}");
            L();
            L("| n | ms | peak memory delta KiB |");
            L("| ---: | ---: | ---: |");
            foreach (var p in g.Points) L(string.Create(Inv, $"| {p.Length} | {p.Seconds * 1e3:F1} | {p.PeakDeltaBytes / 1024.0:F0} |"));
            L();
            L(string.Create(Inv, $"Fitted exponents (least squares on log-log): time {g.TimeExponent:F2} (n >= 401: {g.TimeExponentLarge:F2}), memory {g.MemoryExponent:F2} (n >= 401: {g.MemoryExponentLarge:F2}); linear fit {g.MemoryBytesPerToken:F0} bytes per token + {g.MemoryInterceptBytes / 1024:F0} KiB. Memory by {g.MemoryMethod}."));
        }
        if (r.Training.Count > 0)
        {
            L();
            L("## Training (paper presets, one size, batch as shown)");
            L();
            L("| model | size k | n | batch | examples/s | s/step | steps (short / long) | live tensors (short / long) | in use (short / long) | working set (short / long) |");
            L("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |");
            foreach (var x in r.Training)
                L(string.Create(Inv, $"| {x.Model} | {x.Size} | {x.Length} | {x.Batch} | {x.ExamplesPerSecond:F1} | {x.SecondsPerStep:F3} | {x.StepsShort} / {x.StepsLong} | {x.LiveTensorsShort} / {x.LiveTensorsLong} | {x.InUseText(" / ")} | {Mb(x.WorkingSetShortBytes)} / {Mb(x.WorkingSetLongBytes)} |"));
            L();
            L("In use: the C heap's blocks handed out (glibc's mallinfo2; libtorch's tensors live there) plus the managed heap, after a full collection. " +
              "The working set also holds freed memory that training's heap settings keep and the holes between blocks, so it climbs while the heap settles and is not the leak test.");
        }
        BenchTraining.Markdown(r, L);
        return sb.ToString();
    }

    /// <summary>Writes bench.json and bench.md into the folder, each atomically.</summary>
    public static void Write(BenchReport r, string dir)
    {
        string name = FileStem(r.Section);
        AtomicFile.Write(Path.Combine(dir, name + ".json"), JsonSerializer.Serialize(r, Json) + "\n");
        AtomicFile.Write(Path.Combine(dir, name + ".md"), Markdown(r));
    }

    /// <summary>bench for the whole bench, bench-training for the training section alone (so it does not replace a full run's report).</summary>
    public static string FileStem(string section) => section == "all" ? "bench" : "bench-" + section;

    /// <summary>One ONNX Runtime session with bound, reused input and output buffers.</summary>
    private sealed class OrtModel : IDisposable
    {
        private readonly SessionOptions _options;
        private readonly InferenceSession _session;
        private readonly RunOptions _run = new();
        private OrtValue? _input, _output;
        private static readonly string[] In = ["tokens"], Out = ["logits"];

        public OrtModel(Toolchain.Export.Onnx.Proto.ModelProto proto, int threads, GraphOptimizationLevel level, bool arena)
        {
            _options = SessionOptionsFor(threads, level, arena);
            _session = new InferenceSession(proto.ToByteArray(), _options);
        }

        public void Bind(long[] tokens, int batch, int n, int vocab)
        {
            _input?.Dispose();
            _output?.Dispose();
            _input = OrtValue.CreateTensorValueFromMemory(tokens, [batch, n]);
            _output = OrtValue.CreateTensorValueFromMemory(new float[(long)batch * n * vocab], [batch, n, vocab]);
        }

        public void Run() => _session.Run(_run, In, [_input!], Out, [_output!]);

        public void Dispose()
        {
            _input?.Dispose();
            _output?.Dispose();
            _run.Dispose();
            _session.Dispose();
            _options.Dispose();
        }
    }
}
