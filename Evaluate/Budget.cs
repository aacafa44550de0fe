using System.Diagnostics;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

/// <summary>Seconds per example at a length: a timed probe scaled by length^exponent.</summary>
public sealed record CostModel(double SecondsPerUnit, double Exponent, bool ExponentFitted)
{
    public double Seconds(int length, long samples) => SecondsPerUnit * samples * Math.Pow(Math.Max(1, length), Exponent);

    /// <summary>Times a few random examples at a small size (after a warm-up run); with no known exponent,
    /// fits it from a second probe at four times the size (clamped to [1, 3]).</summary>
    public static CostModel Probe(OnnxRunner runner, AlgorithmicTask task, int size, double? exponent, ulong seed, int samples = 4)
    {
        size = Math.Max(task.MinSize, size);
        double t1 = Time(runner, task, size, seed, samples);
        int l1 = task.LengthForSize(size);
        double p = exponent ?? 1;
        bool fitted = false;
        if (exponent is null)
        {
            int size2 = size * 4;
            double t2 = Time(runner, task, size2, seed, samples);
            int l2 = task.LengthForSize(size2);
            if (t1 > 0 && t2 > 0) p = Math.Clamp(Math.Log(t2 / t1) / Math.Log((double)l2 / l1), 1, 3);
            fitted = true;
        }
        return new CostModel(Math.Max(t1, 1e-7) / samples / Math.Pow(l1, p), p, fitted);
    }

    private static double Time(OnnxRunner runner, AlgorithmicTask task, int size, ulong seed, int samples)
    {
        var inputs = Enumerable.Range(0, samples)
            .Select(i => task.Generate(size, AlgorithmicTask.Random, Rng.For(seed, task.Name, "probe", size, i)).Input).ToList();
        runner.Predict(inputs); // warm-up: first run allocates and optimises
        var sw = Stopwatch.StartNew();
        runner.Predict(inputs);
        return sw.Elapsed.TotalSeconds;
    }
}

/// <summary>Memory: what one example at a length needs, and what the machine has.</summary>
public static class MemoryGuard
{
    /// <summary>Logits (length x vocab x 4 bytes), tokens and predictions, and the architecture's activations.</summary>
    public static long BytesPerExample(int length, int vocab, long activationBytesPerToken) =>
        (long)length * (vocab * 4L + 8 + 4 + activationBytesPerToken);

    /// <summary>MemAvailable from /proc/meminfo where there is one, else the GC's view of available memory.</summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (parts.Length >= 2 && long.TryParse(parts[1], out long kb)) return kb * 1024;
                }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var gc = GC.GetGCMemoryInfo();
        return Math.Max(0, gc.TotalAvailableMemoryBytes - Environment.WorkingSet);
    }

    /// <summary>The share of available memory one example may take.</summary>
    public const double Headroom = 0.8;

    public static bool Fits(long bytesPerExample, long available) => bytesPerExample <= Headroom * available;

    public static string Gib(long bytes) => $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB";
}

/// <summary>
/// Budget planning: estimates each level's time and memory and decides, level by level in suite order,
/// whether it runs whole, trimmed (fewer samples per family, at least one) or not at all. Exhaustive levels
/// and pinned cases are never trimmed (a partial enumeration proves nothing): they run whole or are skipped.
/// </summary>
public static class BudgetPlanner
{
    public static (List<LevelPlan> Levels, List<CasePlan> Cases, List<string> Trims) Plan(
        AlgorithmicTask task,
        IReadOnlyList<ResolvedLevel> levels,
        IReadOnlyList<(string Name, int Size, int Length)> cases,
        Func<int, long, double>? estimateSeconds,
        double? budgetSeconds,
        Func<int, long> bytesPerExample,
        long availableBytes)
    {
        var trims = new List<string>();
        var plans = new List<LevelPlan>();
        double left = budgetSeconds ?? double.PositiveInfinity;
        foreach (var level in levels)
        {
            int length = task.LengthForSize(level.Size);
            var planned = level.Counts.Select(c => new FamilyCount(c.Family, c.Count)).ToList();
            long need = bytesPerExample(length);
            if (!MemoryGuard.Fits(need, availableBytes))
            {
                string note = $"skipped: one example at length {length:N0} needs about {MemoryGuard.Gib(need)}, {MemoryGuard.Gib(availableBytes)} available";
                trims.Add($"level {level.Name}: {note}");
                plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, [], "skipped", note));
                continue;
            }
            if (estimateSeconds is null || budgetSeconds is null)
            {
                plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, planned, "full", null));
                continue;
            }
            double full = estimateSeconds(length, level.TotalSamples);
            if (full <= left)
            {
                left -= full;
                plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, planned, "full", null));
                continue;
            }
            double one = estimateSeconds(length, planned.Count);
            if (level.Exhaustive || one > left)
            {
                string note = $"skipped: needs about {Duration(level.Exhaustive ? full : one)}{(level.Exhaustive ? "" : " even at one sample per family")}, {Duration(Math.Max(0, left))} of the budget left";
                trims.Add($"level {level.Name}: {note}");
                plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, [], "skipped", note));
                continue;
            }
            double f = left / full;
            var run = planned.Select(c => new FamilyCount(c.Family, Math.Max(1, (int)Math.Floor(c.Count * f)))).ToList();
            left -= estimateSeconds(length, run.Sum(c => c.Count));
            string trimNote = $"trimmed to {run.Sum(c => c.Count)} of {level.TotalSamples} samples (" +
                string.Join(", ", run.Zip(planned).Where(z => z.First.Count != z.Second.Count).Select(z => $"{z.First.Family} {z.First.Count}/{z.Second.Count}")) +
                $"): the whole level needs about {Duration(full)}";
            trims.Add($"level {level.Name}: {trimNote}");
            plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, run, "trimmed", trimNote));
        }
        var casePlans = new List<CasePlan>();
        foreach (var (name, size, length) in cases)
        {
            long need = bytesPerExample(length);
            string? note = null;
            if (!MemoryGuard.Fits(need, availableBytes))
                note = $"skipped: length {length:N0} needs about {MemoryGuard.Gib(need)}, {MemoryGuard.Gib(availableBytes)} available";
            else if (estimateSeconds is not null && budgetSeconds is not null)
            {
                double t = estimateSeconds(length, 1);
                if (t > left) note = $"skipped: needs about {Duration(t)}, {Duration(Math.Max(0, left))} of the budget left";
                else left -= t;
            }
            if (note is not null) trims.Add($"case {name}: {note}");
            casePlans.Add(new CasePlan(name, size, length, note is null ? "full" : "skipped", note));
        }
        return (plans, casePlans, trims);
    }

    public static string Duration(double seconds)
    {
        if (double.IsInfinity(seconds) || seconds > 1e9) return "forever";
        if (seconds < 1) return $"{seconds:0.###} s";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}" : $"{t.Minutes}:{t.Seconds:00}";
    }
}
