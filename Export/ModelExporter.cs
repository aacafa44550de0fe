using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Export.Architectures;
using Toolchain.Export.Onnx;
using Toolchain.Export.Onnx.Proto;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Export;

public enum ExportMode { Loop, Unrolled }

/// <summary>How to export: a Loop over the input's length (one model for every length), or the steps
/// written out for one fixed length; optionally with the `states` output for visualization.</summary>
public sealed record ExportOptions
{
    public ExportMode Mode { get; init; } = ExportMode.Loop;
    /// <summary>Fixed input length (tokens) of an unrolled export.</summary>
    public int? Length { get; init; }
    public bool WithStates { get; init; }
    /// <summary>Largest max-abs logit difference accepted between TorchSharp and ONNX Runtime. A larger difference
    /// still passes when a float64 run of the same model shows it is float32 rounding noise: ONNX Runtime's distance
    /// from the float64 logits is at most twice the float32 noise level plus this tolerance (see
    /// <see cref="ParityPoint.WithinFloat32Noise"/>).</summary>
    public double Tolerance { get; init; } = 1e-4;
    /// <summary>Also run the model in float64 at every parity length to tell rounding noise from export errors.</summary>
    public bool Float64Reference { get; init; } = true;
    /// <summary>Sizes (multiples of the training size) at which parity is checked in loop mode.</summary>
    public double[] ParityMultiples { get; init; } = [1, 4, 16];

    public int ParityBatch { get; init; } = 4;

    /// <summary>Parses "1,4" into parity multiples; <paramref name="what"/> names the setting in the error.</summary>
    public static double[] ParseMultiples(string text, string what)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !(values[i] > 0) || double.IsInfinity(values[i]))
                throw new ArgumentException($"{what}: '{parts[i]}' is not a positive number; give multiples of the training size such as 1,4,16");
        if (values.Length == 0) throw new ArgumentException($"{what}: no multiples given; give multiples of the training size such as 1,4,16");
        return values;
    }
}

/// <summary>An export that was refused because ONNX Runtime and TorchSharp disagree.</summary>
public sealed class ParityException(string message) : Exception(message);

/// <summary>One parity measurement: an input length and the worst |logit difference| there between TorchSharp
/// (float32) and ONNX Runtime; where a float64 TorchSharp reference ran, also each float32 implementation's worst
/// distance from it, and the model's float32 sensitivity: how far the float64 logits move when every parameter is
/// perturbed by one float32 epsilon, relative (NaN when there was no float64 run).</summary>
public sealed record ParityPoint(int Size, int Length, double MaxAbsDifference,
    double TorchFloat32Error = double.NaN, double OnnxFloat32Error = double.NaN, double Float32Sensitivity = double.NaN)
{
    /// <summary>The float32 noise level at this length: TorchSharp float32's own distance from float64, or the
    /// sensitivity if larger. One float32 run's rounding can be luckier than another's; over a long recurrence the
    /// sensitivity (how much one epsilon of change anywhere is amplified) is the fairer yardstick.</summary>
    public double Float32Noise => Math.Max(TorchFloat32Error, double.IsNaN(Float32Sensitivity) ? 0 : Float32Sensitivity);

    /// <summary>Passed by the float64 rule: ONNX Runtime is no further from exact arithmetic than twice the float32
    /// noise level (plus the absolute tolerance).</summary>
    public bool WithinFloat32Noise(double tolerance) =>
        !double.IsNaN(OnnxFloat32Error) && OnnxFloat32Error <= 2 * Float32Noise + tolerance;

    public bool Passes(double tolerance) => MaxAbsDifference <= tolerance || WithinFloat32Noise(tolerance);
}

public sealed record ExportResult(ModelProto Model, IReadOnlyList<ParityPoint> Parity, TimeSpan BuildTime, TimeSpan ParityTime, TimeSpan SessionTime);

/// <summary>One architecture's graph: reads "tokens", produces logits (and states when asked).</summary>
public interface IArchitectureExporter
{
    /// <summary>Adds the model's nodes; returns the names of logits [B, n, V] and, if requested, states [B, T, n, C].</summary>
    (string Logits, string? States) Build(GraphBuilder g, AlgorithmicModel model, ExportOptions options, string tokens);
}

/// <summary>
/// Writes an ONNX model (contract version 1) from a TorchSharp model, and refuses to hand it out unless
/// ONNX Runtime reproduces TorchSharp's logits within the tolerance at every checked length.
/// </summary>
public static class ModelExporter
{
    public const string ContractVersion = "1";

