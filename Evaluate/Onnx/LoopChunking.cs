using System.Globalization;
using Google.Protobuf;
using Toolchain.Evaluate.OnnxGraph;

namespace Toolchain.Evaluate.Onnx;

/// <summary>
/// Runs a model's step Loop K steps per iteration (`eval --loop-chunk K`). A loop export of the Neural GPUs is one
/// ONNX Loop of n iterations (n = the input's length), each one step. ONNX Runtime pays a fixed cost per iteration
/// besides the step's own kernels (running the body as a subgraph; on CUDA it may also wait for the device each
/// iteration), which at 40,001 steps may dominate a GPU run. The rewrite replaces each such Loop by
///   Loop(n / K) whose body is the step written out K times (iteration i runs steps i*K .. i*K + K-1), then
///   Loop(n mod K) of the original body, its iteration number offset by (n / K) * K,
/// which computes the same steps in the same order with the same nodes: the logits are those of the original Loop.
/// Only Loops that always run their trip count qualify (no initial condition, the body's condition output is its
/// condition input passed through, no per-iteration scan outputs, no nested subgraphs), which is every loop export
/// of this toolchain once `states` is pruned; anything else is left as it is and said why.
/// </summary>
public static class LoopChunking
{
    /// <summary>The model with every qualifying top-level Loop chunked by <paramref name="k"/> (k >= 2); null, with
    /// <paramref name="why"/>, when no Loop qualifies (the model then runs as it is).</summary>
    public static byte[]? Chunk(byte[] model, int k, out string why)
    {
        if (k < 2) throw new ArgumentOutOfRangeException(nameof(k), k, "a chunk of fewer than 2 steps is the Loop itself");
        var m = ModelProto.Parser.ParseFrom(model);
        var g = m.Graph;
        why = "";
        if (g is null) { why = "the model has no graph"; return null; }
        // the rewrite names its values loop_chunk*; a model that already uses such names is left alone
        if (Names(g).Any(n => n.StartsWith("loop_chunk", StringComparison.Ordinal)))
        {
            why = "it already names values loop_chunk* (the names the rewrite uses)";
            return null;
        }
        int chunked = 0, loops = 0;
        var reasons = new List<string>();
        for (int at = 0; at < g.Node.Count; at++)
        {
            var node = g.Node[at];
            if (node.OpType != "Loop" || node.Domain is { Length: > 0 } and not "ai.onnx") continue;
            loops++;
            string? refusal = Refusal(node);
            if (refusal is not null) { reasons.Add(refusal); continue; }
            var replacement = Rewrite(node, k, $"loop_chunk{chunked}_");
            g.Node.RemoveAt(at);
            for (int j = 0; j < replacement.Count; j++) g.Node.Insert(at + j, replacement[j]);
            at += replacement.Count - 1;
            chunked++;
        }
        if (chunked == 0)
        {
            why = loops == 0 ? "the model has no Loop (an unrolled export, or an architecture without a step loop)"
                : $"its Loop cannot be chunked: {string.Join("; ", reasons.Distinct())}";
            return null;
        }
        return m.ToByteArray();
    }

    /// <summary>Every value name a graph and its subgraphs define or read.</summary>
    private static IEnumerable<string> Names(GraphProto g) =>
        g.Input.Select(i => i.Name).Concat(g.Node.SelectMany(n => n.Input.Concat(n.Output)
            .Concat(n.Attribute.SelectMany(a => a.Graphs.Prepend(a.G)).Where(sub => sub is not null).SelectMany(Names))));

    private static GraphProto? Body(NodeProto loop) => loop.Attribute.FirstOrDefault(a => a.Name == "body")?.G;

