using System.Globalization;
using System.Text;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

/// <summary>One line of verdicts.jsonl: the verdicts on examples From, From + 1, ... of one graded unit, one
/// character each ('1' exactly right, '0' wrong). A pinned case is one line of level "cases", family "case:NAME".</summary>
public sealed record VerdictLine(string Level, string Family, int From, string Verdicts);

/// <summary>How two verdict files compare, example by example, over the examples both graded.</summary>
public sealed record VerdictComparison(int Compared, int Differ, int OnlyA, int OnlyB, IReadOnlyList<string> FirstDifferences)
{
    /// <summary>The check passes when both files graded some example in common and agree on every one.</summary>
    public bool Same => Compared > 0 && Differ == 0;

    /// <summary>One line: how many examples were compared, how many differ (the first few named), and how many only
    /// one file graded (e.g. a budget trimmed the two runs differently).</summary>
    public string Describe()
    {
        static string N(int v) => v.ToString("N0", CultureInfo.InvariantCulture);
        var sb = new StringBuilder($"verdicts: {N(Compared)} examples in both files; {N(Differ)} differ");
        if (Differ > 0) sb.Append($" ({string.Join(", ", FirstDifferences)}{(Differ > FirstDifferences.Count ? ", ..." : "")})");
        if (OnlyA > 0 || OnlyB > 0) sb.Append($"; {N(OnlyA)} only in A, {N(OnlyB)} only in B (not compared)");
        if (Compared == 0) sb.Append("; nothing to compare: the two runs graded no example in common");
        return sb.ToString();
    }
}

/// <summary>
/// verdicts.jsonl (`eval --verdicts`): the verdict on every graded example, one line per graded unit, sorted by
/// level (in suite order, pinned cases last), family and first index. failures.jsonl keeps only the first failures
/// of each family; this file lets two runs (two providers, two machines, a resumed or merged run) be compared
/// example for example, with `toolchain verdicts-diff A B` or, when both graded the same units, `cmp`. It is made
/// from the unit records alone, so resumed and merged runs write the file an uninterrupted run writes.
/// </summary>
public static class VerdictFile
{
    public const string FileName = "verdicts.jsonl";

    /// <summary>The lines of a run's graded units, sorted; units that were not graded (out of memory) have none.</summary>
    public static List<VerdictLine> Lines(RunPlan layout, IEnumerable<UnitRecord> records, string unitsPath)
    {
        var graded = records.Where(r => r.Skipped is null).ToList();
        var old = graded.FirstOrDefault(r => r.Verdicts is null);
        if (old is not null)
            throw new EvaluationException($"unit {old.Key} in '{unitsPath}' was recorded without per-example verdicts (by an older toolchain); " +
                "--verdicts needs a run made by this version: run it again into a new --out");
        var order = layout.Levels.Select(l => l.Name).ToList();
        return graded
            .OrderBy(r => r.Level == "cases" ? int.MaxValue : order.IndexOf(r.Level) is int i && i >= 0 ? i : int.MaxValue - 1)
            .ThenBy(r => r.Family, StringComparer.Ordinal)
            .ThenBy(r => r.From)
            .Select(r => new VerdictLine(r.Level, r.Family, r.From, r.Verdicts!))
            .ToList();
    }

    /// <summary>Writes DIR/verdicts.jsonl atomically.</summary>
    public static void Write(string dir, RunPlan layout, IEnumerable<UnitRecord> records, string unitsPath) =>
        AtomicFile.Write(Path.Combine(dir, FileName),
            string.Concat(Lines(layout, records, unitsPath).Select(l => Json.Serialize(l, indented: false) + "\n")));

    /// <summary>Every example's verdict in a file, by (level, family, index). A missing or malformed file is an
    /// <see cref="EvaluationException"/> naming it.</summary>
    public static Dictionary<(string Level, string Family, int Index), bool> Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName); // an eval folder names its verdicts file
        if (!File.Exists(path))
            throw new EvaluationException($"'{path}' does not exist; write it with `toolchain eval MODEL --verdicts --out DIR` (DIR/{FileName})");
        var verdicts = new Dictionary<(string, string, int), bool>();
        int lineNo = 0;
        foreach (var text in File.ReadLines(path))
        {
            lineNo++;
            if (text.Length == 0) continue;
            var line = Json.Deserialize<VerdictLine>(text, $"'{path}', line {lineNo}");
            if (line.Level is null || line.Family is null || line.Verdicts is null || line.From < 0 || line.Verdicts.Any(c => c is not ('0' or '1')))
                throw new EvaluationException($"'{path}', line {lineNo} is not a verdicts line (level, family, from >= 0, verdicts of 0 and 1); " +
                    $"pass a {FileName} written by `toolchain eval --verdicts`");
            for (int i = 0; i < line.Verdicts.Length; i++)
                if (!verdicts.TryAdd((line.Level, line.Family, line.From + i), line.Verdicts[i] == '1'))
                    throw new EvaluationException($"'{path}', line {lineNo}: example {line.Level}/{line.Family}/{line.From + i} is graded twice; " +
                        $"pass a {FileName} written by `toolchain eval --verdicts`");
        }
        return verdicts;
    }

    /// <summary>Compares two files example by example over the examples both graded; names the first
    /// <paramref name="show"/> differences (level/family/index, and A's and B's verdicts).</summary>
    public static VerdictComparison Compare(string a, string b, int show = 5)
    {
        var va = Load(a);
        var vb = Load(b);
        int compared = 0, onlyA = 0;
        var differ = new List<(string Level, string Family, int Index, bool A)>();
        foreach (var (key, verdict) in va)
        {
            if (!vb.TryGetValue(key, out bool other)) { onlyA++; continue; }
            compared++;
            if (other != verdict) differ.Add((key.Level, key.Family, key.Index, verdict));
        }
        int onlyB = vb.Count - compared;
        var first = differ.OrderBy(d => d.Level, StringComparer.Ordinal).ThenBy(d => d.Family, StringComparer.Ordinal).ThenBy(d => d.Index)
            .Take(show).Select(d => $"{d.Level}/{d.Family}/{d.Index}: A {(d.A ? "right" : "wrong")}, B {(d.A ? "wrong" : "right")}").ToList();
        return new VerdictComparison(compared, differ.Count, onlyA, onlyB, first);
    }
}
