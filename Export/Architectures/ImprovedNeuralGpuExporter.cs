using Toolchain.Export.Onnx;
using Toolchain.Train.Models;
using static Toolchain.Export.ModelExporter;

namespace Toolchain.Export.Architectures;

/// <summary>
/// `dngpu` as ONNX: Gather embedding -> [B, m, n] state; per step Conv + HardSigmoid(0.5, 0.5) + Split (gates),
/// Conv + Clip(-1, 1) (candidate), the diagonal shift as Pad + Slice + Concat, and the gated mix; then a
/// per-position MatMul readout. Mirrors <see cref="ImprovedNeuralGpu"/> line by line.
/// </summary>
public sealed class ImprovedNeuralGpuExporter : IArchitectureExporter
{
    public (string Logits, string? States) Build(GraphBuilder g, AlgorithmicModel model, ExportOptions options, string tokens)
    {
        int m = model.Config.Maps;
        long pad = model.Config.KernelWidth / 2;
        // loop mode: the step's weights are initializers of the loop body (constants there for ORT's optimizers)
        var loop = Recurrence.Loop(g, options);
        var wg = loop?.Body ?? g;
        var weights = new Weights(
            Weight(wg, "gate_weight", Parameter(model, "gate_weight")),
            Weight(wg, "gate_bias", Parameter(model, "gate_bias")),
            Weight(wg, "cand_weight", Parameter(model, "cand_weight")),
            Weight(wg, "cand_bias", Parameter(model, "cand_bias")));
        string embedding = Weight(g, "embedding", Parameter(model, "embedding"));
        string outWeight = WeightTransposed(g, "out_weight_t", Parameter(model, "out_weight"));
        string outBias = Weight(g, "out_bias", Parameter(model, "out_bias"));

        string s0 = g.Transpose(g.Gather(embedding, tokens, 0), 0, 2, 1); // [B, m, n]
        if (model.Config.EmbedClip) s0 = g.Clip(s0, -1f, 1f);
        // bin_padding: the state is held at zero on PAD positions (a per-token 0/1 table gathered to [B, 1, n])
        string? mask = null;
        if (model.Config.BinPadding)
        {
            var keep = new float[Parameter(model, "embedding").shape[0]];
            Array.Fill(keep, 1f);
            keep[Toolchain.Suites.AlgorithmicTask.Pad] = 0f;
            mask = g.Unsqueeze(g.Gather(g.Initializer("pad_mask_table", keep, keep.Length), tokens, 0), 1);
            s0 = g.Mul(s0, mask);
        }
        var (final, states) = Recurrence.Build(g, loop, options, model.Config, tokens, s0,
            step: (b, s, _) => mask is null ? Step(b, weights, s, m, pad) : b.Mul(Step(b, weights, s, m, pad), mask),
            image: (b, s) => b.Transpose(s, 0, 2, 1));
        string logits = g.Linear(g.Transpose(final, 0, 2, 1), outWeight, outBias);
        return (logits, states);
    }

    private sealed record Weights(string Gate, string GateBias, string Cand, string CandBias);

    // Written for ONNX Runtime's CPU kernels, where each elementwise op is a pass over the state: HardSigmoid on
    // both gates at once right after the Conv (fused into it as the Conv's activation), one Split instead of two
    // Slices, Clip fused into the candidate's Conv. The mix stays u*shift + (1-u)*c: a saturated gate (u exactly
    // 1) then carries the state bit for bit. The shorter c + u*(shift - c) rounds every carried value at every
    // step: on the trained dngpu-badd it put ONNX Runtime 1.4e-4 from float64 at length 161 (TorchSharp 1.7e-5).
    private static string Step(GraphBuilder b, Weights w, string s, int m, long pad)
    {
        var gates = b.Split(b.HardSigmoid(b.Conv(s, w.Gate, w.GateBias, pad), 0.5f, 0.5f), 1, m, m);
        string reset = gates[0], update = gates[1];
        string candidate = b.Clip(b.Conv(b.Mul(reset, s), w.Cand, w.CandBias, pad), -1f, 1f);
        string shifted = Shift(b, s, m);
        return b.Add(b.Mul(update, shifted), b.Mul(b.Sub(b.Scalar(1f), update), candidate));
    }

    /// <summary>Maps [0, a) take position i+1, maps [a, 2a) position i-1, the rest stay (zeros past the ends):
    /// one Pad of a zero on each end, then each group's window of the padded state.</summary>
    private static string Shift(GraphBuilder b, string s, int m)
    {
        var (left, right, none) = ImprovedNeuralGpu.ShiftGroups(m);
        string padded = b.Pad(s, 0, 0, 1, 0, 0, 1); // [B, m, n + 2]: position i of s is i + 1 here
        var parts = new List<string>();
        if (left > 0) parts.Add(b.Slice(padded, (1, 0, left), (2, 2, long.MaxValue)));
        if (right > 0) parts.Add(b.Slice(padded, (1, left, left + right), (2, 0, -2)));
        if (none > 0) parts.Add(b.Slice(padded, (1, left + right, m), (2, 1, -1)));
        return parts.Count == 1 ? parts[0] : b.Concat(1, [.. parts]);
    }
}
