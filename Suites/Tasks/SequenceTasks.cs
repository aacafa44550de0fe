namespace Toolchain.Suites.Tasks;

/// <summary>
/// Base of the bit-sequence tasks: vocabulary "_ 0 1" (bit b is token b+1), size k = number of input bits,
/// families random, all_ones, all_zeros, alternating.
/// </summary>
public abstract class BitSequenceTask : AlgorithmicTask
{
    private static readonly string[] BitVocab = [PadSymbol, "0", "1"];
    private static readonly string[] BitFamilies = [Random, "all_ones", "all_zeros", "alternating"];

    public override IReadOnlyList<string> Vocab => BitVocab;
    public override IReadOnlyList<string> Families => BitFamilies;

    /// <summary>How many PAD positions follow the k input bits (the room the output needs).</summary>
    protected virtual int PaddingForSize(int size) => 0;

    public override int LengthForSize(int size) => size + PaddingForSize(size);

    /// <summary>The output bits for the input bits; the target is these as tokens, then PAD.</summary>
    protected abstract int[] Transform(int[] bits);

    /// <summary>Encodes explicit bits (0/1) as an instance.</summary>
    public Example Encode(int[] bits, string family)
    {
        ValidateSize(bits.Length);
        var input = new int[LengthForSize(bits.Length)];
        for (int i = 0; i < bits.Length; i++)
        {
            if (bits[i] is not (0 or 1)) throw new FormatException($"bit {i} is {bits[i]}, not 0 or 1");
            input[i] = bits[i] + 1;
        }
        return new Example(input, Solve(input), bits.Length, family);
    }

    protected override int[] GenerateInput(int size, string family, Rng rng)
    {
        var bits = new int[size];
        int phase = family == "alternating" ? rng.NextInt(2) : 0;
        for (int i = 0; i < size; i++)
        {
            bits[i] = family switch
            {
                "all_ones" => 1,
                "all_zeros" => 0,
                "alternating" => (i + phase) % 2,
                _ => rng.NextInt(2),
            };
        }
        var input = new int[LengthForSize(size)];
        for (int i = 0; i < size; i++) input[i] = bits[i] + 1;
        return input;
    }

    public override int[] Solve(ReadOnlySpan<int> input)
    {
        int size = SizeOfInput(input);
        var bits = new int[size];
        for (int i = 0; i < size; i++) bits[i] = input[i] - 1;
        var outBits = Transform(bits);
        var target = new int[input.Length];
        for (int i = 0; i < outBits.Length; i++) target[i] = outBits[i] + 1;
        return target;
    }

    /// <summary>Validates the layout (k bits, then PAD) and returns k.</summary>
    private int SizeOfInput(ReadOnlySpan<int> input)
    {
        int size = SizeForLength(input.Length);
        if (size < MinSize || LengthForSize(size) != input.Length)
            throw new FormatException($"task '{Name}': no instance has length {input.Length}");
        for (int i = 0; i < input.Length; i++)
        {
            bool wantBit = i < size;
            if (wantBit && input[i] is not (1 or 2))
                throw new FormatException($"task '{Name}': token {input[i]} at position {i} is not a bit");
            if (!wantBit && input[i] != Pad)
                throw new FormatException($"task '{Name}': position {i} must be PAD, found token {input[i]}");
        }
        return size;
    }
}

/// <summary>
/// copy: the output is the input.
/// Example (k = 5): input 01101, target 01101.
/// </summary>
public sealed class CopyTask : BitSequenceTask
{
    public override string Name => "copy";
    public override string Description => "output = input (bits)";
    protected override int[] Transform(int[] bits) => (int[])bits.Clone();
}

/// <summary>
/// reverse: the output is the input reversed.
/// Example (k = 5): input 01101, target 10110.
/// </summary>
public sealed class ReverseTask : BitSequenceTask
{
    public override string Name => "reverse";
    public override string Description => "output = input reversed (bits)";
    protected override int[] Transform(int[] bits)
    {
        var r = (int[])bits.Clone();
        Array.Reverse(r);
        return r;
    }
}

/// <summary>
/// duplicate: k bits followed by k PAD positions; the output is the bits written twice.
/// Example (k = 3): input 011___, target 011011.
/// </summary>
public sealed class DuplicateTask : BitSequenceTask
{
    public override string Name => "duplicate";
    public override string Description => "k bits then k PAD; output = the bits twice";
    protected override int PaddingForSize(int size) => size;
    protected override int[] Transform(int[] bits) => [.. bits, .. bits];
}

/// <summary>
/// sort: the output is the input bits in ascending order.
/// Example (k = 5): input 01101, target 00111.
/// </summary>
public sealed class SortTask : BitSequenceTask
{
    public override string Name => "sort";
    public override string Description => "output = input bits sorted ascending";
    protected override int[] Transform(int[] bits)
    {
        var r = (int[])bits.Clone();
        Array.Sort(r);
        return r;
    }
}

/// <summary>
/// even_repeat (the lecture's toy task): every bit at an even position is written twice, replacing
/// the odd-position bit after it: target[j] = input[j - j % 2].
/// Example (k = 6): input 011010, target 001111.
/// </summary>
public sealed class EvenRepeatTask : BitSequenceTask
{
    public override string Name => "even_repeat";
    public override string Description => "each bit at an even position written twice: out[j] = in[j - j%2]";
    protected override int[] Transform(int[] bits)
    {
        var r = new int[bits.Length];
        for (int j = 0; j < bits.Length; j++) r[j] = bits[j - j % 2];
        return r;
    }
}