    private static readonly Dictionary<string, IArchitectureExporter> Exporters = new()
    {
        ["ngpu"] = new NeuralGpuExporter(),
        ["dngpu"] = new ImprovedNeuralGpuExporter(),
        ["gru"] = new RecurrentBaselineExporter(),
        ["lstm"] = new RecurrentBaselineExporter(),
        ["cnn"] = new ConvBaselineExporter(),
        ["transformer"] = new TransformerBaselineExporter(),
    };

    public static IReadOnlyCollection<string> SupportedArchitectures => Exporters.Keys;

    /// <summary>Loads the newest checkpoint of a run directory (or a checkpoint file) into its model.</summary>
    public static (AlgorithmicModel Model, Checkpoint Checkpoint) LoadModel(string runDirOrCheckpoint)
    {
        var ckpt = Checkpoint.LoadLatest(runDirOrCheckpoint);
        var task = TaskRegistry.Get(ckpt.Config.Task);
        // a header whose configuration describes far more parameters than the file holds is refused before the
        // model is built (it could not be loaded anyway, and building it could exhaust the memory)
        long held = ckpt.Section("model/").Values.Sum(t => t.numel());
        long described = MemoryEstimate.For(ckpt.Config, task).Parameters;
        if (described > 64 * held + 1_000_000)
            throw new CheckpointException($"{ckpt.Source}: its configuration describes about {described:N0} parameters but the file holds " +
                $"{held:N0}; the file was not written by `toolchain train`, or was altered");
        var model = ModelRegistry.Create(ckpt.Config, task.Vocab.Count);
        Trainer.LoadCheckpoint(model, ckpt, runDirOrCheckpoint);
        model.eval();
        return (model, ckpt);
    }

    public static ExportResult Export(AlgorithmicModel model, string sourceHash, ExportOptions options)
    {
        var config = model.Config;
        if (!Exporters.TryGetValue(config.Arch, out var exporter))
            throw new NotSupportedException($"no ONNX exporter for architecture '{config.Arch}' yet; supported: {string.Join(", ", Exporters.Keys)}");
        if (options.Mode == ExportMode.Unrolled && options.Length is not (> 0))
            throw new ArgumentException("--mode unrolled needs --length N (the fixed input length in tokens)");
        var task = TaskRegistry.Get(config.Task);
        var clock = Stopwatch.StartNew();
        var g = new GraphBuilder($"{config.Arch}_{config.Task}");
        object length = options.Mode == ExportMode.Unrolled ? (long)options.Length!.Value : "length";
        string tokens = g.Input("tokens", ElementType.Int64, "batch", length);
        var (logits, states) = exporter.Build(g, model, options, tokens);
        g.Output(logits, "logits", ElementType.Float, "batch", length, (long)task.Vocab.Count);
        if (options.WithStates)
        {
            if (states is null) throw new NotSupportedException($"the {config.Arch} exporter produced no states");
            g.Output(states, "states", ElementType.Float, "batch", "steps", length, "channels");
        }
        var metadata = new Dictionary<string, string>
        {
            ["toolchain.contract"] = ContractVersion,
            ["toolchain.task"] = config.Task,
            ["toolchain.vocab"] = JsonSerializer.Serialize(task.Vocab),
            ["toolchain.train_length"] = config.TrainLength.ToString(CultureInfo.InvariantCulture),
            ["toolchain.arch"] = config.Arch,
            ["toolchain.config"] = JsonSerializer.Serialize(JsonDocument.Parse(config.ToJson()).RootElement),
            ["toolchain.source"] = sourceHash,
            ["toolchain.mode"] = options.Mode == ExportMode.Loop ? "loop" : "unrolled",
        };
        if (options.Mode == ExportMode.Unrolled) metadata["toolchain.length"] = options.Length!.Value.ToString(CultureInfo.InvariantCulture);
        var proto = ModelWriter.Model(g.Build(), metadata, typeof(ModelExporter).Assembly.GetName().Version?.ToString(3) ?? "0.1.0");
        var buildTime = clock.Elapsed;
        clock.Restart();
        var (parity, session) = CheckParity(model, proto, options, task);
        return new ExportResult(proto, parity, buildTime, clock.Elapsed, session);
    }

    /// <summary>Sizes whose encoded length parity is checked: multiples of the training size, or the one
    /// size an unrolled model accepts.</summary>
    public static IReadOnlyList<(int Size, int Length)> ParityPoints(AlgorithmicTask task, RunConfig config, ExportOptions options)
    {
        if (options.Mode == ExportMode.Unrolled)
        {
            int length = options.Length!.Value;
            return [(task.SizeForLength(length), length)];
        }
        return options.ParityMultiples
            .Select(m => Math.Max(task.MinSize, (int)Math.Round(config.TrainLength * m)))
            .Distinct().Select(s => (s, task.LengthForSize(s))).ToArray();
    }

