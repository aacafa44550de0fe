using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Export.Onnx.Proto;
using Toolchain.Suites;

namespace Toolchain.Export.Onnx;

/// <summary>A model of an ensemble: its ONNX model, where it came from (a file or a checkpoint, for messages and the
/// metadata) and the SHA-256 of its serialized bytes.</summary>
public sealed record MemberModel(ModelProto Model, string Source)
{
    public string Sha256 { get; } = Convert.ToHexStringLower(SHA256.HashData(Model.ToByteArray()));

    /// <summary>The export mode; loop (one model for every length) when a hand-built model does not say.</summary>
    public string Mode => Model.MetadataProps.FirstOrDefault(p => p.Key == "toolchain.mode")?.Value ?? "loop";

    public string Metadata(string key) => Model.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value
        ?? throw new ArgumentException($"'{Source}' has no '{key}' metadata: it was not exported by `toolchain export`; an ensemble joins models this toolchain exported");
}

/// <summary>One parity point of an ensemble: the size, the encoded length and the worst |difference| between the joined
/// model's logits and the members' log-averaged softmax computed here in float64 from each member run on its own.</summary>
public sealed record EnsembleParityPoint(int Size, int Length, double MaxAbsDifference);

/// <summary>
/// Joins K models of one task and training size into one ONNX model that any runtime grades as the ensemble. Every
/// member's graph goes in whole, its names prefixed "m0.", "m1.", ..., all reading the shared `tokens` input, and the
/// `logits` output is the log of the members' averaged softmax probabilities,
/// <code>log((1/K) sum_k softmax(z_k)) = ReduceLogSumExp_k(LogSoftmax(z_k)) - log K</code>
/// (the max-subtracted log-sum-exp: finite however confident a member is). Its argmax at each position is the argmax
/// of the averaged probabilities, which is what `toolchain eval --ensemble` grades; a position where the averages tie
/// exactly gets the first of the tied tokens here and no prediction there (a tie of float sums: not seen in practice).
/// </summary>
public static class EnsembleWriter
{
    /// <summary>Metadata key of the members: a JSON array of {source, sha256, config} in member order.</summary>
    public const string MembersKey = "toolchain.ensemble";

    /// <summary>Metadata that must agree between members (what the model is graded on and how its input is read).</summary>
    private static readonly string[] SharedKeys = ["toolchain.contract", "toolchain.task", "toolchain.vocab", "toolchain.train_length"];

