using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Toolchain.Train.Models;

/// <summary>
/// `cnn`: a fixed-depth stack of 1-D convolutions (width 3, ReLU, residual) over the embedded input, then
/// a per-position linear readout. Its receptive field is 2 x layers + 1 positions whatever the input length,
/// so it cannot carry information far: the suite must show it failing where a carry or a reversal has to
/// travel further than that.
/// </summary>
public sealed class ConvBaseline : AlgorithmicModel
{
    private readonly int _k;

    private Parameter embedding;   // [V, m]
    private Parameter conv_weight; // [layers, m, m, k]
    private Parameter conv_bias;   // [layers, m]
    private Parameter out_weight;  // [V, m]
    private Parameter out_bias;    // [V]

    public ConvBaseline(RunConfig c, int vocab) : base("cnn", c, vocab)
    {
        _k = c.KernelWidth;
        embedding = Uniform(c.Maps, vocab, c.Maps);
        conv_weight = Uniform((long)c.Maps * _k, c.Layers, c.Maps, c.Maps, _k);
        conv_bias = Constant(0.0, c.Layers, c.Maps);
        out_weight = Uniform(c.Maps, vocab, c.Maps);
        out_bias = Constant(0.0, vocab);
        RegisterComponents();
    }

    public override ModelOutput Run(Tensor tokens, bool keepStates)
    {
        var s = Embed(embedding, tokens).permute(0, 2, 1); // [B, m, n]
        var states = keepStates ? new List<Tensor> { s.permute(0, 2, 1) } : null;
        for (int layer = 0; layer < conv_weight.shape[0]; layer++)
        {
            s = s + F.relu(F.conv1d(s, conv_weight[layer], conv_bias[layer], padding: _k / 2));
            states?.Add(s.permute(0, 2, 1));
        }
        var logits = torch.matmul(s.permute(0, 2, 1), out_weight.t()) + out_bias;
        return new ModelOutput(logits, states is null ? null : torch.stack(states, 1));
    }
}
