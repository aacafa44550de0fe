using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Train.Models;

/// <summary>
/// Dropout multipliers drawn exactly as libtorch draws <c>torch.empty(shape).bernoulli_(q, g).div_(q)</c> on the CPU,
/// bit for bit and with the generator left in the same state, but about five times faster (a [32, 48, 41] draw,
/// permuted as the candidate's noise, one thread: 0.19 ms against libtorch's 0.91 ms). libtorch's CPU bernoulli_
/// with a scalar probability draws element by element through a locked generator (builds without MKL's generator,
/// as the public ones, take that path); in the fused step it was the largest part after the matrix products.
///
/// libtorch's CPU generator is a 32-bit Mersenne Twister (MT19937). For each element, in memory order, bernoulli_
/// takes a double uniform from two draws, u = ((d1 &lt;&lt; 32 | d2) mod 2^53) / 2^53, and writes u &lt; q; div_ then
/// multiplies by 1 / (float)q. The generator's state travels through <see cref="Generator.get_state"/> and
/// <see cref="Generator.set_state"/> (libtorch's CPUGeneratorImplState). A test draws both ways from the same state
/// and requires equal tensors and equal generator states afterwards.
/// </summary>
public static class DropoutNoise
{
    private const int N = 624, M = 397;
    // byte offsets in libtorch's CPUGeneratorImplState (legacy_pod: int64 seed, int left, int seeded, uint64 next, uint64 state[624], ...)
    private const int LeftOffset = 8, NextOffset = 16, StateOffset = 24;

    /// <summary>Keep-probability <paramref name="keep"/> multipliers (0 or 1 / keep) of the row-major shape
    /// <paramref name="drawShape"/>, drawn from <paramref name="generator"/> (null: torch's default CPU generator),
    /// returned with the draw's axes in the order <paramref name="outputOrder"/> (as permute(outputOrder), but
    /// contiguous; null: the draw's own order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe Tensor Draw(Generator? generator, double keep, long[] drawShape, int[]? outputOrder = null)
    {
        var g = generator ?? torch.Generator.Default;
        byte[] state;
        using (var stateTensor = g.get_state()) state = stateTensor.bytes.ToArray();
        var engine = Engine.FromState(state);
        long count = drawShape.Aggregate(1L, (a, x) => a * x);
        float one = 1f / (float)keep; // div_ by the scalar: a multiplication by its float reciprocal
        // u = x / 2^53 < keep, with x = (d1 << 32 | d2) mod 2^53, holds exactly when x < ceil(keep 2^53) (the scaling is exact)
        ulong threshold = (ulong)Math.Ceiling(keep * 9007199254740992.0);
        int rank = drawShape.Length;
        bool identity = outputOrder is null || outputOrder.Select((a, i) => a == i).All(x => x);
        // the last two axes swapped (the candidate's noise: [B, m, n] drawn, [B, n, m] used): each drawn row is
        // written as a column of its matrix, so the output needs no second pass
        bool swapLast = !identity && rank >= 2 && outputOrder!.Take(rank - 2).Select((a, i) => a == i).All(x => x)
            && outputOrder![rank - 2] == rank - 1 && outputOrder[rank - 1] == rank - 2;
        var shape = drawShape.ToArray();
        if (swapLast) (shape[rank - 2], shape[rank - 1]) = (shape[rank - 1], shape[rank - 2]);
        var result = torch.empty(shape);
        float* values;
        fixed (byte* p = result.bytes) values = (float*)p; // libtorch's memory: it does not move
        if (swapLast)
        {
            // eight drawn rows at a time, then written position by position: each output row then takes eight
            // neighbouring values at once instead of one value per cache line
            const int Group = 8;
            long rows = drawShape[rank - 2], cols = drawShape[rank - 1];
            var block = Group * cols <= (_row?.Length ?? 0) ? _row! : (_row = new float[Group * cols]);
            fixed (float* r = block)
                for (long at = 0; at < count; at += rows * cols)
                    for (long i0 = 0; i0 < rows; i0 += Group)
                    {
                        int group = (int)Math.Min(Group, rows - i0);
                        for (int j = 0; j < group; j++) DrawRun(engine, r + j * cols, cols, threshold, one);
                        for (long c = 0; c < cols; c++)
                        {
                            float* dst = values + at + c * rows + i0;
                            for (int j = 0; j < group; j++) dst[j] = r[j * cols + c];
                        }
                    }
        }
        else DrawRun(engine, values, count, threshold, one);
        engine.WriteTo(state);
        using (var newState = torch.tensor(state, dtype: ScalarType.Byte)) g.set_state(newState);
        if (identity || swapLast) return result;
        using (result) return result.permute(outputOrder!.Select(a => (long)a).ToArray()).contiguous();
    }

