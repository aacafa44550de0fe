using System.Globalization;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

/// <summary>A partition i of N of the work units (i from 0).</summary>
public sealed record Shard(int Index, int Count)
{
    public static readonly Shard Whole = new(0, 1);

    public bool IsWhole => Count == 1;

    public override string ToString() => $"{Index}/{Count}";

    /// <summary>Parses "i/N" (0 &lt;= i &lt; N).</summary>
    public static Shard Parse(string text, string source = "--shard")
    {
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            || n < 1 || i >= n)
            throw new EvaluationException($"{source} '{text}' is not a shard: write i/N with 0 <= i < N, e.g. 0/4");
        return new Shard(i, n);
    }

    /// <summary>The shard of a job-array task: Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX with
    /// JOB_COMPLETION_COUNT) or Slurm arrays (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of
    /// SLURM_ARRAY_TASK_COUNT); null when neither is set.</summary>
    public static Shard? FromEnvironment(Func<string, string?> env)
    {
        if (env("JOB_COMPLETION_INDEX") is { Length: > 0 } k8sIndex)
        {
            string count = env("JOB_COMPLETION_COUNT") ?? throw new EvaluationException(
                "JOB_COMPLETION_INDEX is set but JOB_COMPLETION_COUNT is not: set it to the Job's completions (see README, Evaluate)");
            return Parse($"{k8sIndex}/{count}", "JOB_COMPLETION_INDEX/JOB_COMPLETION_COUNT");
        }
        if (env("SLURM_ARRAY_TASK_ID") is { Length: > 0 } slurmId)
        {
            string count = env("SLURM_ARRAY_TASK_COUNT") ?? throw new EvaluationException("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
            if (!int.TryParse(slurmId, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new EvaluationException($"SLURM_ARRAY_TASK_ID '{slurmId}' is not an integer");
            int min = int.TryParse(env("SLURM_ARRAY_TASK_MIN"), NumberStyles.None, CultureInfo.InvariantCulture, out int m) ? m : 0;
            return Parse($"{id - min}/{count}", "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT");
        }
        return null;
    }
}

public sealed record FamilyCount(string Family, int Count);

/// <summary>One level as this run will do it: the suite's counts, the counts to run (fewer when the
/// budget trims), and whether it is skipped and why.</summary>
public sealed record LevelPlan(string Name, int Size, int Length, double Multiple, bool Exhaustive,
    List<FamilyCount> Planned, List<FamilyCount> Run, string Status, string? Note);

public sealed record CasePlan(string Name, int Size, int Length, string Status, string? Note);

/// <summary>plan.json: the identity of a run and its decisions, so resumed and merged runs use the same units.</summary>
public sealed record RunPlan
{
    public int Schema { get; init; } = 1;
    public required string ModelSha256 { get; init; }
    public required string Task { get; init; }
    public required int TrainLength { get; init; }
    public required string SuiteName { get; init; }
    public required string SuiteHash { get; init; }
    public required List<string>? LevelFilter { get; init; }
    public required string Shard { get; init; }
    public required double? BudgetMinutes { get; init; }
    /// <summary>Cost growth exponent used to cut and share out units (from the architecture, never timed,
    /// so every shard cuts the same units).</summary>
    public required double UnitExponent { get; init; }
    public required List<LevelPlan> Levels { get; init; }
    public required List<CasePlan> Cases { get; init; }
    public required List<string> Trims { get; init; }
    public required bool BreakPoint { get; init; }
    /// <summary>The memory estimate the plan was made with (absent in plans of older versions: the static guess).</summary>
    public MemoryModel? Memory { get; init; }
}

/// <summary>A unit of work: examples [From, To) of one level and family, or one pinned case.</summary>
public sealed record WorkUnit(string Key, string Level, string Family, int From, int To, int Size, int Length, double Cost, bool IsCase);

public static class WorkPlanner
{
    /// <summary>Most examples in one unit at a length: about 2^20 token-units of work (length^p each).</summary>
    public static int UnitCap(int length, double exponent) =>
        (int)Math.Clamp(Math.Floor((1 << 20) * Math.Pow(64, exponent - 1) / Math.Pow(length, exponent)), 1, 1 << 20);

    /// <summary>Every unit of a plan, in run order (levels in suite order, families in task order, then cases).</summary>
    public static List<WorkUnit> Units(RunPlan plan)
    {
        var units = new List<WorkUnit>();
        double p = plan.UnitExponent;
        foreach (var level in plan.Levels)
        {
            if (level.Status == "skipped") continue;
            int cap = UnitCap(level.Length, p);
            foreach (var fc in level.Run)
                for (int from = 0; from < fc.Count; from += cap)
                {
                    int to = Math.Min(fc.Count, from + cap);
                    units.Add(new WorkUnit($"{level.Name}/{fc.Family}/{from}-{to}", level.Name, fc.Family, from, to, level.Size, level.Length,
                        (to - from) * Math.Pow(level.Length, p), false));
                }
        }
        foreach (var c in plan.Cases)
            if (c.Status != "skipped")
                units.Add(new WorkUnit($"case/{c.Name}", "cases", "case:" + c.Name, 0, 1, c.Size, c.Length, Math.Pow(c.Length, p), true));
        return units;
    }

    /// <summary>The units of one shard: longest-processing-time-first assignment on the deterministic cost
    /// (samples x length^p), ties by run order, so shards get similar work and every shard agrees.</summary>
    public static List<WorkUnit> ForShard(List<WorkUnit> units, Shard shard)
    {
        if (shard.IsWhole) return units;
        var load = new double[shard.Count];
        var owner = new int[units.Count];
        foreach (int i in Enumerable.Range(0, units.Count).OrderByDescending(i => units[i].Cost).ThenBy(i => i))
        {
            int best = 0;
            for (int s = 1; s < shard.Count; s++) if (load[s] < load[best]) best = s;
            owner[i] = best;
            load[best] += units[i].Cost;
        }
        return units.Where((_, i) => owner[i] == shard.Index).ToList();
    }
}
