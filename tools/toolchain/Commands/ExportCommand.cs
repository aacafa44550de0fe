using System.CommandLine;
using System.Globalization;
using Google.Protobuf;
using Toolchain.Export;
using Toolchain.Export.Onnx;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain export RUN_DIR --out model.onnx [--mode loop|unrolled] [--length N] [--with-states]`, or
/// `toolchain export --ensemble A.onnx B.onnx ... --out E.onnx`: one model that is the ensemble of exported models.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var run = new Argument<string?>("run") { Description = "run directory (its newest checkpoint) or a checkpoint file", Arity = ArgumentArity.ZeroOrOne };
        var ensemble = new Option<string[]>("--ensemble")
        {
            Description = "join these exported models (ONNX, without states) into one model of their ensemble: the log of their softmax probabilities averaged per position, what `eval --ensemble` grades; checked against the members at --parity-multiples (default 1,4)",
            AllowMultipleArgumentsPerToken = true,
        };
        var output = new Option<string>("--out", "-o") { Description = "ONNX file to write (atomically)", Required = true };
        var mode = new Option<string>("--mode") { Description = "loop: one model for every length (default); unrolled: the steps written out for --length", DefaultValueFactory = _ => "loop" };
        var length = new Option<int?>("--length") { Description = "input length in tokens of an unrolled export" };
        var withStates = new Option<bool>("--with-states") { Description = "add the `states` output (the state at every step) for `toolchain visualize`" };
        var tolerance = new Option<double>("--tolerance") { Description = "largest accepted max-abs logit difference TorchSharp vs ONNX Runtime; a larger one passes only when a float64 run shows it is float32 rounding (ONNX Runtime's distance from float64 within 2x TorchSharp float32's, or 2x the float32 sensitivity: how far one epsilon on every parameter moves the float64 logits)", DefaultValueFactory = _ => 1e-4 };
        var parityMultiples = new Option<string?>("--parity-multiples") { Description = "comma-separated multiples of the training size at which parity is checked in loop mode (default 1,4,16); leave out lengths where the model is numerically chaotic" };
        var cmd = new Command("export", "write a checkpoint as an ONNX model (contract v1), verified against TorchSharp") { run, ensemble, output, mode, length, withStates, tolerance, parityMultiples };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            if (r.GetValue(ensemble) is { Length: > 0 } members)
            {
                if (r.GetValue(run) is not null)
                    throw new UserError("export --ensemble joins exported ONNX models, not a run; export each run first, then: toolchain export --ensemble A.onnx B.onnx ... --out E.onnx");
                if (r.GetValue(withStates) || r.GetValue(length) is not null || r.GetValue(mode) != "loop")
                    throw new UserError("export --ensemble takes the members as they were exported; --mode, --length and --with-states belong to each member's own export");
                return JoinEnsemble(members, r.GetValue(output)!, r.GetValue(parityMultiples), r.GetValue(tolerance), w);
            }
            if (r.GetValue(run) is null)
                throw new UserError("export needs a run: toolchain export RUN_DIR --out model.onnx (or: toolchain export --ensemble A.onnx B.onnx ... --out E.onnx)");
            var exportMode = r.GetValue(mode) switch
            {
                "loop" => ExportMode.Loop,
                "unrolled" => ExportMode.Unrolled,
                var m => throw new UserError($"--mode must be loop or unrolled, not '{m}'"),
            };
            var options = new ExportOptions { Mode = exportMode, Length = r.GetValue(length), WithStates = r.GetValue(withStates), Tolerance = r.GetValue(tolerance) };
            if (r.GetValue(parityMultiples) is string multiples) options = options with { ParityMultiples = ExportOptions.ParseMultiples(multiples, "--parity-multiples") };
            string path = r.GetValue(output)!;
            if (Directory.Exists(path)) throw new UserError($"--out '{path}' is a folder; name the model file to write, e.g. {Path.Combine(path, "model.onnx")}");
            var (model, ckpt) = ModelExporter.LoadModel(r.GetValue(run)!);
            using (model)
            {
                ExportResult result;
                try { result = ModelExporter.Export(model, ckpt.FileHash ?? "", options); }
                catch (ParityException e) { throw new UserError(e.Message); }
                ModelWriter.Save(result.Model, path);
                var inv = CultureInfo.InvariantCulture;
                foreach (var p in result.Parity)
                    Cli.Line(w, string.Create(inv, $"parity  size {p.Size,6}  length {p.Length,6}  max |diff| {p.MaxAbsDifference:0.00E+0}") +
                        (double.IsNaN(p.OnnxFloat32Error) ? "" : string.Create(inv,
                            $"  (over {options.Tolerance:G2}; against float64: TorchSharp {p.TorchFloat32Error:0.00E+0}, ONNX Runtime {p.OnnxFloat32Error:0.00E+0}, float32 sensitivity {p.Float32Sensitivity:0.00E+0}: {(p.WithinFloat32Noise(options.Tolerance) ? "float32 rounding, accepted" : "refused")})")));
                Cli.Line(w, string.Create(inv, $"wrote {path}: {new FileInfo(path).Length:N0} bytes, {result.Model.Graph.Node.Count} nodes, {model.Config.Arch}/{model.Config.Task}, mode {r.GetValue(mode)}; build {result.BuildTime.TotalSeconds:F2} s, ONNX Runtime session {result.SessionTime.TotalSeconds:F2} s, parity {result.ParityTime.TotalSeconds:F2} s"));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>export --ensemble: reads the members, joins them, checks the joined model against the members and
    /// writes it atomically.</summary>
    private static int JoinEnsemble(string[] paths, string path, string? multiples, double tolerance, TextWriter w)
    {
        if (paths.Length < 2) throw new UserError($"--ensemble needs at least two models, got {paths.Length}: toolchain export --ensemble A.onnx B.onnx ... --out E.onnx");
        if (Directory.Exists(path)) throw new UserError($"--out '{path}' is a folder; name the model file to write, e.g. {Path.Combine(path, "ensemble.onnx")}");
        if (paths.FirstOrDefault(m => Path.GetFullPath(m) == Path.GetFullPath(path)) is { } member)
            throw new UserError($"--out '{path}' is one of the members; write the ensemble to a new file, e.g. {Path.Combine(Path.GetDirectoryName(path) ?? "", "ensemble.onnx")}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var members = paths.Select(ReadMember).ToList();
        double[] parityAt = multiples is null ? [1, 4] : ExportOptions.ParseMultiples(multiples, "--parity-multiples");
        Toolchain.Export.Onnx.Proto.ModelProto joined;
        IReadOnlyList<EnsembleParityPoint> parity;
        try
        {
            joined = EnsembleWriter.Join(members);
            parity = EnsembleWriter.CheckParity(joined, members, EnsembleWriter.ParitySizes(members[0], parityAt), tolerance);
        }
        catch (ArgumentException e) { throw new UserError(e.Message); }
        catch (ParityException e) { throw new UserError(e.Message); }
        ModelWriter.Save(joined, path);
        var inv = CultureInfo.InvariantCulture;
        foreach (var p in parity)
            Cli.Line(w, string.Create(inv, $"parity  size {p.Size,6}  length {p.Length,6}  max |diff| {p.MaxAbsDifference:0.00E+0} (against the members' log-averaged softmax, float64)"));
        Cli.Line(w, string.Create(inv, $"wrote {path}: {new FileInfo(path).Length:N0} bytes, {joined.Graph.Node.Count} nodes, the ensemble of {members.Count} models; {clock.Elapsed.TotalSeconds:F2} s"));
        return 0;
    }

    private static MemberModel ReadMember(string file)
    {
        if (!File.Exists(file)) throw new UserError($"{file}: no such file; name an ONNX model written by `toolchain export`");
        try { return new MemberModel(Toolchain.Export.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(file)), file); }
        catch (InvalidProtocolBufferException e) { throw new UserError($"{file}: not an ONNX model ({e.Message}); name a model written by `toolchain export`"); }
    }
}
