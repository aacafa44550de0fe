using Toolchain.Export.Onnx;
using Toolchain.Train.Models;
using TorchSharp;
using static Toolchain.Export.ModelExporter;
using static TorchSharp.torch;

namespace Toolchain.Export.Architectures;

/// <summary>
/// `gru` and `lstm` as ONNX: Gather embedding -> [B, n, m], concatenated with n zero steps along time
/// (2n steps), then per layer one ONNX GRU (linear_before_reset=1, as PyTorch) or LSTM node over the whole
/// sequence, with the residual around every layer after the first; the logits read the last n steps.
/// Mirrors <see cref="RecurrentBaseline"/> line by line.
/// The recurrence over time lives inside the GRU/LSTM operators, whose sequence length is the input's, so
/// "loop" and "unrolled" mode build the same graph: unrolled only fixes the length dimension of the input.
/// Weights are rearranged once into ONNX's layout: W [1, G*m, m], R [1, G*m, m], B [1, 2*G*m] = [Wb, Rb],
/// gates reordered from PyTorch's [r, z, n] to ONNX GRU's [z, r, h] and from PyTorch's [i, f, g, o] to
/// ONNX LSTM's [i, o, f, c].
/// </summary>
public sealed class RecurrentBaselineExporter : IArchitectureExporter
{
    public (string Logits, string? States) Build(GraphBuilder g, AlgorithmicModel model, ExportOptions options, string tokens)
    {
        var c = model.Config;
        bool lstm = c.Arch == "lstm";
        int m = c.Maps;
        string embedding = Weight(g, "embedding", Parameter(model, "embedding"));
        string outWeight = WeightTransposed(g, "out_weight_t", Parameter(model, "out_weight"));
        string outBias = Weight(g, "out_bias", Parameter(model, "out_bias"));

        string emb = g.Gather(embedding, tokens, 0);                                       // [B, n, m]
        string zeros = g.Node("ConstantOfShape", [g.Shape(emb)]);                          // [B, n, m] of 0f
        string x = g.Concat(1, emb, zeros);                                                // [B, 2n, m]
        string n = g.Dim(tokens, 1);                                                       // [1] int64
        var states = new List<string>();
        for (int i = 0; i < c.Layers; i++)
        {
            string y = lstm ? Lstm(g, model, i, m, x) : Gru(g, model, i, m, x);
            x = i == 0 ? y : g.Add(x, y);
            if (options.WithStates) states.Add(g.Unsqueeze(SecondHalf(g, x, n), 1));
        }
        string logits = g.Linear(SecondHalf(g, x, n), outWeight, outBias);
        return (logits, options.WithStates ? (states.Count == 1 ? states[0] : g.Concat(1, [.. states])) : null);
    }

    /// <summary>x[:, n:, :] for a runtime n.</summary>
    private static string SecondHalf(GraphBuilder g, string x, string n) =>
        g.Node("Slice", [x, n, g.Ints(long.MaxValue), g.Ints(1)]);

    /// <summary>One nn.GRU layer, batch first, zero initial state: [B, T, m] -> [B, T, m].</summary>
    private static string Gru(GraphBuilder g, AlgorithmicModel model, int layer, int m, string x)
    {
        // PyTorch [r, z, n] -> ONNX [z, r, h]
        long[] order = [1, 0, 2];
        string prefix = $"layers.{layer}.gru.";
        var (w, r, b) = Rearranged(g, model, prefix, $"gru_{layer}", m, order);
        string[] outputs = [g.Fresh("gru_y"), ""];
        g.NodeMulti("GRU", [TimeMajor(g, x), w, r, b], outputs,
            Attr.Int("hidden_size", m), Attr.Int("linear_before_reset", 1));
        return BatchMajor(g, outputs[0]);
    }

    /// <summary>One nn.LSTM layer, batch first, zero initial state: [B, T, m] -> [B, T, m].</summary>
    private static string Lstm(GraphBuilder g, AlgorithmicModel model, int layer, int m, string x)
    {
        // PyTorch [i, f, g, o] -> ONNX [i, o, f, c]
        long[] order = [0, 3, 1, 2];
        string prefix = $"layers.{layer}.lstm.";
        var (w, r, b) = Rearranged(g, model, prefix, $"lstm_{layer}", m, order);
        string[] outputs = [g.Fresh("lstm_y"), "", ""];
        g.NodeMulti("LSTM", [TimeMajor(g, x), w, r, b], outputs, Attr.Int("hidden_size", m));
        return BatchMajor(g, outputs[0]);
    }

    /// <summary>Stores W [1, G*m, m], R [1, G*m, m] and B [1, 2*G*m] with the gate blocks in ONNX order.</summary>
    private static (string W, string R, string B) Rearranged(GraphBuilder g, AlgorithmicModel model, string prefix, string name, int m, long[] order)
    {
        Tensor Reorder(Tensor p) => torch.cat(order.Select(k => p.narrow(0, k * m, m)).ToArray(), 0);
        using var scope = torch.NewDisposeScope();
        var wih = Reorder(Parameter(model, prefix + "weight_ih_l0")).unsqueeze(0);
        var whh = Reorder(Parameter(model, prefix + "weight_hh_l0")).unsqueeze(0);
        var bias = torch.cat([Reorder(Parameter(model, prefix + "bias_ih_l0")), Reorder(Parameter(model, prefix + "bias_hh_l0"))], 0).unsqueeze(0);
        return (Weight(g, name + "_W", wih), Weight(g, name + "_R", whh), Weight(g, name + "_B", bias));
    }

    /// <summary>[B, T, m] -> [T, B, m] (layout 0, which ONNX Runtime's CPU kernels require).</summary>
    private static string TimeMajor(GraphBuilder g, string x) => g.Transpose(x, 1, 0, 2);

    /// <summary>Y [T, 1, B, m] -> [B, T, m].</summary>
    private static string BatchMajor(GraphBuilder g, string y) => g.Transpose(g.Squeeze(y, 1), 1, 0, 2);
}
