using Toolchain.Export.Onnx;
using Toolchain.Train.Models;
using TorchSharp;
using static Toolchain.Export.ModelExporter;
using static TorchSharp.torch;

namespace Toolchain.Export.Architectures;

/// <summary>
/// `transformer` as ONNX: Gather embedding plus positions, then per layer (pre-LN) x += MHA(LayerNormalization(x))
/// and x += W2 Relu(W1 LayerNormalization(x)), a final LayerNormalization and a per-position MatMul readout.
/// Mirrors <see cref="TransformerBaseline"/> line by line.
/// Positions are computed inside the graph from the runtime length, so one model serves every length:
/// sinusoidal as Where(even channel, Sin, Cos)(Cast(Range(n)) * freq), with the per-channel frequencies
/// stored once as computed by TorchSharp; learned as Gather(positions, Min(Range(n), max_positions - 1)).
/// The network has a fixed depth and no recurrence over the length, so "loop" and "unrolled" mode build the
/// same graph: unrolled only fixes the length dimension of the input.
/// </summary>
public sealed class TransformerBaselineExporter : IArchitectureExporter
{
    public (string Logits, string? States) Build(GraphBuilder g, AlgorithmicModel model, ExportOptions options, string tokens)
    {
        var c = model.Config;
        int m = c.Maps, heads = c.Heads, dh = m / heads;
        int layers = (int)Parameter(model, "qkv_weight").shape[0];
        string embedding = Weight(g, "embedding", Parameter(model, "embedding"));
        string outWeight = WeightTransposed(g, "out_weight_t", Parameter(model, "out_weight"));
        string outBias = Weight(g, "out_bias", Parameter(model, "out_bias"));
        string lnfWeight = Weight(g, "lnf_weight", Parameter(model, "lnf_weight"));
        string lnfBias = Weight(g, "lnf_bias", Parameter(model, "lnf_bias"));
        var layerWeights = Enumerable.Range(0, layers).Select(l =>
        {
            string W(string name) => Weight(g, $"{name}_{l}", Parameter(model, name)[l]);
            string WT(string name) => WeightTransposed(g, $"{name}_t_{l}", Parameter(model, name)[l]);
            return new LayerWeights(W("ln1_weight"), W("ln1_bias"), W("ln2_weight"), W("ln2_bias"),
                WT("qkv_weight"), W("qkv_bias"), WT("proj_weight"), W("proj_bias"),
                WT("ff1_weight"), W("ff1_bias"), WT("ff2_weight"), W("ff2_bias"));
        }).ToArray();

        string n = g.Squeeze(g.Dim(tokens, 1), 0);                            // int64 scalar
        string range = g.Node("Range", [g.Scalar(0L), n, g.Scalar(1L)]);     // [n] int64
        string pe = c.Positions == "learned"
            ? g.Gather(Weight(g, "positions", Parameter(model, "positions")), g.Node("Min", [range, g.Scalar((long)c.MaxPositions - 1)]), 0)
            : Sinusoidal(g, range, m);                                        // [n, m]
        string x = g.Add(g.Gather(embedding, tokens, 0), pe);                 // [B, n, m]
        var states = new List<string>();
        if (options.WithStates) states.Add(g.Unsqueeze(x, 1));
        string scale = g.Scalar((float)Math.Sqrt(dh));
        foreach (var w in layerWeights)
        {
            string h = LayerNorm(g, x, w.Ln1Weight, w.Ln1Bias);
            string qkv = g.Linear(h, w.QkvT, w.QkvBias);                                       // [B, n, 3m]
            string q = g.Transpose(g.Reshape(g.Slice(qkv, 2, 0, m), 0, 0, heads, dh), 0, 2, 1, 3); // [B, H, n, dh]
            string k = g.Transpose(g.Reshape(g.Slice(qkv, 2, m, 2 * m), 0, 0, heads, dh), 0, 2, 3, 1); // [B, H, dh, n]
            string v = g.Transpose(g.Reshape(g.Slice(qkv, 2, 2 * m, 3 * m), 0, 0, heads, dh), 0, 2, 1, 3);
            string attn = g.Node("Softmax", [g.Div(g.MatMul(q, k), scale)], attrs: Attr.Int("axis", -1)); // [B, H, n, n]
            string ctx = g.Reshape(g.Transpose(g.MatMul(attn, v), 0, 2, 1, 3), 0, 0, m);
            x = g.Add(x, g.Linear(ctx, w.ProjT, w.ProjBias));
            string h2 = LayerNorm(g, x, w.Ln2Weight, w.Ln2Bias);
            x = g.Add(x, g.Linear(g.Relu(g.Linear(h2, w.Ff1T, w.Ff1Bias)), w.Ff2T, w.Ff2Bias));
            if (options.WithStates) states.Add(g.Unsqueeze(x, 1));
        }
        x = LayerNorm(g, x, lnfWeight, lnfBias);
        string logits = g.Linear(x, outWeight, outBias);
        return (logits, options.WithStates ? g.Concat(1, [.. states]) : null);
    }

    private sealed record LayerWeights(string Ln1Weight, string Ln1Bias, string Ln2Weight, string Ln2Bias,
        string QkvT, string QkvBias, string ProjT, string ProjBias, string Ff1T, string Ff1Bias, string Ff2T, string Ff2Bias);

    private static string LayerNorm(GraphBuilder g, string x, string weight, string bias) =>
        g.Node("LayerNormalization", [x, weight, bias], attrs: [Attr.Int("axis", -1), Attr.Float("epsilon", 1e-5f)]);

    /// <summary>TransformerBaseline.Sinusoidal for the runtime length: pe[p, c] = sin(p freq[c]) for even c,
    /// cos(p freq[c]) for odd c, with freq[c] = exp(-(c - c mod 2) / m ln 10000) stored as TorchSharp computes it.</summary>
    private static string Sinusoidal(GraphBuilder g, string range, int m)
    {
        float[] freq;
        using (var scope = torch.NewDisposeScope())
        {
            var i = torch.arange(m, dtype: ScalarType.Float32);
            freq = Data(torch.exp(-(i - i.remainder(2)) / m * Math.Log(10000.0)));
        }
        string frequencies = g.Initializer("sinusoid_freq", freq, m);                     // [m]
        string parity = g.Initializer("sinusoid_parity", Enumerable.Range(0, m).Select(k => (long)(k % 2)).ToArray(), m);
        string pos = g.Unsqueeze(g.Node("Cast", [range], attrs: Attr.Int("to", (long)ElementType.Float)), 1); // [n, 1]
        string angle = g.Mul(pos, frequencies);                                             // [n, m]
        string even = g.Node("Equal", [parity, g.Scalar(0L)]);                              // [m] bool
        return g.Node("Where", [even, g.Node("Sin", [angle]), g.Node("Cos", [angle])]);
    }
}