    /// <summary>Runs TorchSharp and ONNX Runtime on the same task inputs; throws <see cref="ParityException"/>
    /// naming the worst difference when it exceeds the tolerance and is not explained by float32 rounding
    /// (see <see cref="ParityPoint.Passes"/>).</summary>
    public static (IReadOnlyList<ParityPoint> Points, TimeSpan SessionTime) CheckParity(AlgorithmicModel model, ModelProto proto, ExportOptions options, AlgorithmicTask task)
    {
        var points = new List<ParityPoint>();
        var sessionClock = Stopwatch.StartNew();
        using var sessionOptions = new SessionOptions();
        using var session = new InferenceSession(proto.ToByteArray(), sessionOptions);
        var sessionTime = sessionClock.Elapsed;
        model.eval();
        AlgorithmicModel? exact = null;
        try
        {
            foreach (var (size, length) in ParityPoints(task, model.Config, options))
            {
                var tokens = ParityInputs(task, size, length, options.ParityBatch);
                var expected = Logits(model, tokens, options.ParityBatch, length); // float32 values, held as double
                var got = RunLogits(session, tokens, options.ParityBatch, length);
                if (got.Length != expected.Length)
                    throw new ParityException($"ONNX Runtime returned {got.Length} logits where TorchSharp returned {expected.Length} (length {length})");
                // a NaN or infinite logit is no answer, in either runtime, whatever the difference between them
                string? nonFinite = !expected.All(double.IsFinite) ? "TorchSharp" : !got.All(float.IsFinite) ? "ONNX Runtime" : null;
                if (nonFinite is not null)
                    throw new ParityException(
                        $"{nonFinite} computes non-finite logits (NaN or infinity) at size {size} (length {length}): " +
                        "the checkpoint's weights are not finite or overflow; export an earlier checkpoint of the run; " +
                        "the model was not written");
                double worst = MaxAbsDifference(expected, got);
                var point = new ParityPoint(size, length, worst);
                if (worst > options.Tolerance && options.Float64Reference)
                {
                    exact ??= Float64Copy(model);
                    double[]? reference = null;
                    try { if (exact is not null) reference = Logits(exact, tokens, options.ParityBatch, length); }
                    catch (Exception) { reference = null; } // an architecture with float32-only internals: absolute rule only
                    if (reference is not null)
                        point = point with
                        {
                            TorchFloat32Error = MaxAbsDifference(reference, expected),
                            OnnxFloat32Error = MaxAbsDifference(reference, got),
                            Float32Sensitivity = Sensitivity(exact!, tokens, options.ParityBatch, length, reference),
                        };
                }
                points.Add(point);
                if (!point.Passes(options.Tolerance))
                    throw new ParityException(string.Create(CultureInfo.InvariantCulture,
                        $"parity check failed at size {size} (length {length}): max |TorchSharp - ONNX Runtime| logit difference {worst:G3} exceeds {options.Tolerance:G3}") +
                        (double.IsNaN(point.OnnxFloat32Error) ? "" : string.Create(CultureInfo.InvariantCulture,
                            $", and against a float64 run ONNX Runtime is off by {point.OnnxFloat32Error:G3} where TorchSharp float32 is off by {point.TorchFloat32Error:G3} and one float32 epsilon on every parameter moves the logits by {point.Float32Sensitivity:G3}")) +
                        ChaoticHint(point, options, model.Config.TrainLength) + "; the model was not written");
            }
        }
        finally { exact?.Dispose(); }
        return (points, sessionTime);
    }

