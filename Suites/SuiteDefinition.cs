using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Toolchain.Suites.Tasks;

namespace Toolchain.Suites;

/// <summary>
/// A graded suite: levels (multiples of the model's training size, or absolute sizes), sample counts
/// per level and family, a seed, and explicit pinned cases. Loaded from YAML by <see cref="SuiteFile"/>.
/// </summary>
public sealed record SuiteDefinition(
    string Name,
    string Description,
    ulong Seed,
    IReadOnlyList<SuiteLevel> Levels,
    IReadOnlyList<SuiteCase> Cases)
{
    /// <summary>SHA-256 of the canonical YAML form: two files that mean the same suite hash the same.</summary>
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(SuiteFile.ToYaml(this))));

    /// <summary>The levels made concrete for one task and training size.</summary>
    public IReadOnlyList<ResolvedLevel> Resolve(AlgorithmicTask task, int trainSize)
    {
        if (trainSize < 1) throw new ArgumentOutOfRangeException(nameof(trainSize), "training size must be at least 1");
        var result = new List<ResolvedLevel>();
        foreach (var level in Levels)
        {
            double wanted = level.Size ?? Math.Round(level.Multiple!.Value * trainSize, MidpointRounding.AwayFromZero);
            if (wanted > int.MaxValue)
                throw new ArgumentException($"level '{level.Name}' would be size {wanted:G4} ({level.Multiple:G4} x training size " +
                    $"{trainSize}), beyond the largest size {int.MaxValue:N0}");
            int size = Math.Max(task.MinSize, (int)wanted);
            var counts = new List<(string Family, int Count)>();
            foreach (var family in task.Families)
            {
                int count = task.OptInFamilies.Contains(family) ? level.NamedCountFor(family) : level.CountFor(family);
                if (count > 0) counts.Add((family, count));
            }
            if (level.Exhaustive)
            {
                // every input of the size. A size that fits in binary but not in a task's wider digits takes the
                // largest smaller size that fits (decimal tasks: the standard suite's size 4 has 10^8 operand
                // pairs, size 3 has 10^6), and the resolved size says so; one too large even in binary is an error
                if (Math.Pow(2, 2.0 * size) <= MaxExhaustive)
                    while (size > task.MinSize && InputCount(task, size) > MaxExhaustive) size--;
                counts = [("exhaustive", checked((int)ExhaustiveCount(task, size)))];
            }
            result.Add(new ResolvedLevel(level.Name, size, (double)size / trainSize, level.Exhaustive, counts));
        }
        return result;
    }

    /// <summary>Example <paramref name="index"/> of a family at a resolved level: a pure function of
    /// (suite seed, task, level, size, family, index), so shards and resumed runs see the same examples.</summary>
    public Example Instance(AlgorithmicTask task, ResolvedLevel level, string family, int index)
    {
        if (level.Exhaustive) return ExhaustiveInstance(task, level.Size, index);
        var rng = Rng.For(Seed, task.Name, level.Name, level.Size, family, index);
        return task.Generate(level.Size, family, rng);
    }

    /// <summary>Pinned cases that apply to a task, encoded: those naming the task, and those naming none
    /// whose kind fits (operands for arithmetic tasks, symbols for sequence tasks).</summary>
    public IEnumerable<(SuiteCase Case, Example Example)> CaseExamples(AlgorithmicTask task)
    {
        foreach (var c in Cases)
        {
            bool fits = c.Task == task.Name || (c.Task is null && (task is ArithmeticTask) == (c.Operands is not null));
            if (fits) yield return (c, c.Encode(task));
        }
    }

    /// <summary>Largest number of instances an exhaustive level may enumerate.</summary>
    public const long MaxExhaustive = 1 << 22;

    private static double InputCount(AlgorithmicTask task, int size) =>
        task is ArithmeticTask a ? Math.Pow(a.Radix, 2.0 * size) : Math.Pow(2, size);

    public static long ExhaustiveCount(AlgorithmicTask task, int size)
    {
        double count = InputCount(task, size);
        if (count > MaxExhaustive)
            throw new ArgumentOutOfRangeException(nameof(size), $"an exhaustive level of size {size} for task '{task.Name}' has {count:G3} instances, over the limit of {MaxExhaustive:N0}");
        return (long)count;
    }

    /// <summary>Instance number <paramref name="index"/> of all inputs of a size, in lexicographic order.</summary>
    public static Example ExhaustiveInstance(AlgorithmicTask task, int size, long index)
    {
        switch (task)
        {
            case ArithmeticTask a:
                var range = BigInteger.Pow(a.Radix, size);
                return a.Encode(index / range, index % range, size, "exhaustive");
            case BitSequenceTask s:
                var bits = new int[size];
                for (int i = 0; i < size; i++) bits[i] = (int)((index >> i) & 1);
                return s.Encode(bits, "exhaustive");
            default:
                throw new NotSupportedException($"task '{task.Name}' has no exhaustive enumeration");
        }
    }
}

