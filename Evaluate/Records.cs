using System.Text.Json;
using System.Text.Json.Serialization;

namespace Toolchain.Evaluate;

/// <summary>
/// One failed example kept for the reports (failures.jsonl, index.html). <see cref="Input"/>, <see cref="Expected"/>
/// and <see cref="Got"/> are the symbols, capped: a sequence longer than 2 x <see cref="HeadTokens"/> tokens keeps
/// its first and last <see cref="HeadTokens"/> with "…(N more)…" between (<see cref="Truncated"/> is then true).
/// The windows are never cut: tokens [<see cref="WindowOffset"/>, first wrong + <see cref="WindowTokens"/>] of each
/// sequence, where <see cref="WindowOffset"/> = max(0, first wrong - <see cref="WindowTokens"/>).
/// <see cref="Reproduce"/> is the `toolchain sample` command that prints the example again (null for pinned cases,
/// which the suite file spells out, and for records of older runs).
/// </summary>
public sealed record FailureExample(string Level, string Family, int Index, int Size, int Length, int FirstWrong, int WrongSymbols,
    string Input, string Expected, string Got, bool Truncated, int WindowOffset, string? InputWindow, string? ExpectedWindow, string? GotWindow,
    string? Reproduce = null)
{
    /// <summary>Tokens kept at each end of a capped sequence.</summary>
    public const int HeadTokens = 100;

    /// <summary>Tokens kept either side of the first wrong position in the windows.</summary>
    public const int WindowTokens = 40;

    public static FailureExample Create(Toolchain.Suites.AlgorithmicTask task, string level, string family, int index, int size,
        int firstWrong, int wrongSymbols, int[] input, int[] expected, int[] got, string? suite = null)
    {
        int length = Math.Max(input.Length, Math.Max(expected.Length, got.Length));
        int pos = Math.Max(0, firstWrong);
        int offset = Math.Max(0, pos - WindowTokens);
        string Window(int[] tokens) => offset >= tokens.Length ? "" : task.Render(tokens.AsSpan(offset, Math.Min(tokens.Length, pos + WindowTokens + 1) - offset));
        return new FailureExample(level, family, index, size, length, firstWrong, wrongSymbols,
            Cap(task, input), Cap(task, expected), Cap(task, got), length > 2 * HeadTokens,
            offset, Window(input), Window(expected), Window(got),
            suite is null || family.StartsWith("case:", StringComparison.Ordinal) ? null : SampleCommand(task.Name, suite, level, family, index, size));
    }

    /// <summary>The `toolchain sample` command that prints this example again, exactly as eval graded it.</summary>
    public static string SampleCommand(string task, string suite, string level, string family, int index, int size) =>
        $"toolchain sample {task} -k {size} --suite {suite} --level {level} --family {family} --index {index} -n 1";

    /// <summary>The symbols of a sequence; longer than 2 x <see cref="HeadTokens"/>, its first and last
    /// <see cref="HeadTokens"/> around "…(N more)…".</summary>
    public static string Cap(Toolchain.Suites.AlgorithmicTask task, int[] tokens) =>
        tokens.Length <= 2 * HeadTokens
            ? task.Render(tokens)
            : task.Render(tokens.AsSpan(0, HeadTokens)) +
              $"…({(tokens.Length - 2 * HeadTokens).ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} more)…" +
              task.Render(tokens.AsSpan(tokens.Length - HeadTokens));
}

/// <summary>
/// The outcome of one completed work unit (examples [From, To) of one level and family, or one pinned case):
/// one line of units.jsonl. Reports are built from these alone, so a resumed or merged run gives the same
/// report as an uninterrupted one.
/// </summary>
public sealed record UnitRecord
{
    public required string Key { get; init; }
    public required string Level { get; init; }
    public required string Family { get; init; }
    public required int From { get; init; }
    public required int To { get; init; }
    public required int Size { get; init; }
    public required int Length { get; init; }
    public required int Samples { get; init; }
    public required int Exact { get; init; }
    public required long Symbols { get; init; }
    public required long SymbolsCorrect { get; init; }
    /// <summary>(example index, first wrong position) of the unit's failures, in index order, capped.</summary>
    public required List<int[]> FirstWrong { get; init; }
    public required List<FailureExample> Failures { get; init; }
    public required double Seconds { get; init; }
    /// <summary>The verdict on each example of the unit, one character per example in index order: '1' exactly right,
    /// '0' wrong (what verdicts.jsonl is made of, so it survives --resume and merge). Null in records of older
    /// versions and in units that were not graded.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Verdicts { get; init; }
    /// <summary>Why the unit was not graded (e.g. "out of memory at length 40,001 (batch 1)"; records of older runs
    /// start with "skipped: "); null when it ran.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Skipped { get; init; }
}

/// <summary>Metrics of one (level, family), or of a whole level ("all").</summary>
public sealed record FamilyResult
{
    public required string Family { get; init; }
    public required int Planned { get; init; }
    public required int Samples { get; init; }
    public required int Exact { get; init; }
    public required double SequenceAccuracy { get; init; }
    [System.Text.Json.Serialization.JsonPropertyName("wilson_lower_95")]
    public required double WilsonLower95 { get; init; }
    public required long Symbols { get; init; }
    public required long SymbolsCorrect { get; init; }
    public required double SymbolAccuracy { get; init; }
    /// <summary>[example index, first wrong position] of each failure, in index order (capped, see <see cref="FirstWrongTruncated"/>).</summary>
    public required List<int[]> FirstWrongPositions { get; init; }
    public required bool FirstWrongTruncated { get; init; }
}