    /// <summary>ONNX Runtime's logits for flattened [batch, length] tokens (contract 1: `tokens` in, `logits` out).</summary>
    public static float[] RunLogits(InferenceSession session, long[] tokens, int batch, int length)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(tokens, [batch, length]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["tokens"], [input], ["logits"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>TorchSharp float32 this far from float64 means the model amplifies rounding without bound at
    /// that length (a state that does not saturate): no float32 implementation can be checked there.</summary>
    public const double ChaoticFloat32Error = 1e-2;

    /// <summary>Advice appended to a parity failure at a length where the model is numerically chaotic (empty otherwise).</summary>
    public static string ChaoticHint(ParityPoint point, ExportOptions options, int trainLength)
    {
        if (double.IsNaN(point.TorchFloat32Error) || point.TorchFloat32Error < ChaoticFloat32Error) return "";
        var shorter = options.ParityMultiples.Where(m => m * trainLength < point.Size).ToList();
        string list = shorter.Count > 0 ? string.Join(",", shorter.Select(m => m.ToString(CultureInfo.InvariantCulture))) : "1";
        return string.Create(CultureInfo.InvariantCulture,
            $". The model is numerically chaotic at this length (TorchSharp float32 itself is {point.TorchFloat32Error:G3} from float64), so no float32 implementation can be checked there; verify the export at the shorter lengths only with --parity-multiples {list} (in zoo/zoo.yaml: parity: \"{list}\")");
    }

    private static double[] Logits(AlgorithmicModel model, long[] tokens, int batch, int length)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var t = torch.tensor(tokens, [batch, length], device: model.Device);
        return model.forward(t).to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
    }

    private static double MaxAbsDifference(double[] a, float[] b) => MaxAbsDifference(a, Array.ConvertAll(b, v => (double)v));

    private static double MaxAbsDifference(double[] a, double[] b)
    {
        double worst = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = Math.Abs(a[i] - b[i]);
            if (!(d <= worst)) worst = double.IsNaN(d) ? double.PositiveInfinity : d;
        }
        return worst;
    }

    /// <summary>How far the float64 logits move when every parameter of the float64 model is multiplied by
    /// (1 + d), d uniform in +-float32 epsilon (2^-23), the worst of two seeded draws; the parameters are restored.
    /// It measures how much the model amplifies changes of float32 size, which rounding makes at every step.</summary>
    private static double Sensitivity(AlgorithmicModel exact, long[] tokens, int batch, int length, double[] reference)
    {
        const double epsilon = 1.0 / (1 << 23);
        var parameters = exact.parameters().ToList();
        var saved = parameters.Select(p => p.detach().clone()).ToList();
        double worst = 0;
        try
        {
            for (int draw = 0; draw < 2; draw++)
            {
                var generator = torch.random.manual_seed(0x5E45 + draw);
                using (torch.no_grad())
                    foreach (var p in parameters)
                        p.mul_(torch.rand(p.shape, ScalarType.Float64, generator: generator).to(p.device).mul_(2 * epsilon).add_(1 - epsilon));
                worst = Math.Max(worst, MaxAbsDifference(reference, Logits(exact, tokens, batch, length)));
                using (torch.no_grad())
                    for (int i = 0; i < parameters.Count; i++) parameters[i].copy_(saved[i]);
            }
        }
        finally { foreach (var t in saved) t.Dispose(); }
        return worst;
    }

    /// <summary>The same model with float64 parameters (null when the architecture cannot run in float64).</summary>
    private static AlgorithmicModel? Float64Copy(AlgorithmicModel model)
    {
        var copy = ModelRegistry.Create(model.Config, model.Vocab);
        try
        {
            if (model.ParameterSets != copy.ParameterSets) copy.AverageParameterSets();
            Trainer.LoadParameters(copy, model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter), "float64 reference");
            copy.to(ScalarType.Float64);
            copy.to(model.Device);
            copy.eval();
            return copy;
        }
        catch (Exception)
        {
            copy.Dispose();
            return null;
        }
    }

    /// <summary>Valid task inputs (random family) of one size, flattened [batch, length].</summary>
    public static long[] ParityInputs(AlgorithmicTask task, int size, int length, int batch)
    {
        var tokens = new long[batch * length];
        var rng = Rng.For(0x5EEDUL, "parity", task.Name, size);
        for (int b = 0; b < batch; b++)
        {
            var ex = task.Generate(size, AlgorithmicTask.Random, rng);
            for (int i = 0; i < length; i++) tokens[b * length + i] = ex.Input[i];
        }
        return tokens;
    }

    /// <summary>Parameter data as floats (contiguous, row-major).</summary>
    public static float[] Data(Tensor t)
    {
        using var c = t.detach().cpu().contiguous();
        return c.data<float>().ToArray();
    }

    /// <summary>A model parameter by name.</summary>
    public static Tensor Parameter(AlgorithmicModel model, string name) =>
        model.named_parameters().FirstOrDefault(p => p.name == name).parameter
            ?? throw new InvalidOperationException($"architecture '{model.Config.Arch}' has no parameter '{name}'");

    /// <summary>Stores a parameter (or a slice of it) once as an initializer.</summary>
    public static string Weight(GraphBuilder g, string name, Tensor t) => g.Initializer(name, Data(t), t.shape);

    /// <summary>Stores W^T of a [out, in] weight once, ready for x @ W^T.</summary>
    public static string WeightTransposed(GraphBuilder g, string name, Tensor w) => Weight(g, name, w.t());
}
