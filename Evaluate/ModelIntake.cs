using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

/// <summary>What intake learned about a model: its identity, the task it solves and its training size.</summary>
public sealed record ModelInfo(
    string Path,
    string FileName,
    string Sha256,
    long Bytes,
    AlgorithmicTask Task,
    int TrainLength,
    string Arch,
    string? ConfigJson,
    string? Source,
    bool HasMetadata,
    long IrVersion,
    long Opset,
    IReadOnlyList<ModelInfo>? Members = null,
    IReadOnlyList<EnsembleMember>? JoinedMembers = null)
{
    /// <summary>Exponent of cost growth per example in the length: the Neural GPU archs run n steps over n
    /// positions (length^2); the others are taken as linear unless fitted.</summary>
    public double? CostExponent => Arch is "ngpu" or "dngpu" ? 2.0 : HasMetadata && Arch != "unknown" ? 1.0 : null;

    /// <summary>A guess at activation bytes per token, from a width in the config when there is one.</summary>
    public long ActivationBytesPerToken =>
        new[] { "width", "hidden", "channels", "d_model", "m" }.Select(ConfigInt).FirstOrDefault(v => v is not null) is { } w ? w * 4 * 32 : 128 * 4 * 32;

    /// <summary>A positive integer field of the model's training config, or null.</summary>
    private long? ConfigInt(string key)
    {
        if (ConfigJson is null) return null;
        try
        {
            using var doc = JsonDocument.Parse(ConfigJson);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(key, out var v) && v.TryGetInt64(out long n) && n > 0 ? n : null;
        }
        catch (JsonException) { return null; }
    }

    public string Label => Members is not null ? $"{Task.Name}/{Arch} ensemble of {Members.Count}"
        : JoinedMembers is not null ? $"{Task.Name}/{Arch} ensemble of {JoinedMembers.Count} in one file" : $"{Task.Name}/{Arch}";
}

/// <summary>
/// Model intake: reads the file, checks IR and opset, the contract metadata, the input and output
/// signature and the vocabulary, and opens the session. Every refusal is an <see cref="EvaluationException"/>
/// naming the file and the fix.
/// </summary>
public static class ModelIntake
{
    public const string ContractVersion = "1";
    public const long MinOpset = 21, MaxOpset = 26, MinIr = 10, MaxIr = 13;

    public static (ModelInfo Info, OnnxRunner Runner) Open(string path, string? taskOverride, int? trainLengthOverride, RunnerOptions options)
    {
        if (Directory.Exists(path))
            throw new EvaluationException($"model '{path}' is a folder, not a model file; " +
                $"pass the .onnx file itself (e.g. {System.IO.Path.Combine(path, "model.onnx")})");
        if (!File.Exists(path)) throw new EvaluationException($"model '{path}' does not exist");
        byte[] bytes = File.ReadAllBytes(path);
        var info = Inspect(path, bytes, taskOverride, trainLengthOverride);
        OnnxRunner runner;
        try
        {
            // grading never reads the mental image: a model exported with `states` runs without it
            // (from the file when nothing is pruned: its external data, if any, is then found beside it)
            var edited = Onnx.StatesPruning.WithoutStates(bytes);
            int chunk = 1;
            if (options.LoopChunk > 1)
            {
                var chunked = Onnx.LoopChunking.Chunk(edited ?? bytes, options.LoopChunk, out string why);
                if (chunked is null) options.Log?.Invoke($"notice: --loop-chunk {options.LoopChunk}: '{path}' runs as exported, {why}");
                else (edited, chunk) = (chunked, options.LoopChunk);
            }
            runner = OnnxRunner.Open(edited, path, info.Task.Vocab.Count, options);
            runner.LoopChunk = chunk;
        }
        catch (OnnxRuntimeException e)
        {
            string why = OnnxRunner.FirstLine(e.Message);
            throw new EvaluationException(why.Contains("external", StringComparison.OrdinalIgnoreCase)
                ? $"ONNX Runtime refuses model '{path}': {why}; " +
                    "its external data must sit beside the model, under a relative path inside its folder"
                : $"ONNX Runtime refuses model '{path}': {why}; re-export it (opset 21, IR 10)", e);
        }
        try
        {
            CheckSignature(path, runner.Session, info.Task.Vocab.Count);
        }
        catch
        {
            runner.Dispose();
            throw;
        }
        return (info, runner);
    }

