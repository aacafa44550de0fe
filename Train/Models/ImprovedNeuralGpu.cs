using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Toolchain.Train.Models;

/// <summary>
/// `dngpu`: the improved Neural GPU of Freivalds &amp; Liepins (2017), "Improving the Neural GPU
/// Architecture for Algorithm Learning".
///
/// The state is 1-D: [batch, m, n] (m maps over n positions), initialised with the embedded input.
/// Each of n steps applies one gated unit with hard nonlinearities and a diagonal gate:
///     r = hard_sigmoid(W_r * s + b_r),  u = hard_sigmoid(W_u * s + b_u)
///     c = hard_tanh(W_c * (r . s) + b_c)                  (dropout on c while training)
///     s = u . shift(s) + (1 - u) . c
/// where `*` is a zero-padded 1-D convolution of width 3, hard_sigmoid(x) = clip(0.5x + 0.5, 0, 1),
/// hard_tanh(x) = clip(x, -1, 1), and shift moves the first third of the maps one position left
/// (towards position 0), the second third one position right, and leaves the rest in place.
/// The saturation cost relu(|x| - 0.9) over every pre-activation keeps the gates off the flat parts: with
/// saturation_mode=mean its mean per pre-activation, summed over steps / n; with saturation_mode=dngpu (the
/// reference) its sum over maps, positions and steps / (n^2 B), the input layer's counted n times.
/// Initial gate biases: reset 0.5, update 0.7. Logits = O s_n at every position.
/// With embed_clip the embedded input passes hard_tanh (and embed_dropout while training) first, as in the reference.
/// With bin_padding the state is multiplied by mask = (token != PAD) after the embedding and after every step,
/// as in the reference: a short example padded into a longer bin computes on its own positions only.
/// </summary>
public sealed class ImprovedNeuralGpu : AlgorithmicModel
{
    private readonly int _m, _k;
    private readonly double _dropout;
    private readonly bool _mask, _embedClip, _satSum;
    private readonly double _embedDropout;

    private Parameter embedding;   // [V, m]
    private Parameter gate_weight; // [2m, m, k]: reset then update
    private Parameter gate_bias;   // [2m]
    private Parameter cand_weight; // [m, m, k]
    private Parameter cand_bias;   // [m]
    private Parameter out_weight;  // [V, m]
    private Parameter out_bias;    // [V]

    public ImprovedNeuralGpu(RunConfig c, int vocab) : base("dngpu", c, vocab)
    {
        (_m, _k, _dropout, _mask, _embedClip, _embedDropout) = (c.Maps, c.KernelWidth, c.Dropout, c.BinPadding, c.EmbedClip, c.EmbedDropout);
        _satSum = c.SaturationMode == "dngpu";
        long fanIn = (long)_m * _k;
        bool glorot = c.Init == "glorot";
        embedding = glorot ? Glorot(vocab, _m, vocab, _m) : Uniform(_m, vocab, _m);
        // the reset and update convolutions are separate m -> m maps in the reference: their fans, not 2m's
        gate_weight = glorot ? Glorot(fanIn, fanIn, 2 * _m, _m, _k) : Uniform(fanIn, 2 * _m, _m, _k);
        gate_bias = new Parameter(torch.cat([torch.full(_m, 0.5), torch.full(_m, 0.7)]));
        cand_weight = glorot ? Glorot(fanIn, fanIn, _m, _m, _k) : Uniform(fanIn, _m, _m, _k);
        cand_bias = Constant(0.0, _m);
        out_weight = glorot ? Glorot(_m, vocab, vocab, _m) : Uniform(_m, vocab, _m);
        out_bias = Constant(0.0, vocab);
        RegisterComponents();
    }

    /// <summary>Sizes of the three shift groups: (left, right, none).</summary>
    public static (int Left, int Right, int None) ShiftGroups(int m) => (m / 3, m / 3, m - 2 * (m / 3));

    /// <summary>Bench and test hook: run the first port's step (conv1d on [B, m, n], separate activation ops)
    /// instead of the faster channels-last step. Both compute the same function; they differ by float32 rounding.</summary>
    public bool BaselineStep { get; set; }

    public override ModelOutput Run(Tensor tokens, bool keepStates) =>
        BaselineStep ? RunBaseline(tokens, keepStates) : RunChannelsLast(tokens, keepStates);

