using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Toolchain.Train.Models;

/// <summary>
/// `transformer`: a pre-LayerNorm Transformer encoder over the embedded input plus positional information,
/// with full (unmasked) self-attention and a per-position readout. Positions are sinusoidal (defined for
/// any length) or learned (a table of max_positions rows; longer inputs reuse the last row), which is the
/// lecture's point about fixed positional information: nothing in training pins down positions beyond the
/// training lengths. Each layer: x += MHA(LN(x)); x += W2 relu(W1 LN(x)). A final LayerNorm precedes the readout.
/// </summary>
public sealed class TransformerBaseline : AlgorithmicModel
{
    private readonly int _m, _heads;
    private readonly bool _learned;

    private Parameter embedding;  // [V, m]
    private Parameter positions;  // [max_positions, m] (learned) or [1, m] unused placeholder (sinusoidal)
    private Parameter ln1_weight, ln1_bias, ln2_weight, ln2_bias; // [layers, m]
    private Parameter qkv_weight; // [layers, 3m, m]
    private Parameter qkv_bias;   // [layers, 3m]
    private Parameter proj_weight; // [layers, m, m]
    private Parameter proj_bias;   // [layers, m]
    private Parameter ff1_weight;  // [layers, 2m, m]
    private Parameter ff1_bias;    // [layers, 2m]
    private Parameter ff2_weight;  // [layers, m, 2m]
    private Parameter ff2_bias;    // [layers, m]
    private Parameter lnf_weight, lnf_bias; // [m]
    private Parameter out_weight;  // [V, m]
    private Parameter out_bias;    // [V]

    public TransformerBaseline(RunConfig c, int vocab) : base("transformer", c, vocab)
    {
        (_m, _heads, _learned) = (c.Maps, c.Heads, c.Positions == "learned");
        int l = c.Layers;
        embedding = Uniform(1, vocab, _m);
        positions = _learned ? Uniform(1, c.MaxPositions, _m) : Constant(0.0, 1, _m);
        ln1_weight = Constant(1.0, l, _m); ln1_bias = Constant(0.0, l, _m);
        ln2_weight = Constant(1.0, l, _m); ln2_bias = Constant(0.0, l, _m);
        qkv_weight = Uniform(_m, l, 3 * _m, _m); qkv_bias = Constant(0.0, l, 3 * _m);
        proj_weight = Uniform(_m, l, _m, _m); proj_bias = Constant(0.0, l, _m);
        ff1_weight = Uniform(_m, l, 2 * _m, _m); ff1_bias = Constant(0.0, l, 2 * _m);
        ff2_weight = Uniform(2 * _m, l, _m, 2 * _m); ff2_bias = Constant(0.0, l, _m);
        lnf_weight = Constant(1.0, _m); lnf_bias = Constant(0.0, _m);
        out_weight = Uniform(_m, vocab, _m);
        out_bias = Constant(0.0, vocab);
        RegisterComponents();
    }

    /// <summary>sin/cos encoding: pe[p, 2i] = sin(p / 10000^(2i/m)), pe[p, 2i+1] = cos(same).</summary>
    public static Tensor Sinusoidal(long length, int m, Device device)
    {
        var pos = torch.arange(length, dtype: ScalarType.Float32, device: device).unsqueeze(1);      // [n, 1]
        var i = torch.arange(m, dtype: ScalarType.Float32, device: device);                           // [m]
        var freq = torch.exp(-(i - i.remainder(2)) / m * Math.Log(10000.0));                          // [m]
        var angle = pos * freq;                                                                      // [n, m]
        var even = i.remainder(2).eq(0).unsqueeze(0);
        return torch.where(even, torch.sin(angle), torch.cos(angle));
    }

    public override ModelOutput Run(Tensor tokens, bool keepStates)
    {
        long b = tokens.shape[0], n = tokens.shape[1];
        var pe = _learned
            ? positions.index_select(0, torch.arange(n, device: tokens.device).clamp_max(positions.shape[0] - 1))
            : Sinusoidal(n, _m, tokens.device);
        var x = Embed(embedding, tokens) + pe.unsqueeze(0); // [B, n, m]
        var states = keepStates ? new List<Tensor> { x } : null;
        int dh = _m / _heads;
        for (int l = 0; l < qkv_weight.shape[0]; l++)
        {
            var h = F.layer_norm(x, [_m], ln1_weight[l], ln1_bias[l], 1e-5);
            var qkv = torch.matmul(h, qkv_weight[l].t()) + qkv_bias[l];                   // [B, n, 3m]
            var q = qkv.narrow(2, 0, _m).reshape(b, n, _heads, dh).permute(0, 2, 1, 3);  // [B, H, n, dh]
            var k = qkv.narrow(2, _m, _m).reshape(b, n, _heads, dh).permute(0, 2, 3, 1); // [B, H, dh, n]
            var v = qkv.narrow(2, 2 * _m, _m).reshape(b, n, _heads, dh).permute(0, 2, 1, 3);
            var attn = torch.softmax(torch.matmul(q, k) / Math.Sqrt(dh), -1);            // [B, H, n, n]
            var ctx = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(b, n, _m);
            x = x + torch.matmul(ctx, proj_weight[l].t()) + proj_bias[l];
            var h2 = F.layer_norm(x, [_m], ln2_weight[l], ln2_bias[l], 1e-5);
            x = x + torch.matmul(F.relu(torch.matmul(h2, ff1_weight[l].t()) + ff1_bias[l]), ff2_weight[l].t()) + ff2_bias[l];
            states?.Add(x);
        }
        x = F.layer_norm(x, [_m], lnf_weight, lnf_bias, 1e-5);
        var logits = torch.matmul(x, out_weight.t()) + out_bias;
        return new ModelOutput(logits, states is null ? null : torch.stack(states, 1));
    }
}