    /// <summary>Opens every model of an ensemble (<see cref="OnnxRunner.AddMember"/>): they must share the task and
    /// the training size. The ensemble's info is the first model's, named after all of them, with a SHA-256 over
    /// the members' hashes in order (so a resumed or cached result belongs to exactly these models).</summary>
    public static (ModelInfo Info, OnnxRunner Runner) OpenEnsemble(IReadOnlyList<string> paths, string? taskOverride, int? trainLengthOverride, RunnerOptions options)
    {
        if (paths.Count < 2) throw new EvaluationException($"an ensemble needs at least two models, got {paths.Count}; name them: --ensemble A.onnx B.onnx");
        var infos = new List<ModelInfo>();
        OnnxRunner? first = null;
        try
        {
            foreach (var path in paths)
            {
                var (info, runner) = Open(path, taskOverride, trainLengthOverride, options);
                if (first is null) first = runner;
                else
                {
                    first.AddMember(runner);
                    if (info.Task.Name != infos[0].Task.Name || info.TrainLength != infos[0].TrainLength)
                        throw new EvaluationException($"ensemble: '{path}' is a {info.Task.Name} model trained at size {info.TrainLength}, but '{paths[0]}' is a " +
                            $"{infos[0].Task.Name} model at size {infos[0].TrainLength}; an ensemble averages models of one task and training size");
                }
                infos.Add(info);
            }
        }
        catch
        {
            first?.Dispose();
            throw;
        }
        string hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(string.Join("\n", infos.Select(i => i.Sha256)))));
        var combined = infos[0] with
        {
            FileName = "ensemble(" + string.Join(", ", infos.Select(i => i.FileName)) + ")",
            Sha256 = hash,
            Bytes = infos.Sum(i => i.Bytes),
            Arch = infos.All(i => i.Arch == infos[0].Arch) ? infos[0].Arch : "mixed",
            Members = infos,
        };
        return (combined, first!);
    }

    /// <summary>Checks the file's header and metadata (no session); resolves task and training size.</summary>
    public static ModelInfo Inspect(string path, byte[] bytes, string? taskOverride, int? trainLengthOverride)
    {
        string file = System.IO.Path.GetFileName(path);
        OnnxModelHeader header;
        try
        {
            header = OnnxModelHeader.Read(bytes);
        }
        catch (InvalidDataException e)
        {
            throw new EvaluationException($"model '{path}' is not an ONNX model ({e.Message}): the file is corrupt or truncated; re-export or re-copy it");
        }
        if (!header.HasGraph)
            throw new EvaluationException($"model '{path}' is not an ONNX model (no graph in {bytes.Length:N0} bytes): the file is corrupt or truncated; re-export or re-copy it");
        if (header.IrVersion < MinIr || header.IrVersion > MaxIr)
            throw new EvaluationException($"model '{path}' has IR version {header.IrVersion}; ONNX Runtime 1.31 runs IR {MinIr}-{MaxIr}: re-export it with IR 10 (toolchain's exporter writes IR 10)");
        long opset = header.DefaultOpset ?? throw new EvaluationException($"model '{path}' imports no ai.onnx opset; re-export it with opset 21");
        if (opset < MinOpset || opset > MaxOpset)
            throw new EvaluationException($"model '{path}' uses ai.onnx opset {opset}; ONNX Runtime 1.31 runs opsets {MinOpset}-{MaxOpset}: re-export it with opset 21 (toolchain's exporter writes opset 21)");

        var meta = header.Metadata;
        bool hasMeta = meta.ContainsKey("toolchain.contract");
        if (hasMeta && meta["toolchain.contract"] != ContractVersion)
            throw new EvaluationException($"model '{path}' follows toolchain contract '{meta["toolchain.contract"]}'; this evaluator reads contract {ContractVersion}: use a matching toolchain version or re-export the model");

        string? taskName = meta.GetValueOrDefault("toolchain.task");
        if (taskOverride is not null)
        {
            if (taskName is not null && taskName != taskOverride)
                throw new EvaluationException($"model '{path}' says it solves task '{taskName}' but --task is '{taskOverride}': drop --task or pass the right model");
            taskName = taskOverride;
        }
        if (taskName is null)
            throw new EvaluationException(hasMeta
                ? $"model '{path}' has no toolchain.task metadata; pass --task and --train-length"
                : $"model '{path}' has no toolchain metadata (toolchain.contract, toolchain.task); pass --task T and --train-length K to evaluate it anyway");
        var task = TaskRegistry.TryGet(taskName) ?? throw new EvaluationException(
            $"model '{path}' names task '{taskName}', which this toolchain does not know; known tasks: {string.Join(", ", TaskRegistry.All.Select(t => t.Name))}");

        int? metaTrain = null;
        if (meta.TryGetValue("toolchain.train_length", out var tl))
        {
            if (!int.TryParse(tl, NumberStyles.None, CultureInfo.InvariantCulture, out int k) || k < 1)
                throw new EvaluationException($"model '{path}': toolchain.train_length '{tl}' is not a positive integer; re-export it");
            metaTrain = k;
        }
        if (trainLengthOverride is { } over && metaTrain is { } mt && over != mt)
            throw new EvaluationException($"model '{path}' was trained at size {mt} but --train-length is {over}: drop --train-length or pass the right model");
        int train = trainLengthOverride ?? metaTrain ?? throw new EvaluationException(
            $"model '{path}' has no toolchain.train_length metadata; pass --train-length K (the training size the levels multiply)");
        if (train < task.MinSize) throw new EvaluationException($"--train-length {train} is below the smallest size {task.MinSize} of task '{task.Name}'");

        if (meta.TryGetValue("toolchain.vocab", out var vocabJson))
        {
            string[]? vocab;
            try { vocab = JsonSerializer.Deserialize<string[]>(vocabJson); }
            catch (JsonException) { vocab = null; }
            if (vocab is null)
                throw new EvaluationException($"model '{path}': toolchain.vocab is not a JSON array of strings ({Short(vocabJson)}); re-export it");
            if (!vocab.SequenceEqual(task.Vocab))
                throw new EvaluationException($"model '{path}' has vocabulary [{string.Join(" ", vocab)}] but task '{task.Name}' has [{string.Join(" ", task.Vocab)}] (symbols in id order): " +
                    "it was exported for another encoding of the task; re-export it with this toolchain");
        }

        return new ModelInfo(
            System.IO.Path.GetFullPath(path), file,
            Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes.LongLength,
            task, train,
            meta.GetValueOrDefault("toolchain.arch") ?? "unknown",
            meta.GetValueOrDefault("toolchain.config"),
            meta.GetValueOrDefault("toolchain.source"),
            hasMeta, header.IrVersion, opset)
        { JoinedMembers = meta.TryGetValue("toolchain.ensemble", out var joined) ? JoinedList(joined) : null };
    }

    /// <summary>The members an ensemble file (`toolchain export --ensemble`) lists in its `toolchain.ensemble` metadata:
    /// each one's file, SHA-256, architecture and config; null when the value is not such a list (it only describes
    /// the model: grading does not depend on it).</summary>
    private static List<EnsembleMember>? JoinedList(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) return null;
            var list = new List<EnsembleMember>();
            foreach (var m in doc.RootElement.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object) return null;
                string? Text(string key) => m.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                var config = m.TryGetProperty("config", out var c) && c.ValueKind == JsonValueKind.Object ? c : (JsonElement?)null;
                string arch = config is { } cfg && cfg.TryGetProperty("arch", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : "unknown";
                list.Add(new EnsembleMember(Text("source") ?? "unknown", Text("sha256") ?? "unknown", arch, config?.GetRawText()));
            }
            return list.Count > 0 ? list : null;
        }
        catch (JsonException) { return null; }
    }

    private static string Short(string s) => s.Length > 60 ? s[..60] + "..." : s;

    /// <summary>Contract 1: exactly one input `tokens` int64 [batch, length]; an output `logits` float32
    /// [batch, length, vocab]; optionally `states`, nothing else.</summary>
    public static void CheckSignature(string path, InferenceSession session, int vocab)
    {
        const string need = "contract 1 needs one input 'tokens' (int64 [batch, length]) and the output 'logits' (float32 [batch, length, vocab]), optionally 'states'";
        var inputs = session.InputMetadata;
        if (inputs.Count != 1 || !inputs.ContainsKey("tokens"))
            throw new EvaluationException($"model '{path}' has input{(inputs.Count == 1 ? "" : "s")} {Names(inputs.Keys)}; {need}: re-export it");
        var t = inputs["tokens"];
        if (!t.IsTensor || t.ElementDataType != TensorElementType.Int64)
            throw new EvaluationException($"model '{path}': input 'tokens' is {Describe(t)}; {need}: re-export it");
        if (t.Dimensions.Length != 2)
            throw new EvaluationException($"model '{path}': input 'tokens' has rank {t.Dimensions.Length}; {need}: re-export it");
        if (t.Dimensions.Any(d => d > 0))
            throw new EvaluationException($"model '{path}': input 'tokens' has fixed dimensions [{string.Join(", ", t.Dimensions)}]; batch and length must be symbolic (dynamic axes): re-export it");

        var outputs = session.OutputMetadata;
        if (!outputs.ContainsKey("logits"))
            throw new EvaluationException($"model '{path}' has output{(outputs.Count == 1 ? "" : "s")} {Names(outputs.Keys)} but no 'logits'; {need}: re-export it");
        var extra = outputs.Keys.Where(k => k is not ("logits" or "states")).ToList();
        if (extra.Count > 0)
            throw new EvaluationException($"model '{path}' has unexpected output{(extra.Count == 1 ? "" : "s")} {Names(extra)}; {need}: re-export it");
        var l = outputs["logits"];
        if (!l.IsTensor || l.ElementDataType != TensorElementType.Float)
            throw new EvaluationException($"model '{path}': output 'logits' is {Describe(l)}; {need}: re-export it");
        if (l.Dimensions.Length != 3)
            throw new EvaluationException($"model '{path}': output 'logits' has rank {l.Dimensions.Length}; {need}: re-export it");
        if (l.Dimensions[2] > 0 && l.Dimensions[2] != vocab)
            throw new EvaluationException($"model '{path}': output 'logits' has {l.Dimensions[2]} classes but the task's vocabulary has {vocab} symbols; re-export it for this task");
    }

    private static string Names(IEnumerable<string> names) => string.Join(", ", names.Select(n => $"'{n}'"));

    private static string Describe(NodeMetadata m) =>
        m.IsTensor ? $"a {m.ElementDataType.ToString().ToLowerInvariant()} tensor" : $"a {m.OnnxValueType} value";
}
