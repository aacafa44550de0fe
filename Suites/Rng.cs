using System.Text;

namespace Toolchain.Suites;

/// <summary>
/// SplitMix64: a small, fully specified PRNG, so the same seed yields the same examples on every
/// machine and every .NET version (System.Random's algorithm is not part of its contract).
/// </summary>
public sealed class Rng
{
    private ulong _state;

    public Rng(ulong seed) => _state = seed;

    /// <summary>A generator whose seed is a stable hash of the given parts (strings and integers).</summary>
    public static Rng For(params object[] parts) => new(StableHash(parts));

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        return Mix(z);
    }

    /// <summary>Uniform integer in [0, maxExclusive), unbiased (rejection sampling).</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive));
        ulong bound = (ulong)maxExclusive;
        ulong limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong x;
        do { x = NextUInt64(); } while (x >= limit);
        return (int)(x % bound);
    }

    /// <summary>Uniform integer in [minInclusive, maxInclusive].</summary>
    public int NextInt(int minInclusive, int maxInclusive) => minInclusive + NextInt(maxInclusive - minInclusive + 1);

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public bool NextBool() => (NextUInt64() >> 63) != 0;

    /// <summary>Standard normal deviate (Box-Muller), deterministic given the stream.</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>The generator's whole state, for checkpoints that must resume bit-for-bit.</summary>
    public ulong State
    {
        get => _state;
        set => _state = value;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>FNV-1a over a canonical text form of the parts, then SplitMix64 finalisation.</summary>
    public static ulong StableHash(params object[] parts)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var part in parts)
        {
            string text = part switch
            {
                string s => "s:" + s,
                int i => "i:" + i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                long l => "i:" + l.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ulong u => "i:" + u.ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => throw new ArgumentException($"unsupported hash part type {part?.GetType().Name ?? "null"}"),
            };
            foreach (byte b in Encoding.UTF8.GetBytes(text))
            {
                h ^= b;
                h *= 0x100000001B3UL;
            }
            h ^= 0xFF; // part separator
            h *= 0x100000001B3UL;
        }
        return Mix(h);
    }
}
