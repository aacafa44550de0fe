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
/// Initial gate biases: reset 0.5, update 0.7. Logits = O s_n at every position. At inference the recurrence runs
/// ceil(inference_step_factor n) steps (n by default, as the reference); training runs ceil(train_step_factor n)
/// (n by default).
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

    /// <summary>Multiplies the update gate's pre-activation (its rows of gate_weight and gate_bias) by
    /// <paramref name="factor"/>: u = hard_sigmoid(factor x). Gates within (1 - 1/factor)/2 of 0 or 1 become
    /// exactly 0 or 1, the rest move away from 1/2; what a gate of exactly 1 carries along the tape does not leak.
    /// init_update_scale applies it once, to the weights a warm start loads.</summary>
    public void ScaleUpdateGate(double factor)
    {
        using var _ = torch.no_grad();
        gate_weight.narrow(0, _m, _m).mul_(factor);
        gate_bias.narrow(0, _m, _m).mul_(factor);
    }

    /// <summary>Sizes of the three shift groups: (left, right, none).</summary>
    public static (int Left, int Right, int None) ShiftGroups(int m) => (m / 3, m / 3, m - 2 * (m / 3));

    /// <summary>How the recurrence is computed. All three compute the same function and differ by float32 rounding;
    /// the bench and the tests run the older two against the one in use.</summary>
    public enum StepPath
    {
        /// <summary>The recurrence as one autograd node with fused passes and a hand-written backward
        /// (<see cref="FusedRecurrence"/>); CPU only (elsewhere, and when the states are kept, channels-last runs).</summary>
        Fused,
        /// <summary>Channels-last with matrix-product convolutions, one libtorch op per operation, autograd's backward.</summary>
        ChannelsLast,
        /// <summary>The first port's step: conv1d on [B, m, n], separate activation ops.</summary>
        Conv1d,
    }

    /// <summary>Bench and test hook: which path computes the recurrence (<see cref="StepPath.Fused"/> by default).</summary>
    public StepPath Path { get; set; } = StepPath.Fused;

    public override ModelOutput Run(Tensor tokens, bool keepStates) =>
        Path == StepPath.Conv1d ? RunBaseline(tokens, keepStates) : RunChannelsLast(tokens, keepStates);

    /// <summary>
    /// The step's layout, in the fused path (the default on the CPU) and in the channels-last path it replaced (on other
    /// devices, and when the states are kept): the state is kept channels-last, [B, n, m], so each width-k convolution is one matrix
    /// product of the zero-padded state's k shifted copies side by side ([B n, k m], im2col) with the weights
    /// reshaped to [k m, out]: one GEMM of B n rows, which runs about twice as fast as conv1d on [B, m, n] here.
    /// The gate weights and bias are halved inside the product, so that hard_sigmoid(x) = clamp(0.5x + 0.5, 0, 1)
    /// is one clamp on it (0.5 is exact in float32); the mix u s' + (1 - u) c is torch.lerp(c, s', u), exact at
    /// u = 0 and u = 1 like the product form; the saturation cost relu(|x| - 0.9) is |softshrink(x, 0.9)|.
    /// Dropout masks are drawn in the [B, m, n] order of F.dropout, so a seed gives the same masks as
    /// <see cref="RunBaseline"/>: the two paths give the same losses up to float32 rounding (a test checks 20 steps).
    /// </summary>
    private ModelOutput RunChannelsLast(Tensor tokens, bool keepStates) => RunPacked([this], [tokens], null, keepStates)[0];

    /// <summary>
    /// S models of one configuration run side by side as one: every tensor gets a leading seed axis, [S, B, n, m],
    /// and each convolution is one batched matrix product ([S, B n, k m] x [S, k m, out]), so the S models share
    /// every elementwise pass and every op's dispatch. Their parameters are stacked on each call, so gradients flow
    /// back to each model's own parameters, and nothing mixes across the seed axis. Each model draws its dropout
    /// masks from its own generator (null: torch's global one), in the order one model alone draws them, so a
    /// packed model computes what it computes alone, up to float32 rounding. Inputs: one [B, n] batch per model,
    /// all of one shape.
    /// </summary>
    public static ModelOutput[] RunPacked(IReadOnlyList<ImprovedNeuralGpu> models, IReadOnlyList<Tensor> tokens, IReadOnlyList<Generator?>? generators, bool keepStates = false)
    {
        var first = models[0];
        int S = models.Count, m = first._m, k = first._k;
        if (tokens.Count != S || (generators is not null && generators.Count != S)) throw new ArgumentException("RunPacked: one batch (and one generator) per model");
        if (models.Any(x => x._m != m || x._k != k || x._dropout != first._dropout || x._mask != first._mask || x._embedClip != first._embedClip
                || x._embedDropout != first._embedDropout || x._satSum != first._satSum || x.training != first.training))
            throw new ArgumentException("RunPacked: the models must share one configuration and mode");
        bool training = first.training;
        long b = tokens[0].shape[0], n = tokens[0].shape[1];
        long vocab = first.embedding.shape[0];
        Tensor Stack(Func<ImprovedNeuralGpu, Tensor> f) => S == 1 ? f(first).unsqueeze(0) : torch.stack(models.Select(f).ToArray());
        Generator? Gen(int i) => generators?[i];
        bool fused = first.Path == StepPath.Fused && !keepStates && first.embedding.device_type == DeviceType.CPU && first.embedding.dtype == ScalarType.Float32;
        // each model's noise tensor of one shape, drawn from its own generator, stacked: [S, ...shape], read in the
        // axis order `order` of the drawn shape (the fused path draws libtorch's stream itself: DropoutNoise)
        Tensor Noise(double p, long[] shape, int[]? order = null)
        {
            using var _ = torch.no_grad();
            var parts = new Tensor[S];
            for (int i = 0; i < S; i++)
            {
                if (fused)
                {
                    parts[i] = DropoutNoise.Draw(Gen(i), 1 - p, shape, order);
                    continue;
                }
                var t = torch.empty(shape, device: first.embedding.device);
                parts[i] = (Gen(i) is { } g ? t.bernoulli_(1 - p, generator: g) : t.bernoulli_(1 - p)).div_(1 - p);
                if (order is not null) parts[i] = parts[i].permute(order.Select(a => (long)a).ToArray());
            }
            return S == 1 ? parts[0].unsqueeze(0) : torch.stack(parts);
        }
        var tok = S == 1 ? tokens[0].unsqueeze(0) : torch.stack(tokens.ToArray()); // [S, B, n]
        // every model's token ids offset into the stacked tables [S V, m]: one lookup
        var offsets = (torch.arange(S, dtype: ScalarType.Int64, device: tok.device) * vocab).view(S, 1, 1);
        var s = Stack(x => x.embedding).view(S * vocab, m).index_select(0, (tok + offsets).view(-1)).view(S, b, n, m);
        var saturation = torch.zeros(S, device: s.device);
        if (first._embedClip)
        {
            if (training) saturation = saturation + first.SaturationPerModel(s) * n;
            s = s.clamp(-1, 1);
        }
        // one model's embedding dropout is F.dropout on its [B, n, m] tensor: a contiguous mask in that order
        if (training && first._embedDropout > 0) s = s * Noise(first._embedDropout, [b, n, m]);
        var mask = first._mask ? tok.ne(Toolchain.Suites.AlgorithmicTask.Pad).unsqueeze(3).to(s.dtype) : null; // [S, B, n, 1]
        if (mask is not null) s = s * mask;
        var states = keepStates ? new List<Tensor> { s } : null;
        long kIn = (long)k * m, padding = k / 2;
        // [out, in, k] -> [k, in, out] -> [k m, out]: row t m + i multiplies input map i at offset t - k/2
        var gateW = Stack(x => x.gate_weight.permute(2, 1, 0).reshape(kIn, 2 * m)) * 0.5;
        var gateB = (Stack(x => x.gate_bias) * 0.5 + 0.5).unsqueeze(1);
        var candW = Stack(x => x.cand_weight.permute(2, 1, 0).reshape(kIn, m));
        var candB = Stack(x => x.cand_bias).unsqueeze(1);
        var (left, right, none) = ShiftGroups(m);
        Tensor Columns(Tensor padded) // [S, B, n + k - 1, m] -> [S, B n, k m]: row (b, i) holds positions i .. i + k - 1
        {
            var taps = new Tensor[k];
            for (int t = 0; t < k; t++) taps[t] = padded.narrow(2, t, n);
            return torch.cat(taps, 3).view(S, b * n, kIn);
        }
        // Without an autograd graph or kept states (inference, or a probe run as in training) each step's
        // intermediates are freed at the end of the step; kept to the caller's scope they grow as n^2 (with a
        // dropout-on probe at length 401 the training process reached 22 GiB and was killed for memory)
        bool release = !torch.is_grad_enabled() && states is null;
        long steps = first.RecurrentSteps(n);
        if (fused)
        {
            long count = b * n * m; // saturation_mode=mean: a step's gate term is the mean over B n 2m, the candidate's over B n m
            var spec = new FusedRecurrence.Spec(S, b, n, m, k, left, right, steps, mask,
                training && first._dropout > 0 ? () => Noise(first._dropout, [b, m, n], [0, 2, 1]) : null,
                training, first._satSum ? 2.0 : 2.0 / (2 * count), first._satSum ? 1.0 : 1.0 / count);
            var (final, stepsSaturation) = FusedRecurrence.Run(s, gateW, gateB, candW, candB, spec);
            s = final;
            if (training) saturation = saturation + stepsSaturation;
        }
        else for (long step = 0; step < steps; step++)
        {
            using var stepScope = release ? torch.NewDisposeScope() : null;
            var previous = s;
            var padded = F.pad(s, [0, 0, padding, padding]);
            var gates = Affine(Columns(padded), gateW, gateB).view(S, b, n, 2 * m); // 0.5 x pre-activation + 0.5
            var active = gates.clamp(0, 1);
            var candPre = Affine(Columns(F.pad(active.narrow(3, 0, m) * s, [0, 0, padding, padding])), candW, candB).view(S, b, n, m);
            var candidate = candPre.clamp(-1, 1);
            if (training && first._dropout > 0) candidate = candidate * Noise(first._dropout, [b, m, n], [0, 2, 1]);
            // the diagonal gate's shift, read from the padded state: maps [0, a) take position i+1, [a, 2a) position i-1
            var shifted = torch.cat([padded.narrow(2, padding + 1, n).narrow(3, 0, left), padded.narrow(2, padding - 1, n).narrow(3, left, right),
                s.narrow(3, left + right, none)], 3);
            s = torch.lerp(candidate, shifted, active.narrow(3, m, m));
            if (mask is not null) s = s * mask;
            if (training)
                saturation = saturation + first.SaturationPerModel(gates - 0.5, threshold: 0.45) * 2 + first.SaturationPerModel(candPre);
            states?.Add(s);
            if (release)
            {
                s = s.MoveToOuterDisposeScope();
                if (training) saturation = saturation.MoveToOuterDisposeScope(); // [S] per step, freed with the caller's scope
                if (step > 0) previous.Dispose();
            }
        }
        var outW = Stack(x => x.out_weight).transpose(1, 2); // [S, m, V]
        var logits = Affine(s.view(S, b * n, m), outW, Stack(x => x.out_bias).unsqueeze(1)).view(S, b, n, vocab);
        var scale = first._satSum ? n * n * b : n;
        var stacked = states is null ? null : torch.stack(states, 2); // [S, B, n + 1, n, m]
        var result = new ModelOutput[S];
        for (int i = 0; i < S; i++)
            result[i] = new ModelOutput(logits[i], stacked?[i], training ? saturation[i] / scale : null);
        return result;
    }

    /// <summary>x w + bias for [S, r, a] x [S, a, c] + [S, 1, c], in one op (baddbmm). TorchSharp 0.107's static
    /// torch.baddbmm(input, batch1, batch2) hands its arguments to libtorch rotated: it computes
    /// arg1 x arg2 + arg3. It is called that way here; the fast-step tests compare against conv1d and catch a change.</summary>
    private static Tensor Affine(Tensor x, Tensor w, Tensor bias) => torch.baddbmm(x, w, bias, 1, 1);

    /// <summary>The saturation cost relu(|x| - threshold) of a [S, ...] tensor, per model: its sum over everything
    /// but the first axis (saturation_mode=dngpu), or that sum over the count (mean: the mean per pre-activation).</summary>
    private Tensor SaturationPerModel(Tensor x, double threshold = 0.9)
    {
        var sum = F.softshrink(x, threshold).abs().flatten(1).sum(1);
        return _satSum ? sum : sum / (x.numel() / x.shape[0]);
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
        // No autograd graph, no states (inference, or a probe run as in training): each step's intermediates are
        // freed at the end of the step instead of living until the caller's dispose scope ends (memory n^2).
        bool release = !torch.is_grad_enabled() && states is null;
        long steps = RecurrentSteps(n);
        for (long step = 0; step < steps; step++)
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
                if (training) saturation = saturation.MoveToOuterDisposeScope();
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