public sealed record LevelResult
{
    public required string Name { get; init; }
    public required int Size { get; init; }
    public required int Length { get; init; }
    public required double Multiple { get; init; }
    public required bool Exhaustive { get; init; }
    /// <summary>complete, trimmed (fewer samples than the suite asks), skipped, or incomplete.</summary>
    public required string Status { get; init; }
    public string? Note { get; init; }
    public required List<FamilyResult> Families { get; init; }
    public FamilyResult? Total { get; init; }
}

public sealed record CaseResult(string Name, int Size, int Length, bool Exact, int FirstWrong, double SymbolAccuracy, string Status);

public sealed record BreakPointProbe(int Size, int Length, bool Exact, int Samples, int FirstWrong, double Seconds);

public sealed record BreakPointResult
{
    /// <summary>Largest size at which every probe sample was exactly right (0 when none was).</summary>
    public required int ExactUpTo { get; init; }
    /// <summary>Smallest size seen failing, or null when no failure was found.</summary>
    public int? FirstFailure { get; init; }
    /// <summary>True when the search pinned the break point (first failure = exact up to + 1, or a failure at the smallest size).</summary>
    public required bool Resolved { get; init; }
    public string? StoppedBy { get; init; }
    public required int SamplesPerProbe { get; init; }
    public required List<string> Families { get; init; }
    public required string Verdict { get; init; }
    public required List<BreakPointProbe> Probes { get; init; }
}

public sealed record ToolInfo(string Name, string Version, string? GitCommit);

/// <summary>The graded model; for an ensemble (eval --ensemble) the first member's fields, named after every
/// member, with a SHA-256 over the members' hashes and the members listed in <c>Ensemble</c>; for one file that joins
/// an ensemble (export --ensemble) its own fields, with the members its metadata lists in <c>Ensemble</c>.</summary>
public sealed record ModelSection(string File, string Sha256, long Bytes, string Task, string Arch, int TrainLength, string? Config, string? Source,
    bool Metadata, long IrVersion, long Opset, List<EnsembleMember>? Ensemble = null);

/// <summary>One model of an ensemble: its file, SHA-256, architecture and training configuration.</summary>
public sealed record EnsembleMember(string File, string Sha256, string Arch, string? Config);

public sealed record SuiteSection(string Name, string Hash, ulong Seed, List<string>? LevelFilter);

/// <summary>How the model ran. <see cref="LoopChunk"/> (steps per iteration of a chunked step Loop, `eval --loop-chunk`)
/// and <see cref="IoBinding"/> (`eval --io-binding`) are written only when used.</summary>
public sealed record RunSection(string Provider, string Device, int Threads, string GraphOptimization, long BatchTokens, string? Shard, List<string>? MergedFrom,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? LoopChunk = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? IoBinding = null);

public sealed record BudgetSection(double? Minutes, List<string> Trims);

public sealed record TimingEntry(string Level, int Length, double Seconds, int Examples, double ExamplesPerSecond, double TokenStepsPerSecond);

/// <summary>results.json, schema 1.</summary>
public sealed record Results
{
    public int Schema { get; init; } = 1;
    /// <summary>The version of the grading code that made these results (<see cref="ResultsCache.GradingVersion"/>);
    /// null in results written before the field existed, which version 1 made.</summary>
    public int? Grading { get; init; }
    public required ToolInfo Tool { get; init; }
    public required ModelSection Model { get; init; }
    public required SuiteSection Suite { get; init; }
    public required RunSection Run { get; init; }
    public required BudgetSection Budget { get; init; }
    public required List<LevelResult> Levels { get; init; }
    public required List<CaseResult> Cases { get; init; }
    public BreakPointResult? BreakPoint { get; init; }
    public required List<TimingEntry> Timing { get; init; }
}

public static class Json
{
    public static readonly JsonSerializerOptions Indented = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        IndentSize = 2,
        NewLine = "\n",
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static readonly JsonSerializerOptions Line = new(Indented) { WriteIndented = false };

    public static string Serialize<T>(T value, bool indented = true) => JsonSerializer.Serialize(value, indented ? Indented : Line);

    public static T Deserialize<T>(string text, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(text, Indented) ?? throw new EvaluationException($"{what} is empty (null)");
        }
        catch (JsonException e)
        {
            throw new EvaluationException($"{what} is not valid: {e.Message}");
        }
    }
}

/// <summary>Writes files whole or not at all: a temp file beside the target, then rename.</summary>

/// <summary>Sequence accuracy statistics.</summary>
public static class Stats
{
    /// <summary>Lower end of the 95% Wilson score interval for <paramref name="successes"/> of <paramref name="n"/>.</summary>
    public static double WilsonLower(int successes, int n, double z = 1.959963984540054)
    {
        if (n <= 0) return 0;
        double p = (double)successes / n, z2 = z * z;
        double centre = p + z2 / (2 * n);
        double margin = z * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
        return Math.Max(0, (centre - margin) / (1 + z2 / n));
    }
}
