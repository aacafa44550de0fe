using System.Globalization;
using System.Numerics;

namespace Toolchain.Suites.Tasks;

/// <summary>
/// Arithmetic on two k-digit operands in a given base, in the released Neural GPU format: digit d is
/// token d+1, the separator ('+' or '*') is token base+1, operands are written least significant digit
/// first: input = a, separator, b (length 2k+1); target = the result's digits least significant first
/// (no leading zeros, "0" for zero) from position 0, then PAD to the input length; a task built with
/// <c>zeroPadded</c> writes the digit 0 there instead of PAD, as the DNGPU reference's multiplication data does.
/// Size k is the number of digits per operand, so 100x of k = 20 means 2,000-digit operands.
/// </summary>
public abstract class ArithmeticTask : AlgorithmicTask
{
    private readonly string[] _vocab;
    private readonly string[] _families;

    protected ArithmeticTask(int radix, char op, bool zeroPadded = false)
    {
        Radix = radix;
        Operator = op;
        ZeroPadded = zeroPadded;
        _vocab = [PadSymbol, .. Enumerable.Range(0, radix).Select(d => d.ToString(CultureInfo.InvariantCulture)), op.ToString()];
        _families = op == '+'
            ? [Random, "carry", "complement", "all_ones", "all_zeros", "alternating", "powers_of_two", "symmetric", "uneven", "identity_a", "identity_b", "no_carry", FarPowersOfTwo, TapeEnds]
            : [Random, "all_ones", "all_zeros", "alternating", "powers_of_two", "symmetric", "uneven", "identity_a", "identity_b", FarPowersOfTwo, TapeEnds];
    }

    public int Radix { get; }
    public char Operator { get; }
    public int SeparatorToken => Radix + 1;

    /// <summary>Whether the target writes the result's leading zeros (the digit 0) up to the input length instead
    /// of PAD, so a model never decides where the result ends.</summary>
    public bool ZeroPadded { get; }

    public override IReadOnlyList<string> Vocab => _vocab;
    public override IReadOnlyList<string> Families => _families;

    /// <summary>Two powers of two as far apart as the size allows: the largest one below B^k and one of the lowest
    /// quarter of exponents. The answer's zeros between them (and below them) are zeros and not PAD only because of
    /// a 1 up to k - 1 digits away, the longest reach a size-k example can ask for. Opt-in: a training family
    /// (hard_families) and a diagnostic, not part of the built-in suites' `hard` count.</summary>
    public const string FarPowersOfTwo = "far_powers_of_two";

    /// <summary>Random operands whose digits at the two ends of the tape are non-zero: a's lowest (position 0) and
    /// b's highest (position 2k). On bmul these pairs meet last, and the dngpu-bmul weights' random misses at the
    /// training size, run for n steps, are about 8 times as frequent when both are 1 as on the other products (3.85%
    /// against 0.47%; docs/results.md, 2026-11-29, seventh session); with ceil(1.25 n) steps they are gone (eighth).
    /// Opt-in: a training family and a diagnostic, not part of the built-in suites' `hard` count.</summary>
    public const string TapeEnds = "tape_ends";

    public override IReadOnlyList<string> OptInFamilies => [FarPowersOfTwo, TapeEnds];

    public override int LengthForSize(int size) => 2 * size + 1;

    public BigInteger Apply(BigInteger a, BigInteger b) => Operator == '+' ? a + b : a * b;

    /// <summary>Encodes explicit operands as an instance of size k (each operand must fit in k digits).</summary>
    public Example Encode(BigInteger a, BigInteger b, int size, string family)
    {
        ValidateSize(size);
        var input = EncodeInput(Digits.FromBigInteger(a, Radix, size), Digits.FromBigInteger(b, Radix, size));
        return new Example(input, Solve(input), size, family);
    }

