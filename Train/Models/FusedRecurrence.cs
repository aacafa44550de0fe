using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Train.Models;

/// <summary>
/// The improved Neural GPU's recurrence (every step of <see cref="ImprovedNeuralGpu"/>) as one autograd node with a
/// hand-written backward pass: the two convolutions of a step stay matrix products (libtorch's BLAS), and everything
/// between them (im2col, the clamps, r s, dropout, the shift, the lerp mix, the mask, the saturation cost and all of
/// their derivatives) is done in a few fused passes over the state in C#, instead of some twenty separate
/// libtorch ops each with its own autograd node and its own pass over memory.
///
/// One step on s [S, B, n, m] (channels-last; S models packed, see <see cref="ImprovedNeuralGpu.RunPacked"/>):
///     X = im2col(s)              [S, B n, k m]   row (b, i) holds positions i - k/2 .. i + k/2 (zeros past the ends)
///     G = X Wg + bg              [S, B n, 2m]    Wg, bg already halved (+ 0.5): G = hard_sigmoid's argument, unclamped
///     R = im2col(clamp(G_r, 0, 1) s)
///     C = R Wc + bc              [S, B n, m]
///     s' = lerp(clamp(C, -1, 1) noise, shift(s), clamp(G_u, 0, 1)) mask
///     saturation += wg sum |softshrink(G - 0.5, 0.45)| + wc sum |softshrink(C, 0.9)|   (per model)
/// The backward pass runs the steps in reverse with the same quantities (G, C, X, R and the noise are kept from the
/// forward pass) and libtorch's derivative conventions: a clamp passes the gradient where min &lt;= x &lt;= max, lerp's
/// weight gets end - start, |softshrink| gets sign(x) past the threshold. It computes what the channels-last autograd
/// step computes, up to float32 rounding (tests compare logits, saturation and every gradient, and 20 training steps).
/// </summary>
internal sealed class FusedRecurrence : torch.autograd.MultiTensorFunction<FusedRecurrence>
{
    public override string Name => "dngpu_recurrence";

    /// <summary>What the recurrence needs besides its five differentiable inputs.</summary>
    /// <param name="Mask">[S, B, n, 1] of 0 and 1 (bin padding), or null.</param>
    /// <param name="Noise">Draws one step's dropout multiplier for the candidate, [S, B, n, m] contiguous, or null.</param>
    /// <param name="GateSaturationWeight">Weight of a step's summed gate term (2 for the halved argument, over the count with saturation_mode=mean).</param>
    internal sealed record Spec(int Models, long Batch, long Length, int Maps, int Kernel, int Left, int Right, long Steps,
        Tensor? Mask, Func<Tensor>? Noise, bool Saturation, double GateSaturationWeight, double CandidateSaturationWeight);

    /// <summary>Runs the recurrence: (final state [S, B, n, m], saturation cost per model [S]).</summary>
    public static (Tensor State, Tensor Saturation) Run(Tensor s0, Tensor gateW, Tensor gateB, Tensor candW, Tensor candB, Spec spec)
    {
        var outputs = apply(s0, gateW, gateB, candW, candB, spec);
        return (outputs[0], outputs[1]);
    }

    private sealed class Saved
    {
        public required Spec Spec;
        public required Tensor GateW, CandW;
        public readonly List<Tensor> States = [], Gates = [], Candidates = [], Columns = [], ResetColumns = [];
        public readonly List<Tensor?> Noises = [];
    }