    /// <summary>Why a Loop cannot be chunked, or null when it can.</summary>
    private static string? Refusal(NodeProto loop)
    {
        var body = Body(loop);
        if (body is null) return "no body graph";
        if (loop.Input.Count < 3 || loop.Input[0].Length == 0) return "no trip count or no loop-carried value";
        if (loop.Input[1].Length > 0) return "it has a condition input (it may stop early)";
        int carried = loop.Input.Count - 2;
        if (body.Input.Count != carried + 2) return "its body's inputs do not match the Loop's";
        if (body.Output.Count != carried + 1 || loop.Output.Count != carried) return "it has per-iteration (scan) outputs";
        if (body.Node.Any(n => n.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0))) return "its body has nested subgraphs";
        string condIn = body.Input[1].Name, condOut = body.Output[0].Name;
        bool passThrough = condOut == condIn
            || body.Node.Any(n => n.OpType == "Identity" && n.Output.Count == 1 && n.Output[0] == condOut && n.Input.Count == 1 && n.Input[0] == condIn);
        return passThrough ? null : "its body computes its condition (it may stop early)";
    }

    /// <summary>The nodes replacing <paramref name="loop"/>: the trip-count arithmetic, the chunked Loop and the Loop
    /// of the remaining steps.</summary>
    private static List<NodeProto> Rewrite(NodeProto loop, int k, string p)
    {
        var body = Body(loop)!;
        string trips = loop.Input[0];
        var initial = loop.Input.Skip(2).ToList();
        var nodes = new List<NodeProto>
        {
            Constant(p + "k", k),
            Op("Div", [trips, p + "k"], p + "chunks"),   // trip counts are >= 0: integer Div is the floor
            Op("Mul", [p + "chunks", p + "k"], p + "done"),
            Op("Sub", [trips, p + "done"], p + "rest"),
        };
        var middle = initial.Select((_, i) => $"{p}mid{i}").ToList();
        var chunkedLoop = new NodeProto { OpType = "Loop", Name = loop.Name + "_chunked" };
        chunkedLoop.Input.Add([p + "chunks", "", .. initial]);
        chunkedLoop.Output.Add(middle);
        chunkedLoop.Attribute.Add(new AttributeProto { Name = "body", Type = 5, G = Unroll(body, k, offset: null, p + "c") });
        var restLoop = new NodeProto { OpType = "Loop", Name = loop.Name + "_rest" };
        restLoop.Input.Add([p + "rest", "", .. middle]);
        restLoop.Output.Add(loop.Output);
        restLoop.Attribute.Add(new AttributeProto { Name = "body", Type = 5, G = Unroll(body, 1, offset: p + "done", p + "r") });
        nodes.Add(chunkedLoop);
        nodes.Add(restLoop);
        return nodes;
    }

    /// <summary>A body running <paramref name="copies"/> steps: copy j reads copy j-1's carried outputs and sees the
    /// iteration number iter * copies + j (+ <paramref name="offset"/>, an outer value, when given). Every value the
    /// body defines is renamed per copy (suffix tag + j); inputs, initializers and outer values keep their names.</summary>
    private static GraphProto Unroll(GraphProto body, int copies, string? offset, string tag)
    {
        var g = body.Clone();
        g.Node.Clear();
        g.ValueInfo.Clear(); // optional shape hints of the original names
        string iter = body.Input[0].Name, condIn = body.Input[1].Name;
        var carriedIn = body.Input.Skip(2).Select(i => i.Name).ToList();
        var defined = body.Node.SelectMany(n => n.Output).Where(o => o.Length > 0).ToHashSet(StringComparer.Ordinal);
        bool usesIter = body.Node.Any(n => n.Input.Contains(iter));

        // the iteration number of the first copy
        string? first = null;
        if (usesIter)
        {
            first = iter;
            if (copies > 1)
            {
                g.Node.Add(Constant(tag + "_copies", copies));
                g.Node.Add(Op("Mul", [first, tag + "_copies"], tag + "_iter_base"));
                first = tag + "_iter_base";
            }
            if (offset is not null)
            {
                g.Node.Add(Op("Add", [first, offset], tag + "_iter_offset"));
                first = tag + "_iter_offset";
            }
        }

        var current = carriedIn;
        Dictionary<string, string> map = [];
        for (int j = 0; j < copies; j++)
        {
            map = new Dictionary<string, string>(StringComparer.Ordinal) { [condIn] = condIn };
            for (int i = 0; i < carriedIn.Count; i++) map[carriedIn[i]] = current[i];
            if (usesIter)
            {
                if (j == 0) map[iter] = first!;
                else
                {
                    g.Node.Add(Constant($"{tag}_step{j}", j));
                    g.Node.Add(Op("Add", [first!, $"{tag}_step{j}"], $"{tag}_iter{j}"));
                    map[iter] = $"{tag}_iter{j}";
                }
            }
            string suffix = $"__{tag}{j}";
            foreach (var name in defined) map[name] = name + suffix;
            foreach (var n in body.Node)
            {
                var copy = n.Clone();
                if (copy.HasName && copy.Name.Length > 0) copy.Name += suffix;
                for (int i = 0; i < copy.Input.Count; i++)
                    if (map.TryGetValue(copy.Input[i], out var renamed)) copy.Input[i] = renamed;
                for (int i = 0; i < copy.Output.Count; i++)
                    if (copy.Output[i].Length > 0) copy.Output[i] = map[copy.Output[i]];
                g.Node.Add(copy);
            }
            current = body.Output.Skip(1).Select(o => map.GetValueOrDefault(o.Name, o.Name)).ToList();
        }
        // the last copy's outputs are the body's outputs (condition, then the carried values)
        g.Output[0].Name = map.GetValueOrDefault(body.Output[0].Name, body.Output[0].Name);
        for (int i = 0; i < current.Count; i++) g.Output[i + 1].Name = current[i];
        return g;
    }

    private static NodeProto Op(string type, string[] inputs, string output)
    {
        var n = new NodeProto { OpType = type, Name = output };
        n.Input.Add(inputs);
        n.Output.Add(output);
        return n;
    }

    /// <summary>An int64 scalar (Constant with value_int, opset 12 and later).</summary>
    private static NodeProto Constant(string output, long value)
    {
        var n = new NodeProto { OpType = "Constant", Name = output };
        n.Output.Add(output);
        n.Attribute.Add(new AttributeProto { Name = "value_int", Type = 2, I = value });
        return n;
    }

    /// <summary>"loop" or "chunks of K steps", for logs and reports.</summary>
    public static string Describe(int k) => k <= 1 ? "loop" : $"chunks of {k.ToString(CultureInfo.InvariantCulture)} steps";
}