    /// <summary>Operands of a well-formed input.</summary>
    public (BigInteger A, BigInteger B) Operands(ReadOnlySpan<int> input)
    {
        if (input.Length < 3 || input.Length % 2 == 0)
            throw new FormatException($"task '{Name}': input length {input.Length} is not 2k+1");
        int k = (input.Length - 1) / 2;
        if (input[k] != SeparatorToken)
            throw new FormatException($"task '{Name}': position {k} must hold the separator '{Operator}', found token {input[k]}");
        return (ReadOperand(input[..k], 0), ReadOperand(input[(k + 1)..], k + 1));
    }

    public override int[] Solve(ReadOnlySpan<int> input)
    {
        var (a, b) = Operands(input);
        var result = Digits.FromBigInteger(Apply(a, b), Radix);
        if (result.Length > input.Length)
            throw new FormatException($"task '{Name}': result has {result.Length} digits, more than the length {input.Length}");
        var target = new int[input.Length];
        for (int i = 0; i < result.Length; i++) target[i] = result[i] + 1;
        if (ZeroPadded) target.AsSpan(result.Length).Fill(1);
        return target;
    }

    public override string? Describe(ReadOnlySpan<int> input)
    {
        var (a, b) = Operands(input);
        var r = Apply(a, b);
        if (input.Length > 121) return $"{(input.Length - 1) / 2:N0}-digit base-{Radix} operands";
        return $"{a} {Operator} {b} = {r}";
    }