    /// <summary>The next <paramref name="count"/> multipliers of the stream, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void DrawRun(Engine engine, float* values, long count, ulong threshold, float one)
    {
        var draws = _draws ??= new uint[2 * Chunk];
        for (long done = 0; done < count; done += Chunk)
        {
            int chunk = (int)Math.Min(Chunk, count - done);
            engine.Fill(draws.AsSpan(0, 2 * chunk));
            Bernoulli(draws, values + done, chunk, threshold, one);
        }
    }

    private const int Chunk = 4096;
    [ThreadStatic] private static uint[]? _draws;
    [ThreadStatic] private static float[]? _row;

    /// <summary>values[i] = one if x_i &lt; threshold else 0, x_i = ((d[2i] &lt;&lt; 32) | d[2i + 1]) mod 2^53, without a branch:
    /// both are below 2^54, so x - threshold wraps to its top bit exactly when x &lt; threshold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Bernoulli(uint[] draws, float* values, int count, ulong threshold, float one)
    {
        const ulong Mask = (1UL << 53) - 1;
        int i = 0;
        if (Vector.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            // a pair (d1, d2) read as one little-endian ulong is d2 << 32 | d1: x = (v >> 32) | ((v mod 2^21) << 32)
            var pairs = MemoryMarshal.Cast<uint, ulong>(draws.AsSpan(0, 2 * count));
            int w = Vector<ulong>.Count;
            var low21 = new Vector<ulong>((1UL << 21) - 1);
            var thresholdV = new Vector<ulong>(threshold);
            var oneV = new Vector<float>(one);
            for (; i + 2 * w <= count; i += 2 * w)
            {
                var a = new Vector<ulong>(pairs.Slice(i, w));
                var b = new Vector<ulong>(pairs.Slice(i + w, w));
                var xa = Vector.ShiftRightLogical(a, 32) | Vector.ShiftLeft(a & low21, 32);
                var xb = Vector.ShiftRightLogical(b, 32) | Vector.ShiftLeft(b & low21, 32);
                var bits = Vector.Narrow(Vector.ShiftRightLogical(xa - thresholdV, 63), Vector.ShiftRightLogical(xb - thresholdV, 63));
                *(Vector<float>*)(values + i) = Vector.ConvertToSingle(Vector.AsVectorInt32(bits)) * oneV;
            }
        }
        for (; i < count; i++)
            values[i] = one * (float)((((((ulong)draws[2 * i] << 32) | draws[2 * i + 1]) & Mask) - threshold) >> 63);
    }

    /// <summary>libtorch's at::mt19937 (its next_state and tempering; left counts down to the next refill).</summary>
    private sealed class Engine
    {
        private readonly uint[] _state = new uint[N];
        private int _left, _next;

        public static Engine FromState(byte[] s)
        {
            if (s.Length < StateOffset + 8 * N) throw new InvalidOperationException($"dropout noise: unexpected CPU generator state of {s.Length} bytes");
            var e = new Engine { _left = BitConverter.ToInt32(s, LeftOffset), _next = (int)BitConverter.ToUInt64(s, NextOffset) };
            for (int i = 0; i < N; i++) e._state[i] = (uint)BitConverter.ToUInt64(s, StateOffset + 8 * i);
            return e;
        }