    public static ModelProto Join(IReadOnlyList<MemberModel> members)
    {
        if (members.Count < 2) throw new ArgumentException($"an ensemble needs at least two models, got {members.Count}");
        var first = members[0];
        if (TaskRegistry.TryGet(first.Metadata("toolchain.task")) is null)
            throw new ArgumentException($"'{first.Source}' is a model of task '{first.Metadata("toolchain.task")}', which this toolchain does not know; known tasks: {string.Join(", ", TaskRegistry.All.Select(t => t.Name))}");
        if (!int.TryParse(first.Metadata("toolchain.train_length"), NumberStyles.None, CultureInfo.InvariantCulture, out int size) || size < 1)
            throw new ArgumentException($"'{first.Source}' has toolchain.train_length = '{first.Metadata("toolchain.train_length")}', not a positive whole number; export it again with `toolchain export`");
        foreach (var m in members)
        {
            foreach (var key in SharedKeys)
                if (m.Metadata(key) != first.Metadata(key))
                    throw new ArgumentException($"'{m.Source}' has {key} = {m.Metadata(key)} but '{first.Source}' has {first.Metadata(key)}; an ensemble joins models of one task, vocabulary, training size and export mode");
            if (m.Mode != first.Mode)
                throw new ArgumentException($"'{m.Source}' has toolchain.mode = {m.Mode} but '{first.Source}' has {first.Mode}; an ensemble joins models of one task, vocabulary, training size and export mode");
            if (m.Mode == "unrolled" && m.Metadata("toolchain.length") != first.Metadata("toolchain.length"))
                throw new ArgumentException($"'{m.Source}' is unrolled for length {m.Metadata("toolchain.length")} but '{first.Source}' for {first.Metadata("toolchain.length")}; join models of one length");
            if (m.Model.MetadataProps.Any(p => p.Key == MembersKey))
                throw new ArgumentException($"'{m.Source}' is already an ensemble; join its members and the other models in one ensemble instead");
            if (m.Model.IrVersion != first.Model.IrVersion || Opsets(m.Model) != Opsets(first.Model))
                throw new ArgumentException($"'{m.Source}' has IR {m.Model.IrVersion} and opsets {Opsets(m.Model)} but '{first.Source}' has IR {first.Model.IrVersion} and {Opsets(first.Model)}; export both with this toolchain");
            var g = m.Model.Graph ?? throw new ArgumentException($"'{m.Source}' has no graph");
            if (g.Input.Count != 1 || g.Input[0].Name != "tokens")
                throw new ArgumentException($"'{m.Source}' does not read one input named 'tokens' (contract 1); export it with `toolchain export`");
            if (g.Output.Any(o => o.Name == "states"))
                throw new ArgumentException($"'{m.Source}' has the 'states' output (exported --with-states): inside an ensemble its Loop would stack every step's state for nothing; export the member again without --with-states");
            if (g.Output.Count != 1 || g.Output[0].Name != "logits")
                throw new ArgumentException($"'{m.Source}' has outputs {string.Join(", ", g.Output.Select(o => o.Name))}; contract 1 has the one output 'logits'");
        }

        // the averaging tail, built first under its own prefix; the members' nodes go before it (topological order)
        var tail = new GraphBuilder($"ensemble_{members.Count}_{first.Metadata("toolchain.task")}", prefix: "ensemble.");
        var logProbs = Enumerable.Range(0, members.Count)
            .Select(k => tail.Node("Unsqueeze", [tail.Node("LogSoftmax", [$"m{k}.logits"], attrs: Attr.Int("axis", -1)), tail.Ints(0)]))
            .ToArray();
        var logSum = tail.Node("ReduceLogSumExp", [tail.Node("Concat", logProbs, attrs: Attr.Int("axis", 0)), tail.Ints(0)], attrs: Attr.Int("keepdims", 0));
        tail.Node("Sub", [logSum, tail.Scalar((float)Math.Log(members.Count))], "logits");
        var graph = tail.Build();
        var tailNodes = graph.Node.ToList();
        graph.Node.Clear();
        graph.Input.Add(first.Model.Graph.Input[0].Clone());
        for (int k = 0; k < members.Count; k++)
        {
            var g = members[k].Model.Graph.Clone();
            Rename(g, $"m{k}.", keep: "tokens");
            graph.Node.AddRange(g.Node);
            graph.Initializer.AddRange(g.Initializer);
            graph.ValueInfo.AddRange(g.ValueInfo);
        }
        graph.Node.AddRange(tailNodes);
        graph.Output.Add(first.Model.Graph.Output[0].Clone());

        var model = new ModelProto
        {
            IrVersion = first.Model.IrVersion,
            ProducerName = first.Model.ProducerName,
            ProducerVersion = first.Model.ProducerVersion,
            Graph = graph,
        };
        model.OpsetImport.AddRange(first.Model.OpsetImport.Select(o => o.Clone()));
        // the first member's metadata (task, vocabulary, size, architecture, its config) describes the ensemble's
        // input and output; the source is the SHA-256 over the members' hashes, one per line, as `eval --ensemble`
        // names the same members, and every member is listed
        var metadata = first.Model.MetadataProps.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        metadata["toolchain.source"] = "ensemble:" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", members.Select(m => m.Sha256)))));
        metadata[MembersKey] = JsonSerializer.Serialize(members.Select(m => new Dictionary<string, object?>
        {
            ["source"] = m.Source,
            ["sha256"] = m.Sha256,
            ["source_checkpoint"] = m.Metadata("toolchain.source"),
            ["config"] = JsonDocument.Parse(m.Metadata("toolchain.config")).RootElement,
        }));
        foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    /// <summary>Checks the joined model against its members at these sizes: each member runs alone under ONNX Runtime,
    /// the log-averaged softmax of their logits is computed in float64 here, and the joined model's logits must match
    /// it within <paramref name="tolerance"/> at every position (a <see cref="ParityException"/> otherwise).</summary>
    public static IReadOnlyList<EnsembleParityPoint> CheckParity(ModelProto joined, IReadOnlyList<MemberModel> members, IReadOnlyList<int> sizes, double tolerance = 1e-4, int batch = 4)
    {
        var task = TaskRegistry.Get(members[0].Metadata("toolchain.task"));
        var sessions = members.Select(m => m.Model).Prepend(joined).Select(m => new InferenceSession(m.ToByteArray(), new SessionOptions())).ToList();
        try
        {
            var points = new List<EnsembleParityPoint>();
            foreach (int size in sizes)
            {
                int length = task.LengthForSize(size);
                var tokens = ModelExporter.ParityInputs(task, size, length, batch);
                var logits = sessions.Select(s => ModelExporter.RunLogits(s, tokens, batch, length)).ToList();
                int vocab = task.Vocab.Count, positions = batch * length;
                double worst = 0;
                for (int p = 0; p < positions; p++)
                {
                    var expected = LogMeanSoftmax(logits.Skip(1).Select(l => l.AsSpan(p * vocab, vocab).ToArray()).ToList());
                    for (int v = 0; v < vocab; v++)
                    {
                        double d = Math.Abs(expected[v] - logits[0][p * vocab + v]);
                        if (!(d <= worst)) worst = double.IsNaN(d) ? double.PositiveInfinity : d;
                    }
                }
                points.Add(new EnsembleParityPoint(size, length, worst));
                if (!(worst <= tolerance))
                    throw new ParityException(string.Create(CultureInfo.InvariantCulture,
                        $"ensemble parity failed at size {size} (length {length}): the joined model's logits are {worst:G3} from the members' log-averaged softmax (tolerance {tolerance:G3}); the model was not written"));
            }
            return points;
        }
        finally { foreach (var s in sessions) s.Dispose(); }
    }

    /// <summary>The sizes (multiples of the members' training size, at least the task's smallest) where parity is checked.</summary>
    public static IReadOnlyList<int> ParitySizes(MemberModel member, IReadOnlyList<double> multiples)
    {
        var task = TaskRegistry.Get(member.Metadata("toolchain.task"));
        if (member.Mode == "unrolled")
            return [task.SizeForLength(int.Parse(member.Metadata("toolchain.length"), CultureInfo.InvariantCulture))];
        int trainLength = int.Parse(member.Metadata("toolchain.train_length"), CultureInfo.InvariantCulture);
        return multiples.Select(m => Math.Max(task.MinSize, (int)Math.Round(trainLength * m))).Distinct().ToList();
    }

    /// <summary>log((1/K) sum_k softmax(z_k)) in float64, max-subtracted.</summary>
    public static double[] LogMeanSoftmax(IReadOnlyList<float[]> logits)
    {
        int vocab = logits[0].Length;
        var logProbs = logits.Select(z =>
        {
            double max = z.Max(x => (double)x), sum = z.Sum(x => Math.Exp(x - max));
            return z.Select(x => x - max - Math.Log(sum)).ToArray();
        }).ToList();
        var result = new double[vocab];
        for (int v = 0; v < vocab; v++)
        {
            double max = logProbs.Max(l => l[v]);
            result[v] = max + Math.Log(logProbs.Sum(l => Math.Exp(l[v] - max))) - Math.Log(logits.Count);
        }
        return result;
    }

    /// <summary>Prefixes every value, initializer and node name of a graph and of its subgraphs (which may name the
    /// outer graph's values: the same prefix keeps those references intact), except <paramref name="keep"/>.</summary>
    private static void Rename(GraphProto g, string prefix, string keep)
    {
        string R(string n) => n.Length == 0 || n == keep ? n : prefix + n;
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo)) v.Name = R(v.Name);
        foreach (var t in g.Initializer) t.Name = R(t.Name);
        foreach (var n in g.Node)
        {
            for (int i = 0; i < n.Input.Count; i++) n.Input[i] = R(n.Input[i]);
            for (int i = 0; i < n.Output.Count; i++) n.Output[i] = R(n.Output[i]);
            if (n.HasName) n.Name = prefix + n.Name;
            foreach (var a in n.Attribute)
            {
                if (a.G is not null) Rename(a.G, prefix, keep);
                foreach (var sub in a.Graphs) Rename(sub, prefix, keep);
            }
        }
    }

    private static string Opsets(ModelProto m) =>
        string.Join(",", m.OpsetImport.OrderBy(o => o.Domain, StringComparer.Ordinal).Select(o => $"{(o.Domain.Length == 0 ? "ai.onnx" : o.Domain)}:{o.Version}"));
}