    private BigInteger ReadOperand(ReadOnlySpan<int> tokens, int offset)
    {
        var digits = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            int d = tokens[i] - 1;
            if (d < 0 || d >= Radix)
                throw new FormatException($"task '{Name}': token {tokens[i]} at position {offset + i} is not a base-{Radix} digit");
            digits[i] = d;
        }
        return Digits.ToBigInteger(digits, Radix);
    }

    private int[] EncodeInput(int[] a, int[] b)
    {
        var input = new int[a.Length + 1 + b.Length];
        for (int i = 0; i < a.Length; i++) input[i] = a[i] + 1;
        input[a.Length] = SeparatorToken;
        for (int i = 0; i < b.Length; i++) input[a.Length + 1 + i] = b[i] + 1;
        return input;
    }

    protected override int[] GenerateInput(int size, string family, Rng rng)
    {
        var (a, b) = family switch
        {
            "carry" => CarryChain(size, rng),
            "complement" => Complement(size, rng),
            "all_ones" => (Fill(size, Radix - 1), Fill(size, Radix - 1)),
            "all_zeros" => (Fill(size, 0), Fill(size, 0)),
            "alternating" => Alternating(size, rng),
            "powers_of_two" => PowersOfTwo(size, rng),
            FarPowersOfTwo => FarPowers(size, rng),
            TapeEnds => TapeEndOperands(size, rng),
            "symmetric" => Symmetric(size, rng),
            "uneven" => Uneven(size, rng),
            "identity_a" => (Identity(size), FullDigits(size, rng)),
            "identity_b" => (FullDigits(size, rng), Identity(size)),
            "no_carry" => NoCarry(size, rng),
            _ => (RandomDigits(size, size, rng), RandomDigits(size, size, rng)),
        };
        return EncodeInput(a, b);
    }

    private static int[] Fill(int size, int digit) => Enumerable.Repeat(digit, size).ToArray();

    /// <summary>The operation's identity as k digits: 0 for addition, 1 for multiplication. With it as one operand
    /// the result is the other operand, which has to travel across the whole tape to the output.</summary>
    private int[] Identity(int size) => Digits.FromBigInteger(Operator == '+' ? BigInteger.Zero : BigInteger.One, Radix, size);

    /// <summary>k random digits whose top digit is non-zero, so the operand spans the whole operand field.</summary>
    private int[] FullDigits(int size, Rng rng)
    {
        var d = RandomDigits(size, size, rng);
        d[size - 1] = 1 + rng.NextInt(Radix - 1);
        return d;
    }

    /// <summary>a random, b random under the constraint a_i + b_i &lt; B at every position: addition without a single
    /// carry, so an error can only come from moving the operands, not from carrying.</summary>
    private (int[], int[]) NoCarry(int size, Rng rng)
    {
        var a = RandomDigits(size, size, rng);
        var b = new int[size];
        for (int i = 0; i < size; i++) b[i] = rng.NextInt(Radix - a[i]);
        return (a, b);
    }

    /// <summary>k digits of which the lowest <paramref name="significant"/> are random and the rest zero; when
    /// significant &lt; k the top significant digit is non-zero, so the operand really has that many digits.</summary>
    private int[] RandomDigits(int size, int significant, Rng rng)
    {
        var d = new int[size];
        for (int i = 0; i < significant; i++) d[i] = rng.NextInt(Radix);
        if (significant < size && significant > 0) d[significant - 1] = 1 + rng.NextInt(Radix - 1);
        return d;
    }

    private static (int[], int[]) MaybeSwap(int[] a, int[] b, Rng rng) => rng.NextBool() ? (b, a) : (a, b);

    /// <summary>a = B^k - B^j (digits j..k-1 are B-1), b = B^j + r with r &lt; B^j: a carry is born at
    /// position j and runs to the top, a chain of k - j &gt;= 3k/4 positions.</summary>
    private (int[], int[]) CarryChain(int size, Rng rng)
    {
        int j = rng.NextInt(size / 4 + 1);
        var a = new int[size];
        for (int i = j; i < size; i++) a[i] = Radix - 1;
        var b = new int[size];
        for (int i = 0; i < j; i++) b[i] = rng.NextInt(Radix);
        b[j] = 1;
        return MaybeSwap(a, b, rng);
    }

    /// <summary>b = B^k - 1 - a (the sum is all top digits, no carry) or b = B^k - a (the sum is B^k: one long carry).</summary>
    private (int[], int[]) Complement(int size, Rng rng)
    {
        var a = RandomDigits(size, size, rng);
        var b = new int[size];
        for (int i = 0; i < size; i++) b[i] = Radix - 1 - a[i];
        if (rng.NextBool())
        {
            // add one to b, so a + b = B^k (when a is zero, b would overflow; keep the no-carry pair then)
            var plusOne = (int[])b.Clone();
            int pos = 0;
            while (pos < size && plusOne[pos] == Radix - 1) plusOne[pos++] = 0;
            if (pos < size) { plusOne[pos]++; b = plusOne; }
        }
        return MaybeSwap(a, b, rng);
    }

    private (int[], int[]) Alternating(int size, Rng rng)
    {
        int phase = rng.NextInt(2);
        var a = new int[size];
        var b = new int[size];
        for (int i = 0; i < size; i++)
        {
            bool high = (i + phase) % 2 == 0;
            a[i] = high ? Radix - 1 : 0;
            b[i] = high ? 0 : Radix - 1;
        }
        return (a, b);
    }

    private (int[], int[]) PowersOfTwo(int size, Rng rng)
    {
        int maxExp = LargestPowerOfTwoExponent(size);
        var a = Digits.FromBigInteger(BigInteger.One << rng.NextInt(maxExp + 1), Radix, size);
        var b = Digits.FromBigInteger(BigInteger.One << rng.NextInt(maxExp + 1), Radix, size);
        return (a, b);
    }

    /// <summary>The largest e with 2^e &lt; B^k: the largest power of two that fits in k digits.</summary>
    private int LargestPowerOfTwoExponent(int size) => (int)(BigInteger.Pow(Radix, size) - 1).GetBitLength() - 1;

    private (int[], int[]) FarPowers(int size, Rng rng)
    {
        int maxExp = LargestPowerOfTwoExponent(size);
        var top = Digits.FromBigInteger(BigInteger.One << maxExp, Radix, size);
        var low = Digits.FromBigInteger(BigInteger.One << rng.NextInt(Math.Max(1, (maxExp + 1) / 4)), Radix, size);
        return MaybeSwap(top, low, rng);
    }

    private (int[], int[]) TapeEndOperands(int size, Rng rng)
    {
        var a = RandomDigits(size, size, rng);
        a[0] = 1 + rng.NextInt(Radix - 1);
        return (a, FullDigits(size, rng));
    }

    /// <summary>a == b: half the time the smallest symmetric case 0...02 x 0...02 (Price et al.), else random.</summary>
    private (int[], int[]) Symmetric(int size, Rng rng)
    {
        int[] a;
        if (rng.NextBool())
            a = Digits.FromBigInteger(BigInteger.Pow(Radix, size) > 2 ? 2 : 1, Radix, size);
        else
            a = RandomDigits(size, size, rng);
        return (a, (int[])a.Clone());
    }

    /// <summary>One operand with all k digits significant, the other with at most max(1, k/8).</summary>
    private (int[], int[]) Uneven(int size, Rng rng)
    {
        var longer = RandomDigits(size, size, rng);
        longer[size - 1] = 1 + rng.NextInt(Radix - 1);
        var shorter = RandomDigits(size, 1 + rng.NextInt(Math.Max(1, size / 8)), rng);
        return MaybeSwap(longer, shorter, rng);
    }
}

