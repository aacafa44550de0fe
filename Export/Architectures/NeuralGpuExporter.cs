using Toolchain.Export.Onnx;
using Toolchain.Train.Models;
using TorchSharp;
using static Toolchain.Export.ModelExporter;

namespace Toolchain.Export.Architectures;

/// <summary>
/// `ngpu` as ONNX: the embedding padded into column 0 of a [B, m, n, w] mental image; per step, l CGRU
/// layers (Conv 2-D, cutoff sigmoid as Sigmoid/Mul/Sub/Clip, Tanh); the answer read off column 0.
/// Relaxation parameter sets not yet averaged are stored once per layer as [r, ...] initializers and
/// picked per step with Gather(set = step mod r). Mirrors <see cref="NeuralGpu"/> line by line.
/// </summary>
public sealed class NeuralGpuExporter : IArchitectureExporter
{
    public (string Logits, string? States) Build(GraphBuilder g, AlgorithmicModel model, ExportOptions options, string tokens)
    {
        var c = model.Config;
        int m = c.Maps, w = c.Width, sets = model.ParameterSets;
        long ph = c.KernelHeight / 2, pw = c.KernelWidth / 2;
        var gateWeight = Parameter(model, "gate_weight");
        var gateBias = Parameter(model, "gate_bias");
        var candWeight = Parameter(model, "cand_weight");
        var candBias = Parameter(model, "cand_bias");
        int layers = (int)gateWeight.shape[1];
        // Loop mode keeps the recurrent weights as initializers of the loop body itself, not of the outer graph:
        // ONNX Runtime's layout optimizations (NCHWc convolutions with reordered weights, fused activations)
        // only take constant initializers of the graph being optimized, and outer-scope values are not that.
        // Measured on 2 cores (toolchain bench): ngpu m=24 at n=41 ran 1.44x slower than unrolled before this.
        var loop = Recurrence.Loop(g, options);
        var wg = loop?.Body ?? g;
        var layerWeights = new List<LayerWeights>();
        for (int l = 0; l < layers; l++)
        {
            // [r, ...] per layer when the sets are still separate, else the single set's tensor
            TorchSharp.torch.Tensor Layer(TorchSharp.torch.Tensor p) => sets > 1 ? p.select(1, l) : p[0, l];
            layerWeights.Add(new LayerWeights(
                Weight(wg, $"gate_weight_{l}", Layer(gateWeight)), Weight(wg, $"gate_bias_{l}", Layer(gateBias)),
                Weight(wg, $"cand_weight_{l}", Layer(candWeight)), Weight(wg, $"cand_bias_{l}", Layer(candBias))));
        }
        string embedding = Weight(g, "embedding", Parameter(model, "embedding"));
        string outWeight = WeightTransposed(g, "out_weight_t", Parameter(model, "out_weight"));
        string outBias = Weight(g, "out_bias", Parameter(model, "out_bias"));
        var cell = new Cell(layerWeights, m, sets, ph, pw, (float)c.GateCutoff);

        string emb = g.Unsqueeze(g.Transpose(g.Gather(embedding, tokens, 0), 0, 2, 1), 3); // [B, m, n, 1]
        string s0 = w > 1 ? g.Pad(emb, 0, 0, 0, 0, 0, 0, 0, w - 1) : emb;                   // [B, m, n, w]
        var (final, states) = Recurrence.Build(g, loop, options, model.Config, tokens, s0,
            step: (b, s, index) => cell.Step(b, s, sets > 1 ? b.Node("Mod", [index(), b.Scalar((long)sets)]) : null),
            image: Image);
        string first = g.Transpose(g.Pick(final, 0, 3), 0, 2, 1); // column 0 -> [B, n, m]
        return (g.Linear(first, outWeight, outBias), states);
    }

    /// <summary>The mental image as [B, n, w*m], as NeuralGpu.StateImage.</summary>
    private static string Image(GraphBuilder b, string s) => b.Reshape(b.Transpose(s, 0, 2, 3, 1), 0, 0, -1);

    private sealed record LayerWeights(string Gate, string GateBias, string Cand, string CandBias);

    private sealed record Cell(List<LayerWeights> Layers, int M, int Sets, long Ph, long Pw, float Cutoff)
    {
        public string Step(GraphBuilder b, string s, string? set)
        {
            foreach (var lw in Layers)
            {
                string W(string name) => set is null ? name : b.Gather(name, set, 0);
                // the cutoff sigmoid on both gates at once, then one Split (ONNX Runtime: fewer passes over the image)
                var gates = b.Split(CutoffSigmoid(b, b.Conv(s, W(lw.Gate), W(lw.GateBias), Ph, Pw)), 1, M, M);
                string update = gates[0], reset = gates[1];
                string candidate = b.Tanh(b.Conv(b.Mul(reset, s), W(lw.Cand), W(lw.CandBias), Ph, Pw));
                // u*s + (1-u)*c as written: with the gate clipped to exactly 1 the state is carried bit for bit
                // (c + u*(s - c) would round it at every step; see ImprovedNeuralGpuExporter)
                s = b.Add(b.Mul(update, s), b.Mul(b.Sub(b.Scalar(1f), update), candidate));
            }
            return s;
        }

        private string CutoffSigmoid(GraphBuilder b, string x) =>
            b.Clip(b.Sub(b.Mul(b.Sigmoid(x), Cutoff), b.Scalar((Cutoff - 1) / 2)), 0f, 1f);
    }
}