    /// <summary>
    /// The step as it runs: the state is kept channels-last, [B, n, m], so each width-k convolution is one matrix
    /// product of the zero-padded state's k shifted copies side by side ([B n, k m], im2col) with the weights
    /// reshaped to [k m, out]: one GEMM of B n rows, which runs about twice as fast as conv1d on [B, m, n] here.
    /// The gate weights and bias are halved inside the product, so that hard_sigmoid(x) = clamp(0.5x + 0.5, 0, 1)
    /// is one clamp on it (0.5 is exact in float32); the mix u s' + (1 - u) c is torch.lerp(c, s', u), exact at
    /// u = 0 and u = 1 like the product form; the saturation cost relu(|x| - 0.9) is |softshrink(x, 0.9)|.
    /// Dropout masks are drawn in the [B, m, n] order of F.dropout, so a seed gives the same masks as
    /// <see cref="RunBaseline"/>: the two paths give the same losses up to float32 rounding (a test checks 20 steps).
    /// </summary>
    private ModelOutput RunChannelsLast(Tensor tokens, bool keepStates)
    {
        long b = tokens.shape[0], n = tokens.shape[1];
        var s = Embed(embedding, tokens); // [B, n, m]
        var saturation = torch.zeros(1, device: s.device).squeeze();
        if (_embedClip)
        {
            if (training) saturation = saturation + SaturationOf(s) * n;
            s = s.clamp(-1, 1);
        }
        // the first port's embedding is a [B, m, n] view of this [B, n, m] tensor, and F.dropout draws a view's mask in
        // memory order: the same masks as F.dropout here
        if (training && _embedDropout > 0) s = F.dropout(s, _embedDropout, training: true);
        var mask = _mask ? tokens.ne(Toolchain.Suites.AlgorithmicTask.Pad).unsqueeze(2).to(s.dtype) : null; // [B, n, 1]
        if (mask is not null) s = s * mask;
        var states = keepStates ? new List<Tensor> { s } : null;
        long kIn = (long)_k * _m;
        // [out, in, k] -> [k, in, out] -> [k m, out]: row t m + i multiplies input map i at offset t - k/2
        var gateW = gate_weight.permute(2, 1, 0).reshape(kIn, 2 * _m) * 0.5;
        var gateB = gate_bias * 0.5 + 0.5;
        var candW = cand_weight.permute(2, 1, 0).reshape(kIn, _m);
        var (left, right, none) = ShiftGroups(_m);
        long padding = _k / 2;
        bool release = !torch.is_grad_enabled() && states is null && !training;
        for (long step = 0; step < n; step++)
        {
            using var stepScope = release ? torch.NewDisposeScope() : null;
            var previous = s;
            var padded = F.pad(s, [0, 0, padding, padding]); // [B, n + k - 1, m]
            var gates = torch.addmm(gateB, Columns(padded, n), gateW, 1, 1).view(b, n, 2 * _m); // 0.5 x pre-activation + 0.5
            var active = gates.clamp(0, 1);
            var candPre = torch.addmm(cand_bias, Columns(F.pad(active.narrow(2, 0, _m) * s, [0, 0, padding, padding]), n), candW, 1, 1).view(b, n, _m);
            var candidate = candPre.clamp(-1, 1);
            if (training && _dropout > 0) candidate = candidate * DropoutNoise(b, n, _dropout, s.device);
            // the diagonal gate's shift, read from the padded state: maps [0, a) take position i+1, [a, 2a) position i-1
            var shifted = torch.cat([padded.narrow(1, padding + 1, n).narrow(2, 0, left), padded.narrow(1, padding - 1, n).narrow(2, left, right),
                s.narrow(2, left + right, none)], 2);
            s = torch.lerp(candidate, shifted, active.narrow(2, _m, _m));
            if (mask is not null) s = s * mask;
            if (training)
                saturation = saturation + SaturationOf(gates - 0.5, threshold: 0.45) * 2 + SaturationOf(candPre);
            states?.Add(s);
            if (release)
            {
                s = s.MoveToOuterDisposeScope();
                if (step > 0) previous.Dispose();
            }
        }
        var logits = F.linear(s, out_weight, out_bias);
        var scale = _satSum ? n * n * b : n;
        return new ModelOutput(logits, states is null ? null : torch.stack(states, 1), training ? saturation / scale : null);
    }

    /// <summary>[B, n + k - 1, m] padded state -> [B n, k m]: row (b, i) holds positions i .. i + k - 1 side by side.</summary>
    private Tensor Columns(Tensor padded, long n)
    {
        var taps = new Tensor[_k];
        for (int t = 0; t < _k; t++) taps[t] = padded.narrow(1, t, n);
        return torch.cat(taps, 2).view(-1, (long)_k * _m);
    }