        public void WriteTo(byte[] s)
        {
            BitConverter.TryWriteBytes(s.AsSpan(LeftOffset, 4), _left);
            BitConverter.TryWriteBytes(s.AsSpan(NextOffset, 8), (ulong)_next);
            for (int i = 0; i < N; i++) BitConverter.TryWriteBytes(s.AsSpan(StateOffset + 8 * i, 8), (ulong)_state[i]);
        }

        /// <summary>The next dst.Length outputs, as that many calls of at::mt19937's operator() give them (each call:
        /// --left; refill the block when it reaches 0; temper state[next++]): whole runs of the current block tempered
        /// in SIMD vectors, the block refilled where operator() would refill it.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Fill(Span<uint> dst)
        {
            int done = 0;
            while (done < dst.Length)
            {
                // Next reads state[next] after --left; at left == 1 that call refills first (then left = N, next = 1 after it)
                if (_left == 1) { Refill(); _left = N + 1; }
                int r = Math.Min(dst.Length - done, _left - 1);
                Temper(_state.AsSpan(_next, r), dst.Slice(done, r));
                _next += r;
                _left -= r;
                done += r;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Temper(ReadOnlySpan<uint> src, Span<uint> dst)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var b = new Vector<uint>(0x9d2c5680u);
                var c = new Vector<uint>(0xefc60000u);
                int w = Vector<uint>.Count;
                for (; i <= src.Length - w; i += w)
                {
                    var y = new Vector<uint>(src.Slice(i, w));
                    y ^= Vector.ShiftRightLogical(y, 11);
                    y ^= Vector.ShiftLeft(y, 7) & b;
                    y ^= Vector.ShiftLeft(y, 15) & c;
                    y ^= Vector.ShiftRightLogical(y, 18);
                    y.CopyTo(dst.Slice(i, w));
                }
            }
            for (; i < src.Length; i++)
            {
                uint y = src[i];
                y ^= y >> 11;
                y ^= (y << 7) & 0x9d2c5680u;
                y ^= (y << 15) & 0xefc60000u;
                y ^= y >> 18;
                dst[i] = y;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Refill()
        {
            _left = N;
            _next = 0;
            var s = _state.AsSpan();
            // state[i] = state[i + M] ^ twist(state[i], state[i + 1]) for i < N - M, then state[i - (N - M)] for the rest:
            // every value a vector reads is either not yet rewritten (i + 1 ..) or rewritten by an earlier vector (i - (N - M) ..)
            int i = TwistRange(s, 0, N - M, M);
            for (; i < N - M; i++) s[i] = s[i + M] ^ Twist(s[i], s[i + 1]);
            i = TwistRange(s, N - M, N - 1, M - N);
            for (; i < N - 1; i++) s[i] = s[i + M - N] ^ Twist(s[i], s[i + 1]);
            s[N - 1] = s[M - 1] ^ Twist(s[N - 1], s[0]);
        }

        /// <summary>The twist of whole vectors from <paramref name="from"/> while they fit before <paramref name="to"/>;
        /// returns where the scalar loop goes on.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static int TwistRange(Span<uint> s, int from, int to, int offset)
        {
            int w = Vector<uint>.Count, i = from;
            if (!Vector.IsHardwareAccelerated || offset < 0 && -offset < w) return i;
            var upper = new Vector<uint>(0x80000000u);
            var lower = new Vector<uint>(0x7fffffffu);
            var matrix = new Vector<uint>(0x9908b0dfu);
            for (; i + w <= to; i += w)
            {
                var u = new Vector<uint>(s.Slice(i, w));
                var v = new Vector<uint>(s.Slice(i + 1, w));
                var far = new Vector<uint>(s.Slice(i + offset, w));
                var odd = Vector<uint>.Zero - (v & Vector<uint>.One);
                var twisted = Vector.ShiftRightLogical((u & upper) | (v & lower), 1) ^ (odd & matrix);
                (far ^ twisted).CopyTo(s.Slice(i, w));
            }
            return i;
        }

        private static uint Twist(uint u, uint v) => (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((0u - (v & 1u)) & 0x9908b0dfu);
    }
}
