using Google.Protobuf;
using Toolchain.Evaluate.OnnxGraph;

namespace Toolchain.Evaluate.Onnx;

/// <summary>
/// Drops a model's optional `states` output, and everything that only fed it, before grading. ONNX Runtime runs
/// every node of a graph whatever outputs are asked for, so a zoo model exported with its mental image would
/// otherwise build a (length + 1) x length x channels tensor per example that grading never reads (768 MB for one
/// length-2,000 example of a 48-map dngpu, before ONNX Runtime's copies of it): grading dngpu-reverse at 100x
/// with it reached 20.9 GB resident. The pruned graph computes the same logits with the same nodes.
/// </summary>
public static class StatesPruning
{
    public const string StatesOutput = "states";

    /// <summary>The model without `states`; null when it has no such output (use it as it is).</summary>
    public static byte[]? WithoutStates(byte[] model)
    {
        var m = ModelProto.Parser.ParseFrom(model);
        var g = m.Graph;
        int at = g?.Output.ToList().FindIndex(o => o.Name == StatesOutput) ?? -1;
        if (g is null || at < 0) return null;
        g.Output.RemoveAt(at);
        Prune(g);
        return m.ToByteArray();
    }

    /// <summary>Removes, until nothing changes, nodes none of whose outputs is used (by a node, a subgraph or
    /// the graph's outputs) and the trailing scan outputs of Loops that nothing uses (with the matching body
    /// outputs); then prunes each remaining subgraph the same way.</summary>
    private static void Prune(GraphProto g)
    {
        for (bool changed = true; changed;)
        {
            changed = false;
            var used = new HashSet<string>(g.Output.Select(o => o.Name), StringComparer.Ordinal);
            foreach (var n in g.Node) AddInputs(n, used);
            for (int k = g.Node.Count - 1; k >= 0; k--)
            {
                var n = g.Node[k];
                if (n.Output.All(o => o.Length == 0 || !used.Contains(o)))
                {
                    g.Node.RemoveAt(k);
                    changed = true;
                    continue;
                }
                if (n.OpType == "Loop" && n.Attribute.FirstOrDefault(a => a.Name == "body")?.G is { } body)
                {
                    int carried = n.Input.Count - 2; // inputs: trip count, condition, carried values
                    while (n.Output.Count > carried && !used.Contains(n.Output[^1]) && body.Output.Count == n.Output.Count + 1)
                    {
                        n.Output.RemoveAt(n.Output.Count - 1);
                        body.Output.RemoveAt(body.Output.Count - 1);
                        changed = true;
                    }
                }
            }
        }
        var live = new HashSet<string>(g.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        for (int k = g.ValueInfo.Count - 1; k >= 0; k--)
            if (!live.Contains(g.ValueInfo[k].Name)) g.ValueInfo.RemoveAt(k); // shapes of values that are gone
        foreach (var sub in g.Node.SelectMany(Subgraphs)) Prune(sub);
    }

    /// <summary>A node's inputs and, for control flow, every input inside its subgraphs (which may name values
    /// of this graph).</summary>
    private static void AddInputs(NodeProto n, HashSet<string> used)
    {
        foreach (var i in n.Input) used.Add(i);
        foreach (var sub in Subgraphs(n))
            foreach (var inner in sub.Node) AddInputs(inner, used);
    }

    private static IEnumerable<GraphProto> Subgraphs(NodeProto n) =>
        n.Attribute.SelectMany(a => a.G is null ? a.Graphs : a.Graphs.Prepend(a.G));
}