    /// <summary>Dropout's scaled keep mask for the [B, n, m] candidate, drawn as F.dropout draws it for the first
    /// port's contiguous [B, m, n] candidate (bernoulli in that order), so both paths see the same masks.</summary>
    private Tensor DropoutNoise(long b, long n, double p, Device device)
    {
        using var _ = torch.no_grad();
        return torch.empty(b, _m, n, device: device).bernoulli_(1 - p).div_(1 - p).permute(0, 2, 1);
    }

    /// <summary>The saturation cost relu(|x| - threshold) of one tensor: its sum (saturation_mode=dngpu) or its sum
    /// divided by its element count (saturation_mode=mean: the mean per pre-activation).</summary>
    private Tensor SaturationOf(Tensor x, double threshold = 0.9)
    {
        var sum = F.softshrink(x, threshold).abs().sum();
        return _satSum ? sum : sum / x.numel();
    }

    private ModelOutput RunBaseline(Tensor tokens, bool keepStates)
    {
        long n = tokens.shape[1];
        var s = Embed(embedding, tokens).permute(0, 2, 1); // [B, m, n]
        var saturation = torch.zeros(1, device: s.device).squeeze();
        if (_embedClip)
        {
            // weighted n times a step's term, as the reference weights its input layer by the length
            if (training) saturation = saturation + Saturation(s) * n;
            s = s.clamp(-1, 1);
        }
        if (training && _embedDropout > 0) s = F.dropout(s, _embedDropout, training: true);
        var mask = _mask ? tokens.ne(Toolchain.Suites.AlgorithmicTask.Pad).unsqueeze(1).to(s.dtype) : null; // [B, 1, n]
        if (mask is not null) s = s * mask;
        var states = keepStates ? new List<Tensor> { s.permute(0, 2, 1) } : null;
        long padding = _k / 2;
        // Inference (no autograd graph, no states): each step's intermediates are freed at the end of the step
        // instead of living until the caller's dispose scope ends, which made eager memory grow as n^2.
        bool release = !torch.is_grad_enabled() && states is null && !training;
        for (long step = 0; step < n; step++)
        {
            using var stepScope = release ? torch.NewDisposeScope() : null;
            var previous = s;
            var gatesPre = F.conv1d(s, gate_weight, gate_bias, padding: padding);
            var reset = HardSigmoid(gatesPre.narrow(1, 0, _m));
            var update = HardSigmoid(gatesPre.narrow(1, _m, _m));
            var candPre = F.conv1d(reset * s, cand_weight, cand_bias, padding: padding);
            var candidate = candPre.clamp(-1, 1);
            if (training && _dropout > 0) candidate = F.dropout(candidate, _dropout, training: true);
            s = update * Shift(s) + (1 - update) * candidate;
            if (mask is not null) s = s * mask;
            if (training) saturation = saturation + Saturation(gatesPre) + Saturation(candPre);
            states?.Add(s.permute(0, 2, 1));
            if (release)
            {
                s = s.MoveToOuterDisposeScope();
                if (step > 0) previous.Dispose(); // the previous step's state; the first one is the caller's embedding
            }
        }
        var logits = torch.matmul(s.permute(0, 2, 1), out_weight.t()) + out_bias;
        var scale = _satSum ? n * n * tokens.shape[0] : n;
        return new ModelOutput(logits, states is null ? null : torch.stack(states, 1), training ? saturation / scale : null);
    }

    private static Tensor HardSigmoid(Tensor x) => (x * 0.5 + 0.5).clamp(0, 1);

    private Tensor Saturation(Tensor x) => _satSum ? F.relu(x.abs() - 0.9).sum() : F.relu(x.abs() - 0.9).mean();

    /// <summary>The diagonal gate's shift: maps [0, a) take the value of position i+1, maps [a, 2a) of position
    /// i-1 (zero beyond the ends), the remaining maps stay.</summary>
    private Tensor Shift(Tensor s)
    {
        var (left, right, none) = ShiftGroups(_m);
        var l = F.pad(s.narrow(1, 0, left).narrow(2, 1, s.shape[2] - 1), [0, 1]);
        var r = F.pad(s.narrow(1, left, right).narrow(2, 0, s.shape[2] - 1), [1, 0]);
        return torch.cat([l, r, s.narrow(1, left + right, none)], 1);
    }
}
