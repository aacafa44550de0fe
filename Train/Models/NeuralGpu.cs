using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Toolchain.Train.Models;

/// <summary>
/// `ngpu`: the Neural GPU of Kaiser &amp; Sutskever (2015), "Neural GPUs Learn Algorithms".
///
/// The mental image s is a [w x n x m] grid (here a tensor [batch, m, n, w]: channels, n positions down,
/// w columns across). The input is embedded into the first column, the rest is zero. Each of n steps
/// applies l convolutional GRU layers in turn:
///     u = sigma'(U' * s + B'),  r = sigma'(U'' * s + B'')
///     CGRU(s) = u . s + (1 - u) . tanh(U * (r . s) + B)
/// with the gate cutoff sigma'(x) = max(0, min(1, 1.2 sigmoid(x) - 0.1)) and `*` a zero-padded 2-D
/// convolution with [kh x kw] kernels. The answer is read off the first column: logits_k = O s_n[k, 0, :].
///
/// Parameter-sharing relaxation keeps r separate parameter sets (leading dimension of every recurrent
/// weight); step t uses set t mod r, training pulls the sets together, and they are finally averaged.
/// Dropout (training only) is applied to the whole mental image at every step.
/// </summary>
public sealed class NeuralGpu : AlgorithmicModel
{
    private readonly int _m, _w, _layers, _kh, _kw;
    private readonly double _cutoff, _dropout;

    // Parameters, named as they appear in checkpoints and exported initializers.
    private Parameter embedding;        // [V, m]
    private Parameter gate_weight;      // [r, l, 2m, m, kh, kw]: update and reset gates of each layer
    private Parameter gate_bias;        // [r, l, 2m]
    private Parameter cand_weight;      // [r, l, m, m, kh, kw]
    private Parameter cand_bias;        // [r, l, m]
    private Parameter out_weight;       // [V, m]
    private Parameter out_bias;         // [V]

    public NeuralGpu(RunConfig c, int vocab) : base("ngpu", c, vocab)
    {
        (_m, _w, _layers, _kh, _kw, _cutoff, _dropout) = (c.Maps, c.Width, c.Layers, c.KernelHeight, c.KernelWidth, c.GateCutoff, c.Dropout);
        int r = c.Relaxation;
        long fanIn = (long)_m * _kh * _kw;
        embedding = Uniform(_m, vocab, _m);
        var gw = Uniform(fanIn, 1, _layers, 2 * _m, _m, _kh, _kw);
        var cw = Uniform(fanIn, 1, _layers, _m, _m, _kh, _kw);
        // all relaxation sets start equal; they drift apart only through training
        gate_weight = new Parameter(gw.detach().repeat(r, 1, 1, 1, 1, 1));
        cand_weight = new Parameter(cw.detach().repeat(r, 1, 1, 1, 1, 1));
        // gate biases start at 1 (as in the released code): u = sigma'(1) = 0.78, so the image is mostly carried
        // through the n steps at first instead of halving every step (with 0 the input faded as 2^-n)
        gate_bias = Constant(1.0, r, _layers, 2 * _m);
        cand_bias = Constant(0.0, r, _layers, _m);
        out_weight = Uniform(_m, vocab, _m);
        out_bias = Constant(0.0, vocab);
        RegisterComponents();
    }

    public override int ParameterSets => (int)gate_weight.shape[0];

    /// <summary>sigma'(x) = clamp(c sigmoid(x) - (c-1)/2, 0, 1); c = 1.2 gives the paper's 1.2 sigmoid(x) - 0.1.</summary>
    private Tensor CutoffSigmoid(Tensor x) => (torch.sigmoid(x) * _cutoff - (_cutoff - 1) / 2).clamp(0, 1);

    public override ModelOutput Run(Tensor tokens, bool keepStates)
    {
        long batch = tokens.shape[0], n = tokens.shape[1];
        // s0: the embedded input in column 0, zeros elsewhere -> [B, m, n, w]
        var emb = Embed(embedding, tokens).permute(0, 2, 1).unsqueeze(-1);
        var s = _w == 1 ? emb : torch.cat([emb, torch.zeros(batch, _m, n, _w - 1, device: emb.device)], 3);
        var states = keepStates ? new List<Tensor> { StateImage(s) } : null;
        long[] padding = [_kh / 2, _kw / 2];
        int sets = ParameterSets;
        // No autograd graph, no states (inference, or a probe run as in training): each step's intermediates are
        // freed at the end of the step instead of living until the caller's dispose scope ends (memory n^2).
        bool release = !torch.is_grad_enabled() && states is null;
        long steps = RecurrentSteps(n); // inference_step_factor: n by default, as the paper
        for (long step = 0; step < steps; step++)
        {
            using var stepScope = release ? torch.NewDisposeScope() : null;
            var previous = s;
            int set = (int)(step % sets);
            if (training && _dropout > 0) s = F.dropout(s, _dropout, training: true);
            for (int layer = 0; layer < _layers; layer++)
            {
                var gates = F.conv2d(s, gate_weight[set, layer], gate_bias[set, layer], padding: padding);
                var update = CutoffSigmoid(gates.narrow(1, 0, _m));
                var reset = CutoffSigmoid(gates.narrow(1, _m, _m));
                var candidate = torch.tanh(F.conv2d(reset * s, cand_weight[set, layer], cand_bias[set, layer], padding: padding));
                s = update * s + (1 - update) * candidate;
            }
            states?.Add(StateImage(s));
            if (release)
            {
                s = s.MoveToOuterDisposeScope();
                if (step > 0) previous.Dispose(); // the previous step's image; the first one is the caller's
            }
        }
        // read the answer off the first column
        var first = s.select(3, 0).permute(0, 2, 1);                // [B, n, m]
        var logits = torch.matmul(first, out_weight.t()) + out_bias; // [B, n, V]
        return new ModelOutput(logits, states is null ? null : torch.stack(states, 1));
    }

    /// <summary>The mental image as [B, n, w*m]: positions down, (column, channel) across.</summary>
    private static Tensor StateImage(Tensor s) => s.permute(0, 2, 3, 1).reshape(s.shape[0], s.shape[2], -1);

    public override Tensor RelaxationDistance()
    {
        var total = torch.zeros(1, device: gate_weight.device).squeeze();
        if (ParameterSets == 1) return total;
        foreach (var p in new[] { gate_weight, gate_bias, cand_weight, cand_bias })
            total = total + (p - p.mean([0], keepdim: true)).pow(2).sum();
        return total;
    }

    public override void AverageParameterSets()
    {
        if (ParameterSets == 1) return;
        using var _ = torch.no_grad();
        // set_ swaps each parameter's storage for its mean over the sets, keeping the registered Parameter
        foreach (var p in new[] { gate_weight, gate_bias, cand_weight, cand_bias })
        {
            p.grad = null;
            p.set_(p.mean([0], keepdim: true).clone().DetachFromDisposeScope());
        }
    }
}