    public override List<Tensor> forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (s, gateW, gateB, candW, candB) = (((Tensor)vars[0]).contiguous(), ((Tensor)vars[1]).contiguous(), ((Tensor)vars[2]).contiguous(), ((Tensor)vars[3]).contiguous(), ((Tensor)vars[4]).contiguous());
        var spec = (Spec)vars[5];
        // the backward pass needs every step's quantities; without a graph (inference, probes) each step's are freed at its end
        bool keep = ((Tensor)vars[0]).requires_grad || gateW.requires_grad || candW.requires_grad;
        var saved = keep ? new Saved { Spec = spec, GateW = gateW, CandW = candW } : null;
        int S = spec.Models, m = spec.Maps, k = spec.Kernel;
        long b = spec.Batch, n = spec.Length, rows = b * n;
        double[] saturation = new double[S], gateSums = new double[S], candidateSums = new double[S];
        var mask = spec.Mask?.contiguous();
        // the first step's columns come from the input state; every later step's are written by the step before
        // it, as it writes the new state (Mix), which saves a pass over the state
        var columns = torch.empty(S, rows, k * m);
        Kernels.Im2Col(s, columns, S, b, n, m, k);
        for (long step = 0; step < spec.Steps; step++)
        {
            using var stepScope = keep ? null : torch.NewDisposeScope();
            var nextColumns = step + 1 < spec.Steps ? torch.empty(S, rows, k * m) : null;
            var gates = torch.bmm(columns, gateW); // + bg in ResetColumns: baddbmm would first copy the bias into every row
            var resetColumns = torch.empty(S, rows, k * m);
            Kernels.ResetColumns(gates, gateB, s, resetColumns, S, b, n, m, k, spec.Saturation ? gateSums : null);
            var candidates = torch.bmm(resetColumns, candW); // + bc in Mix
            var noise = spec.Noise?.Invoke().contiguous();
            var next = torch.empty(S, b, n, m);
            Kernels.Mix(candidates, candB, gates, s, noise, mask, next, nextColumns, S, b, n, m, k, spec.Left, spec.Right, spec.Saturation ? candidateSums : null);
            if (spec.Saturation)
                for (int i = 0; i < S; i++) saturation[i] += spec.GateSaturationWeight * gateSums[i] + spec.CandidateSaturationWeight * candidateSums[i];
            if (saved is not null)
            {
                saved.States.Add(s); saved.Gates.Add(gates); saved.Candidates.Add(candidates);
                saved.Columns.Add(columns); saved.ResetColumns.Add(resetColumns); saved.Noises.Add(noise);
            }
            else
            {
                next = next.MoveToOuterDisposeScope();
                nextColumns = nextColumns?.MoveToOuterDisposeScope();
                if (step > 0) s.Dispose(); // the previous step's state (the first is the caller's)
                columns.Dispose();
            }
            s = next;
            if (nextColumns is not null) columns = nextColumns;
        }
        if (saved is not null) ctx.save_data("saved", saved);
        return [s, torch.tensor(saturation.Select(x => (float)x).ToArray())];
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, List<Tensor> grad_outputs)
    {
        var saved = (Saved)ctx.get_data("saved") ?? throw new InvalidOperationException("dngpu_recurrence: backward without a saved forward pass");
        var spec = saved.Spec;
        int S = spec.Models, m = spec.Maps, k = spec.Kernel;
        long b = spec.Batch, n = spec.Length, rows = b * n;
        var satGrad = grad_outputs[1].to(ScalarType.Float32).data<float>().ToArray(); // [S]
        var mask = spec.Mask?.contiguous();
        var dGateW = torch.zeros_like(saved.GateW);
        var dCandW = torch.zeros_like(saved.CandW);
        var dGateB = torch.zeros(S, 1, 2 * m);
        var dCandB = torch.zeros(S, 1, m);
        var dState = grad_outputs[0].contiguous();
        var gateWT = saved.GateW.transpose(1, 2);
        var candWT = saved.CandW.transpose(1, 2);
        // one step's gradients, written afresh by every step: allocated once; the state's gradient alternates
        // between two buffers (a step reads the one the step after it wrote)
        var dGates = torch.empty(S, rows, 2 * m);
        var dCandidates = torch.empty(S, rows, m);
        Tensor[] dStates = [torch.empty(S, b, n, m), torch.empty(S, b, n, m)];
        for (int step = saved.States.Count - 1; step >= 0; step--)
        {
            using var stepScope = torch.NewDisposeScope();
            var (s, gates, candidates) = (saved.States[step], saved.Gates[step], saved.Candidates[step]);
            var dPrevious = dStates[step % 2];
            dPrevious.zero_();
            Kernels.MixBackward(dState, candidates, gates, s, saved.Noises[step], mask, dCandidates, dGates, dPrevious, S, b, n, m,
                spec.Left, spec.Right, spec.Saturation ? satGrad : null, spec.GateSaturationWeight, spec.CandidateSaturationWeight);
            dCandW.add_(torch.bmm(saved.ResetColumns[step].transpose(1, 2), dCandidates));
            dCandB.add_(dCandidates.sum(1, keepdim: true));
            var dResetColumns = torch.bmm(dCandidates, candWT);
            Kernels.ResetColumnsBackward(dResetColumns, gates, s, dGates, dPrevious, S, b, n, m, k, spec.Saturation ? satGrad : null, spec.GateSaturationWeight);
            dGateW.add_(torch.bmm(saved.Columns[step].transpose(1, 2), dGates));
            dGateB.add_(dGates.sum(1, keepdim: true));
            Kernels.Col2ImAdd(torch.bmm(dGates, gateWT), dPrevious, S, b, n, m, k);
            dState = dPrevious;
        }
        return [dState, dGateW, dGateB, dCandW, dCandB, null!];
    }

    /// <summary>The fused passes, on the raw float32 storage of contiguous CPU tensors. Each inner loop runs over a
    /// row's maps in SIMD vectors (<see cref="Vector{T}"/>) with a scalar tail; both compute the same expressions.</summary>
    internal static unsafe class Kernels
    {
        private static readonly int W = Vector<float>.Count;

        private static float* Ptr(Tensor t) => (float*)Address(t);

        /// <summary>The address of a tensor's storage (libtorch's CPU memory does not move).</summary>
        private static nint Address(Tensor t)
        {
            if (t.dtype != ScalarType.Float32 || t.device_type != DeviceType.CPU || !t.is_contiguous())
                throw new ArgumentException("dngpu_recurrence: float32, contiguous CPU tensors only");
            fixed (byte* p = t.bytes) return (nint)p;
        }

        private static Vector<float> Load(float* p) => *(Vector<float>*)p;
        private static void Store(float* p, Vector<float> v) => *(Vector<float>*)p = v;
        private static Vector<float> Clamp(Vector<float> x, float lo, float hi) => Vector.Min(Vector.Max(x, new Vector<float>(lo)), new Vector<float>(hi));
        private static float Clamp(float x, float lo, float hi) => MathF.Min(MathF.Max(x, lo), hi);
        private static Vector<float> Shrink(Vector<float> x, float threshold) => Vector.Max(Vector.Abs(x) - new Vector<float>(threshold), Vector<float>.Zero);
        private static float Shrink(float x, float threshold) => MathF.Max(MathF.Abs(x) - threshold, 0f);
        // d|softshrink(x, t)| / dx: sign(x) past the threshold, 0 inside
        private static Vector<float> ShrinkGrad(Vector<float> x, float threshold) =>
            Vector.ConditionalSelect(Vector.GreaterThan(x, new Vector<float>(threshold)), Vector<float>.One, Vector<float>.Zero)
            - Vector.ConditionalSelect(Vector.LessThan(x, new Vector<float>(-threshold)), Vector<float>.One, Vector<float>.Zero);
        private static float ShrinkGrad(float x, float threshold) => x > threshold ? 1f : x < -threshold ? -1f : 0f;
        // where lo <= x <= hi (a clamp passes its gradient there, bounds included, as libtorch's)
        private static Vector<int> Inside(Vector<float> x, float lo, float hi) =>
            Vector.BitwiseAnd(Vector.GreaterThanOrEqual(x, new Vector<float>(lo)), Vector.LessThanOrEqual(x, new Vector<float>(hi)));
        // libtorch's CPU lerp: start + w (end - start) for |w| < 1/2, else end - (end - start)(1 - w)
        private static Vector<float> Lerp(Vector<float> start, Vector<float> end, Vector<float> w)
        {
            var diff = end - start;
            return Vector.ConditionalSelect(Vector.LessThan(w, new Vector<float>(0.5f)), start + w * diff, end - diff * (Vector<float>.One - w));
        }
        private static float Lerp(float start, float end, float w) => w < 0.5f ? start + w * (end - start) : end - (end - start) * (1 - w);

        /// <summary>cols[σ, (b, i), j m + c] = s[σ, b, i + j - k/2, c], zero past the ends.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Im2Col(Tensor state, Tensor columns, int S, long B, long n, int m, int k)
        {
            float* s = Ptr(state), x = Ptr(columns);
            int p = k / 2;
            for (long sb = 0; sb < S * B; sb++)
                for (long i = 0; i < n; i++)
                {
                    float* row = x + (sb * n + i) * k * m;
                    for (int j = 0; j < k; j++)
                    {
                        long q = i + j - p;
                        if (q < 0 || q >= n) Clear(row + j * m, m);
                        else Copy(row + j * m, s + (sb * n + q) * m, m);
                    }
                }
        }

        /// <summary>Adds the gate bias to G in place (G = X Wg + bg), then the candidate's input: im2col(clamp(G_r, 0, 1) s), and per model the step's gate saturation sum
        /// (sum of |softshrink(G - 0.5, 0.45)| over both gates), when <paramref name="saturation"/> is given.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void ResetColumns(Tensor gatesT, Tensor biasT, Tensor stateT, Tensor columnsT, int S, long B, long n, int m, int k, double[]? saturation)
        {
            float* g = Ptr(gatesT), bias = Ptr(biasT), s = Ptr(stateT), x = Ptr(columnsT);
            int p = k / 2, km = k * m;
            for (int σ = 0; σ < S; σ++)
            {
                double sat = 0;
                for (long bb = 0; bb < B; bb++)
                {
                    long sb = σ * B + bb;
                    for (long q = 0; q < n; q++)
                    {
                        long r = sb * n + q;
                        float* gr = g + r * 2 * m, sr = s + r * m, center = x + r * km + p * m;
                        Add(gr, bias + σ * 2 * m, 2 * m);
                        int c = 0;
                        for (; c <= m - W; c += W) Store(center + c, Clamp(Load(gr + c), 0f, 1f) * Load(sr + c));
                        for (; c < m; c++) center[c] = Clamp(gr[c], 0f, 1f) * sr[c];
                        if (saturation is not null) sat += ShrinkSum(gr, 2 * m, 0.5f, 0.45f);
                        Scatter(x, center, sb, q, n, m, k);
                    }
                }
                if (saturation is not null) saturation[σ] = sat;
            }
        }

        /// <summary>Adds the candidate bias to C in place (C = R Wc + bc), then s' = lerp(clamp(C, -1, 1) noise, shift(s), clamp(G_u, 0, 1)) mask,
        /// its im2col columns for the next step when <paramref name="nextColumnsT"/> is given, and per model the step's candidate
        /// saturation sum (of |softshrink(C, 0.9)|), when <paramref name="saturation"/> is given. Without a mask or
        /// noise the kernel multiplies by one (exact), so its inner loop has no branches.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Mix(Tensor candT, Tensor biasT, Tensor gatesT, Tensor stateT, Tensor? noiseT, Tensor? maskT, Tensor nextT, Tensor? nextColumnsT,
            int S, long B, long n, int m, int k, int left, int right, double[]? saturation)
        {
            float* cp = Ptr(candT), bias = Ptr(biasT), g = Ptr(gatesT), s = Ptr(stateT), y = Ptr(nextT);
            float* x = nextColumnsT is null ? null : Ptr(nextColumnsT);
            float* noise = noiseT is null ? null : Ptr(noiseT), mask = maskT is null ? null : Ptr(maskT);
            float* ones = stackalloc float[m], zeros = stackalloc float[m];
            new Span<float>(ones, m).Fill(1f);
            new Span<float>(zeros, m).Clear();
            for (int σ = 0; σ < S; σ++)
            {
                double sat = 0;
                for (long bb = 0; bb < B; bb++)
                {
                    long sb = σ * B + bb;
                    for (long i = 0; i < n; i++)
                    {
                        long r = sb * n + i;
                        float* cr = cp + r * m, ur = g + r * 2 * m + m, sr = s + r * m, yr = y + r * m;
                        float* nr = noise is null ? ones : noise + r * m;
                        float keep = mask is null ? 1f : mask[r];
                        Add(cr, bias + σ * m, m);
                        // the shift's source row for each group of maps (zeros past the ends)
                        MixRange(cr, ur, i + 1 < n ? sr + m : zeros, nr, keep, yr, 0, left);
                        MixRange(cr, ur, i > 0 ? sr - m : zeros, nr, keep, yr, left, left + right);
                        MixRange(cr, ur, sr, nr, keep, yr, left + right, m);
                        if (x is not null) Scatter(x, yr, sb, i, n, m, k); // the next step's im2col columns
                        if (saturation is not null) sat += ShrinkSum(cr, m, 0f, 0.9f);
                    }
                }
                if (saturation is not null) saturation[σ] = sat;
            }
        }

        // maps c0 .. c1 - 1 of one row of Mix; `source` is the shifted state's row for these maps
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void MixRange(float* cr, float* ur, float* source, float* nr, float keep, float* yr, int c0, int c1)
        {
            var keepV = new Vector<float>(keep);
            int c = c0;
            for (; c <= c1 - W; c += W)
            {
                var cand = Clamp(Load(cr + c), -1f, 1f) * Load(nr + c);
                Store(yr + c, Lerp(cand, Load(source + c), Clamp(Load(ur + c), 0f, 1f)) * keepV);
            }
            for (; c < c1; c++)
                yr[c] = Lerp(Clamp(cr[c], -1f, 1f) * nr[c], source[c], Clamp(ur[c], 0f, 1f)) * keep;
        }

        /// <summary>The backward pass of <see cref="Mix"/>: the candidate's and the update gate's pre-activation
        /// gradients (with the saturation cost's), and the shift's part of the previous state's gradient (added).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void MixBackward(Tensor dNextT, Tensor candT, Tensor gatesT, Tensor stateT, Tensor? noiseT, Tensor? maskT,
            Tensor dCandT, Tensor dGatesT, Tensor dStateT, int S, long B, long n, int m, int left, int right, float[]? satGrad, double gateWeight, double candWeight)
        {
            float* dy = Ptr(dNextT), cp = Ptr(candT), g = Ptr(gatesT), s = Ptr(stateT), dc = Ptr(dCandT), dg = Ptr(dGatesT), ds = Ptr(dStateT);
            float* noise = noiseT is null ? null : Ptr(noiseT), mask = maskT is null ? null : Ptr(maskT);
            // past the ends the shift reads zeros and its gradient goes nowhere: a scratch row takes it
            float* ones = stackalloc float[m], zeros = stackalloc float[m], sink = stackalloc float[m];
            new Span<float>(ones, m).Fill(1f);
            new Span<float>(zeros, m).Clear();
            for (int σ = 0; σ < S; σ++)
            {
                float gw = satGrad is null ? 0f : (float)(satGrad[σ] * gateWeight), cw = satGrad is null ? 0f : (float)(satGrad[σ] * candWeight);
                for (long bb = 0; bb < B; bb++)
                {
                    long sb = σ * B + bb;
                    for (long i = 0; i < n; i++)
                    {
                        long r = sb * n + i;
                        float* dyr = dy + r * m, cr = cp + r * m, ur = g + r * 2 * m + m, sr = s + r * m, dcr = dc + r * m, dur = dg + r * 2 * m + m, dsr = ds + r * m;
                        float* nr = noise is null ? ones : noise + r * m;
                        float keep = mask is null ? 1f : mask[r];
                        bool down = i + 1 < n, up = i > 0;
                        MixBackRange(dyr, cr, ur, down ? sr + m : zeros, nr, keep, dcr, dur, down ? dsr + m : sink, gw, cw, 0, left);
                        MixBackRange(dyr, cr, ur, up ? sr - m : zeros, nr, keep, dcr, dur, up ? dsr - m : sink, gw, cw, left, left + right);
                        MixBackRange(dyr, cr, ur, sr, nr, keep, dcr, dur, dsr, gw, cw, left + right, m);
                    }
                }
            }
        }

        // maps c0 .. c1 - 1 of one row of MixBackward; `source` is the shifted state's row, `dSource` where its gradient goes
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void MixBackRange(float* dyr, float* cr, float* ur, float* source, float* nr, float keep, float* dcr, float* dur, float* dSource,
            float gw, float cw, int c0, int c1)
        {
            var keepV = new Vector<float>(keep);
            var gwV = new Vector<float>(gw);
            var cwV = new Vector<float>(cw);
            var half = new Vector<float>(0.5f);
            int c = c0;
            for (; c <= c1 - W; c += W)
            {
                var d = Load(dyr + c) * keepV;
                var pre = Load(cr + c);
                var nz = Load(nr + c);
                var cand = Clamp(pre, -1f, 1f) * nz;
                var uPre = Load(ur + c);
                var u = Clamp(uPre, 0f, 1f);
                Store(dur + c, Vector.ConditionalSelect(Inside(uPre, 0f, 1f), d * (Load(source + c) - cand), Vector<float>.Zero) + gwV * ShrinkGrad(uPre - half, 0.45f));
                Store(dcr + c, Vector.ConditionalSelect(Inside(pre, -1f, 1f), d * (Vector<float>.One - u) * nz, Vector<float>.Zero) + cwV * ShrinkGrad(pre, 0.9f));
                Store(dSource + c, Load(dSource + c) + d * u);
            }
            for (; c < c1; c++)
            {
                float d = dyr[c] * keep;
                float pre = cr[c], nz = nr[c];
                float cand = Clamp(pre, -1f, 1f) * nz;
                float uPre = ur[c], u = Clamp(uPre, 0f, 1f);
                dur[c] = (uPre >= 0f && uPre <= 1f ? d * (source[c] - cand) : 0f) + gw * ShrinkGrad(uPre - 0.5f, 0.45f);
                dcr[c] = (pre >= -1f && pre <= 1f ? d * (1 - u) * nz : 0f) + cw * ShrinkGrad(pre, 0.9f);
                dSource[c] += d * u;
            }
        }

        /// <summary>The backward pass of <see cref="ResetColumns"/>: from the gradient of the candidate's im2col
        /// columns, the reset gate's pre-activation gradient (with the saturation cost's) and r times it into the
        /// previous state's gradient (added).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void ResetColumnsBackward(Tensor dColumnsT, Tensor gatesT, Tensor stateT, Tensor dGatesT, Tensor dStateT, int S, long B, long n, int m, int k,
            float[]? satGrad, double gateWeight)
        {
            float* dx = Ptr(dColumnsT), g = Ptr(gatesT), s = Ptr(stateT), dg = Ptr(dGatesT), ds = Ptr(dStateT);
            float* drs = stackalloc float[m];
            var half = new Vector<float>(0.5f);
            for (int σ = 0; σ < S; σ++)
            {
                float gw = satGrad is null ? 0f : (float)(satGrad[σ] * gateWeight);
                var gwV = new Vector<float>(gw);
                for (long bb = 0; bb < B; bb++)
                {
                    long sb = σ * B + bb;
                    for (long q = 0; q < n; q++)
                    {
                        long r = sb * n + q;
                        Clear(drs, m);
                        Gather(drs, dx, sb, q, n, m, k);
                        float* gr = g + r * 2 * m, sr = s + r * m, dgr = dg + r * 2 * m, dsr = ds + r * m;
                        int c = 0;
                        for (; c <= m - W; c += W)
                        {
                            var pre = Load(gr + c);
                            var d = Load(drs + c);
                            Store(dgr + c, Vector.ConditionalSelect(Inside(pre, 0f, 1f), d * Load(sr + c), Vector<float>.Zero) + gwV * ShrinkGrad(pre - half, 0.45f));
                            Store(dsr + c, Load(dsr + c) + d * Clamp(pre, 0f, 1f));
                        }
                        for (; c < m; c++)
                        {
                            float pre = gr[c];
                            dgr[c] = (pre >= 0f && pre <= 1f ? drs[c] * sr[c] : 0f) + gw * ShrinkGrad(pre - 0.5f, 0.45f);
                            dsr[c] += drs[c] * Clamp(pre, 0f, 1f);
                        }
                    }
                }
            }
        }

        /// <summary>ds[σ, b, q, c] += sum over taps j of dcols[σ, (b, q - j + k/2), j m + c]: the gradient of im2col.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Col2ImAdd(Tensor dColumnsT, Tensor dStateT, int S, long B, long n, int m, int k)
        {
            float* dx = Ptr(dColumnsT), ds = Ptr(dStateT);
            for (long sb = 0; sb < S * B; sb++)
                for (long q = 0; q < n; q++) Gather(ds + (sb * n + q) * m, dx, sb, q, n, m, k);
        }

        /// <summary>Writes position q's row of one example (b: sb = σ B + b) into the im2col columns x: it is tap j of
        /// row q - j + k/2 (the centre tap included when <paramref name="row"/> is not already there); the taps of
        /// row q that read past the ends are zeroed.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Scatter(float* x, float* row, long sb, long q, long n, int m, int k)
        {
            int p = k / 2, km = k * m;
            for (int j = 0; j < k; j++)
            {
                long target = q - j + p;
                float* dst = x + (sb * n + target) * km + j * m;
                if (target >= 0 && target < n && dst != row) Copy(dst, row, m);
                long source = q + j - p;
                if (source < 0 || source >= n) Clear(x + (sb * n + q) * km + j * m, m);
            }
        }

        /// <summary>The transpose of <see cref="Scatter"/>: adds to <paramref name="sum"/> every tap of the im2col
        /// gradient dx that read position q (tap j of row q - j + k/2).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Gather(float* sum, float* dx, long sb, long q, long n, int m, int k)
        {
            int p = k / 2, km = k * m;
            for (int j = 0; j < k; j++)
            {
                long row = q - j + p;
                if (row >= 0 && row < n) Add(sum, dx + (sb * n + row) * km + j * m, m);
            }
        }

        /// <summary>sum over count values of |softshrink(v - offset, threshold)|, i.e. max(|v - offset| - threshold, 0).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static double ShrinkSum(float* v, int count, float offset, float threshold)
        {
            var acc = Vector<float>.Zero;
            var off = new Vector<float>(offset);
            float tail = 0;
            int c = 0;
            for (; c <= count - W; c += W) acc += Shrink(Load(v + c) - off, threshold);
            for (; c < count; c++) tail += Shrink(v[c] - offset, threshold);
            return Vector.Sum(acc) + tail;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Copy(float* dst, float* src, int count)
        {
            int c = 0;
            for (; c <= count - W; c += W) Store(dst + c, Load(src + c));
            for (; c < count; c++) dst[c] = src[c];
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Clear(float* dst, int count)
        {
            int c = 0;
            for (; c <= count - W; c += W) Store(dst + c, Vector<float>.Zero);
            for (; c < count; c++) dst[c] = 0f;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Add(float* dst, float* src, int count)
        {
            int c = 0;
            for (; c <= count - W; c += W) Store(dst + c, Load(dst + c) + Load(src + c));
            for (; c < count; c++) dst[c] += src[c];
        }
    }
}