/// <summary>badd: binary addition. Example (k = 3): 3 + 6 = 9: input 110+011, target 1001___.</summary>
public sealed class BinaryAddTask() : ArithmeticTask(2, '+')
{
    public override string Name => "badd";
    public override string Description => "binary addition, k-bit operands, least significant bit first";
}

/// <summary>bmul: binary multiplication. Example (k = 3): 3 * 6 = 18: input 110*011, target 01001__.</summary>
public sealed class BinaryMulTask() : ArithmeticTask(2, '*')
{
    public override string Name => "bmul";
    public override string Description => "binary multiplication, k-bit operands, least significant bit first";
}

/// <summary>bmul_zeros: binary multiplication with the product's leading zeros written as the digit 0 up to the input
/// length, the DNGPU reference's bmul data (`to_base(a * b, 2, l)` in its data_utils_2.py). Example (k = 3):
/// 3 * 6 = 18: input 110*011, target 0100100. A task of its own, so that bmul's suites and cards keep their
/// meaning.</summary>
public sealed class BinaryMulZerosTask() : ArithmeticTask(2, '*', zeroPadded: true)
{
    public override string Name => "bmul_zeros";
    public override string Description =>
        "binary multiplication as bmul, the product's leading zeros written as 0 up to the input length (the DNGPU reference's targets)";
}

/// <summary>qadd: base-4 addition. Example (k = 2): 7 + 9 = 16: input 31+12, target 001__.</summary>
public sealed class QuaternaryAddTask() : ArithmeticTask(4, '+')
{
    public override string Name => "qadd";
    public override string Description => "base-4 addition, k-digit operands, least significant digit first";
}

/// <summary>qmul: base-4 multiplication. Example (k = 2): 7 * 9 = 63: input 31*12, target 333__.</summary>
public sealed class QuaternaryMulTask() : ArithmeticTask(4, '*')
{
    public override string Name => "qmul";
    public override string Description => "base-4 multiplication, k-digit operands, least significant digit first";
}

/// <summary>add: decimal addition. Example (k = 2): 45 + 67 = 112: input 54+76, target 211__.</summary>
public sealed class DecimalAddTask() : ArithmeticTask(10, '+')
{
    public override string Name => "add";
    public override string Description => "decimal addition, k-digit operands, least significant digit first";
}

/// <summary>mul: decimal multiplication. Example (k = 2): 45 * 67 = 3015: input 54*76, target 5103_.</summary>
public sealed class DecimalMulTask() : ArithmeticTask(10, '*')
{
    public override string Name => "mul";
    public override string Description => "decimal multiplication, k-digit operands, least significant digit first";
}
