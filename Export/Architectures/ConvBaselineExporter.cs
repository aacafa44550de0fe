using Toolchain.Export.Onnx;
using Toolchain.Train.Models;
using static Toolchain.Export.ModelExporter;

namespace Toolchain.Export.Architectures;

/// <summary>
/// `cnn` as ONNX: Gather embedding -> [B, m, n]; per layer s + Relu(Conv 1-D (width k, zero padding k/2));
/// then a per-position MatMul readout. Mirrors <see cref="ConvBaseline"/> line by line.
/// The network has a fixed depth and no recurrence over the length, so "loop" and "unrolled" mode build the
/// same graph: unrolled only fixes the length dimension of the input.
/// </summary>
public sealed class ConvBaselineExporter : IArchitectureExporter
{
    public (string Logits, string? States) Build(GraphBuilder g, AlgorithmicModel model, ExportOptions options, string tokens)
    {
        long pad = model.Config.KernelWidth / 2;
        var convWeight = Parameter(model, "conv_weight");
        var convBias = Parameter(model, "conv_bias");
        string embedding = Weight(g, "embedding", Parameter(model, "embedding"));
        string outWeight = WeightTransposed(g, "out_weight_t", Parameter(model, "out_weight"));
        string outBias = Weight(g, "out_bias", Parameter(model, "out_bias"));

        string s = g.Transpose(g.Gather(embedding, tokens, 0), 0, 2, 1); // [B, m, n]
        var states = new List<string>();
        if (options.WithStates) states.Add(g.Unsqueeze(g.Transpose(s, 0, 2, 1), 1));
        for (int layer = 0; layer < convWeight.shape[0]; layer++)
        {
            string w = Weight(g, $"conv_weight_{layer}", convWeight[layer]); // [m, m, k]
            string b = Weight(g, $"conv_bias_{layer}", convBias[layer]);     // [m]
            s = g.Add(s, g.Relu(g.Conv(s, w, b, pad)));
            if (options.WithStates) states.Add(g.Unsqueeze(g.Transpose(s, 0, 2, 1), 1));
        }
        string logits = g.Linear(g.Transpose(s, 0, 2, 1), outWeight, outBias);
        return (logits, options.WithStates ? g.Concat(1, [.. states]) : null);
    }
}
