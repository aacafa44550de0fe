using System.Text;

namespace Toolchain.Suites;

/// <summary>
/// An algorithmic task: a vocabulary (token 0 is always PAD, written "_"), an encoding of instances of
/// size k as aligned input/target token sequences of equal length, generators for each case family,
/// and an exact checker. Subclasses are small and registered by name in <see cref="TaskRegistry"/>.
/// </summary>
public abstract class AlgorithmicTask
{
    public const int Pad = 0;
    public const string PadSymbol = "_";

    /// <summary>The case family every task has: uniformly random instances.</summary>
    public const string Random = "random";

    public abstract string Name { get; }
    public abstract string Description { get; }

    /// <summary>Symbols in id order; every symbol is a single character, index 0 is PAD.</summary>
    public abstract IReadOnlyList<string> Vocab { get; }

    /// <summary>Case families this task can generate: "random" first, then the hard families.</summary>
    public abstract IReadOnlyList<string> Families { get; }

    /// <summary>Families graded only where a suite names them: not covered by a level's `hard` or `*` count, nor
    /// probed by the break-point search. New families start here, so that adding one does not silently change
    /// what the built-in suites measure (and the cached gradings of every published model).</summary>
    public virtual IReadOnlyList<string> OptInFamilies => [];

    /// <summary>Sequence length (input = target length) of an instance of size k.</summary>
    public abstract int LengthForSize(int size);

    /// <summary>Largest size whose encoding still fits in <paramref name="maxLength"/> tokens (0 if none).</summary>
    public int SizeForLength(int maxLength)
    {
        int lo = 0, hi = Math.Max(1, maxLength);
        while (lo < hi)
        {
            int mid = lo + (hi - lo + 1) / 2;
            if (LengthForSize(mid) <= maxLength) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Smallest size an instance can have.</summary>
    public virtual int MinSize => 1;

    /// <summary>The reference answer for a well-formed input; throws <see cref="FormatException"/> otherwise.</summary>
    public abstract int[] Solve(ReadOnlySpan<int> input);

    /// <summary>A human-readable reading of an instance (e.g. "45 + 150 = 195"), or null.</summary>
    public virtual string? Describe(ReadOnlySpan<int> input) => null;

    protected abstract int[] GenerateInput(int size, string family, Rng rng);

    /// <summary>Draws one instance of size k from a family; deterministic in the generator's state.</summary>
    public Example Generate(int size, string family, Rng rng)
    {
        ValidateSize(size);
        if (!Families.Contains(family))
            throw new ArgumentException($"task '{Name}' has no case family '{family}'; its families are: {string.Join(", ", Families)}");
        var input = GenerateInput(size, family, rng);
        return new Example(input, Solve(input), size, family);
    }

    /// <summary>Exact check of a whole output sequence against the reference answer computed from the input.</summary>
    public CheckResult Check(ReadOnlySpan<int> input, ReadOnlySpan<int> output) => CheckResult.Compare(Solve(input), output);

    public void ValidateSize(int size)
    {
        if (size < MinSize)
            throw new ArgumentOutOfRangeException(nameof(size), $"size {size} is below the smallest size {MinSize} of task '{Name}'");
        if (LengthForSize(size) > MaxLength)
            throw new ArgumentOutOfRangeException(nameof(size), $"size {size} of task '{Name}' encodes to {LengthForSize(size):N0} tokens, over the limit of {MaxLength:N0}");
    }

    /// <summary>Hard limit on one example's length, far above any suite level (1000x of 41 is 41,000).</summary>
    public const int MaxLength = 50_000_000;

    /// <summary>Tokens as their symbols, one character each.</summary>
    public string Render(ReadOnlySpan<int> tokens)
    {
        var sb = new StringBuilder(tokens.Length);
        foreach (int t in tokens)
            sb.Append(t >= 0 && t < Vocab.Count ? Vocab[t] : "?");
        return sb.ToString();
    }

    /// <summary>Symbols back to tokens; throws <see cref="FormatException"/> naming the first unknown symbol.</summary>
    public int[] Parse(string symbols)
    {
        var tokens = new int[symbols.Length];
        for (int i = 0; i < symbols.Length; i++)
        {
            int id = IndexOfSymbol(symbols[i]);
            if (id < 0)
                throw new FormatException($"'{symbols[i]}' at position {i} is not a symbol of task '{Name}' (vocabulary: {string.Join(" ", Vocab)})");
            tokens[i] = id;
        }
        return tokens;
    }

    private int IndexOfSymbol(char c)
    {
        for (int i = 0; i < Vocab.Count; i++)
            if (Vocab[i].Length == 1 && Vocab[i][0] == c) return i;
        return -1;
    }
}