/// <summary>
/// One level: either <see cref="Multiple"/> of the training size or an absolute <see cref="Size"/>.
/// <see cref="Samples"/> maps a family to its sample count; the key "random" is the random family,
/// "hard" stands for each hard family, and "*" for every family not named otherwise.
/// </summary>
public sealed record SuiteLevel(string Name, double? Multiple, int? Size, IReadOnlyDictionary<string, int> Samples, bool Exhaustive)
{
    /// <summary>The largest multiple a suite file may give: beyond it no size fits in memory, or in an int.</summary>
    public const double MaxMultiple = 1_000_000;

    /// <summary>The count of a family this level names explicitly (0 if it does not): for opt-in families.</summary>
    public int NamedCountFor(string family) => Samples.TryGetValue(family, out int n) ? n : 0;

    public int CountFor(string family)
    {
        if (Samples.TryGetValue(family, out int n)) return n;
        if (family != AlgorithmicTask.Random && Samples.TryGetValue("hard", out n)) return n;
        return Samples.TryGetValue("*", out n) ? n : 0;
    }

    public static string DefaultName(double? multiple, int? size) =>
        multiple is { } m ? m.ToString("0.###", CultureInfo.InvariantCulture) + "x" : $"k{size}";
}

/// <summary>A level made concrete for one task: its size and (family, sample count) pairs.</summary>
public sealed record ResolvedLevel(string Name, int Size, double Multiple, bool Exhaustive, IReadOnlyList<(string Family, int Count)> Counts)
{
    public int TotalSamples => Counts.Sum(c => c.Count);
}

/// <summary>
/// A pinned input, e.g. the one that once broke a model. Arithmetic: <see cref="Operands"/> as decimal
/// expressions ("2^2000-1") or, with <see cref="Notation"/> = "task", as digits in the task's base written
/// most significant first. Sequence tasks: <see cref="Symbols"/> in input order ("0110").
/// </summary>
public sealed record SuiteCase(string Name, string? Task, IReadOnlyList<string>? Operands, string? Symbols, int? Size, string Notation)
{
    public Example Encode(AlgorithmicTask task)
    {
        switch (task)
        {
            case ArithmeticTask a when Operands is { Count: 2 }:
                var x = ParseOperand(a, Operands[0]);
                var y = ParseOperand(a, Operands[1]);
                if (x.Sign < 0 || y.Sign < 0) throw new FormatException($"case '{Name}': operands must not be negative");
                int need = Math.Max(Digits.FromBigInteger(x, a.Radix).Length, Digits.FromBigInteger(y, a.Radix).Length);
                int size = Size ?? need;
                if (size < need) throw new FormatException($"case '{Name}': operands need {need} digits, more than size {size}");
                return a.Encode(x, y, size, "case:" + Name);
            case BitSequenceTask s when Symbols is not null:
                var bits = Symbols.Select((c, i) => c switch
                {
                    '0' => 0,
                    '1' => 1,
                    _ => throw new FormatException($"case '{Name}': symbol '{c}' at position {i} is not a bit"),
                }).ToArray();
                return s.Encode(bits, "case:" + Name);
            default:
                throw new FormatException($"case '{Name}' does not fit task '{task.Name}': " +
                    (task is ArithmeticTask ? "it needs two operands" : "it needs symbols"));
        }
    }

    private BigInteger ParseOperand(ArithmeticTask task, string text)
    {
        if (Notation != "task") return Expression.Evaluate(text);
        var digits = new int[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            int d = text[text.Length - 1 - i] - '0';
            if (d < 0 || d >= task.Radix)
                throw new FormatException($"case '{Name}': '{text[text.Length - 1 - i]}' is not a base-{task.Radix} digit");
            digits[i] = d;
        }
        return Digits.ToBigInteger(digits, task.Radix);
    }
}
