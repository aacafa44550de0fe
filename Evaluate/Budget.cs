using System.Diagnostics;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

/// <summary>Seconds per example at a length: a timed probe scaled by length^exponent.</summary>
public sealed record CostModel(double SecondsPerUnit, double Exponent, bool ExponentFitted, int ProbeLength = 0)
{
    public double Seconds(int length, long samples) => SecondsPerUnit * samples * Math.Pow(Math.Max(1, length), Exponent);

    /// <summary>Times a few random examples (after a warm-up run), doubling the size until one timing takes
    /// <paramref name="targetSeconds"/> or the next size would pass <paramref name="maxLength"/>, and scales from
    /// the longest probe: at tiny sizes a run is mostly fixed overhead, and extrapolating that as length^2
    /// overestimated a 2,000-token level of the zoo's dngpu-copy 15x (19 minutes for what took 80 seconds).
    /// With no known exponent, fits it from the last two probes (clamped to [1, 3]).</summary>
    public static CostModel Probe(OnnxRunner runner, AlgorithmicTask task, int size, double? exponent, ulong seed, int samples = 4,
        int maxLength = int.MaxValue, double targetSeconds = 0.25)
    {
        size = Math.Max(task.MinSize, size);
        var points = new List<(int Length, double Seconds)>();
        while (true)
        {
            points.Add((task.LengthForSize(size), Time(runner, task, size, seed, samples)));
            bool canGrow = size <= int.MaxValue / 4 && task.LengthForSize(2 * size) <= maxLength;
            bool needSecond = exponent is null && points.Count < 2;
            if (!canGrow || (points[^1].Seconds >= targetSeconds && !needSecond)) break;
            size *= 2;
        }
        double p = exponent ?? 1;
        bool fitted = false;
        if (exponent is null && points.Count >= 2)
        {
            var (l1, t1) = points[^2];
            var (l2, t2) = points[^1];
            if (t1 > 0 && t2 > 0) p = Math.Clamp(Math.Log(t2 / t1) / Math.Log((double)l2 / l1), 1, 3);
            fitted = true;
        }
        var (length, seconds) = points[^1];
        return new CostModel(Math.Max(seconds, 1e-7) / samples / Math.Pow(length, p), p, fitted, length);
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
        (long)length * StaticBytesPerToken(vocab, activationBytesPerToken);

    public static long StaticBytesPerToken(int vocab, long activationBytesPerToken) => vocab * 4L + 8 + 4 + activationBytesPerToken;

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

    /// <summary>Whether one example fits in <see cref="Headroom"/> of the available memory. There is no slack for
    /// estimates that may err high (a tiny transformer at length 12,001: 3.7 GiB estimated, 2.3 GiB used): that
    /// costs a skipped level, while erring low costs the process, because Linux overcommits memory, so ONNX
    /// Runtime never sees an allocation fail and the kernel kills the whole process instead (measured: the zoo's
    /// transformer at length 20,000, batch 2, killed at 18.6 GB resident when probed estimates had a slack of 2).</summary>
    public static bool Fits(long bytesPerExample, long available) => bytesPerExample <= Headroom * (double)available;

    /// <summary>Why something is too big to run: what it needs against the limit, <see cref="Headroom"/> of
    /// the available memory (saying only "17 GiB needed, 19 GiB available" reads as a contradiction).</summary>
    public static string TooBig(string what, long need, string how, long available) =>
        $"{what} needs about {Gib(need)}{how}, over the limit of {Headroom:0%} of the {Gib(available)} available " +
        $"({Gib((long)(Headroom * available))})";

    public static string Gib(long bytes) => $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB";

    public static string Mib(long bytes) => $"{bytes / (1024.0 * 1024):0.#} MiB";
}

/// <summary>This process's resident memory on Linux (/proc/self/status), and its peak, which can be reset.</summary>
public static class ProcessMemory
{
    /// <summary>A field of /proc/self/status in bytes (e.g. "VmRSS:", "VmHWM:"), or null where there is none.</summary>
    public static long? Read(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    var parts = line[field.Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                    return parts.Length >= 1 && long.TryParse(parts[0], out long kb) ? kb * 1024 : null;
                }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Hands the C heap's free memory back to the system (glibc's malloc_trim), so that memory a run
    /// allocates shows as growth of the resident size instead of reusing pages that earlier work freed;
    /// false where there is no glibc.</summary>
    public static bool Trim()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            malloc_trim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    /// <summary>Resets the peak resident size (VmHWM) to the current one; false where that is not possible.</summary>
    public static bool ResetPeak()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}

/// <summary>
/// Measures the peak memory of running one example, as growth of this process's resident size (Linux:
/// VmRSS, and VmHWM reset through /proc/self/clear_refs): the peak during the run above the size just
/// before it, plus what earlier measured runs kept (the session's memory pool keeps what a run took, so a
/// longer run only grows it by the difference). Each run starts from a trimmed C heap, so freed memory that
/// earlier work left resident does not hide growth. Null where it cannot measure: not Linux, no permission,
/// or a GPU provider, whose memory the resident size does not show.
/// </summary>
public sealed class PeakMeter(OnnxRunner runner)
{
    private long _kept;

    public long? Measure(int[] input)
    {
        if (runner.PeakBytesOverride is { } fake)
        {
            runner.Predict([input]);
            return fake(input.Length);
        }
        if (runner.Provider != "cpu") return null;
        ProcessMemory.Trim();
        if (ProcessMemory.Read("VmRSS:") is not { } before || !ProcessMemory.ResetPeak()) return null;
        runner.Predict([input]);
        if (ProcessMemory.Read("VmHWM:") is not { } peak) return null;
        ProcessMemory.Trim();
        long after = ProcessMemory.Read("VmRSS:") ?? before;
        long growth = _kept + Math.Max(0, peak - before);
        _kept += Math.Max(0, after - before);
        return growth;
    }
}

/// <summary>
/// Memory one example needs at a length. Without a probe: a static guess linear in the length (logits,
/// tokens, predictions and width-based activations). With a probe: the peak memory measured while running
/// one example at two lengths, extrapolated with the growth exponent fitted between them (an attention
/// model's scores grow as length^2), and never below the static guess.
/// </summary>
public sealed record MemoryModel(long StaticBytesPerToken, long? ProbeBytes = null, int ProbeLength = 0, double Exponent = 1, int? PreviousLength = null)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Probed => ProbeBytes is not null;

    public long BytesPerExample(int length)
    {
        double linear = (double)Math.Max(1, length) * StaticBytesPerToken;
        double bytes = ProbeBytes is { } b ? Math.Max(linear, b * Math.Pow((double)length / ProbeLength, Exponent)) : linear;
        return (long)Math.Min(bytes, long.MaxValue / 2.0);
    }

    /// <summary>Most examples of a length that fit together in the memory the run may use (at least 1).</summary>
    public int MaxBatch(int length, long available) =>
        (int)Math.Clamp(MemoryGuard.Headroom * available / Math.Max(1, BytesPerExample(length)), 1, int.MaxValue);

    public bool Fits(int length, long available) => MemoryGuard.Fits(BytesPerExample(length), available);

    /// <summary>How the estimate was made, for skip notes; null for the static guess.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? Basis => Probed ? $"memory grows ~ length^{Exponent.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)}, probed at lengths {PreviousLength:N0} and {ProbeLength:N0}" : null;

    /// <summary>Least peak at the shorter of the two fitted lengths. Smaller allocations may reuse memory the
    /// process freed earlier and kept resident (the C heap keeps blocks under 32 MiB), so they can show less
    /// growth than they are, and an exponent fitted from them would come out too high.</summary>
    public const long Floor = 32L << 20;

    /// <summary>Peak at the longer of the two fitted lengths at which probing stops.</summary>
    public const long Enough = 64L << 20;

    /// <summary>Largest fitted exponent: attention's 2 and some slack. A higher fit is taken for noise (the
    /// shorter probe's memory partly hidden), and an estimate that errs high would skip levels that fit.</summary>
    public const double MaxExponent = 2.5;

    /// <summary>
    /// Probes memory growth: runs one example at the start size, then at twice the size, again and again
    /// (the last step may be shorter, up to <paramref name="maxLength"/>; each length twice, keeping the
    /// smaller peak, so a passing allocation elsewhere does not count), until the last two peaks are at least
    /// <see cref="Floor"/> and <see cref="Enough"/>, the next two runs would take over a second (run time taken
    /// to grow as length^<paramref name="timeExponent"/>), the next length would pass
    /// <paramref name="maxLength"/> or, extrapolated, a quarter of <paramref name="available"/>. The exponent
    /// comes from the last two lengths (clamped to [1, <see cref="MaxExponent"/>]) when the shorter one's peak
    /// is at least <see cref="Floor"/> and the longer one's is larger; otherwise the static guess stays (the
    /// estimate errs low, never skipping a level on noise). Call it before other runs of the session: its
    /// memory pool keeps what earlier, longer runs took, which would hide growth.
    /// </summary>
    public static MemoryModel Probe(OnnxRunner runner, AlgorithmicTask task, int startSize, int maxLength, long staticBytesPerToken, long available, ulong seed, Action<string>? log = null, double timeExponent = 2, double maxProbeSeconds = 1)
    {
        var fallback = new MemoryModel(staticBytesPerToken);
        int size = Math.Max(task.MinSize, startSize);
        int[] Input(int s) => task.Generate(s, AlgorithmicTask.Random, Rng.For(seed, task.Name, "memory-probe", s, 0)).Input;
        try
        {
            runner.Predict([Input(size)]); // warm-up: the first run's one-off allocations are not growth
        }
        catch (ModelOutOfMemoryException) { return fallback; }
        var meter = new PeakMeter(runner);
        var points = new List<(int Length, long Bytes)>();
        string? stop = null;
        while (true)
        {
            int length = task.LengthForSize(size);
            var input = Input(size);
            long? peak = null;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                for (int rep = 0; rep < 2; rep++)
                {
                    long? m = meter.Measure(input);
                    if (m is null) return fallback; // nothing to measure with
                    peak = Math.Min(peak ?? long.MaxValue, m.Value);
                }
            }
            catch (ModelOutOfMemoryException x)
            {
                stop = x.Reason;
                break;
            }
            double seconds = sw.Elapsed.TotalSeconds / 2;
            points.Add((length, peak!.Value));
            if (points.Count >= 2 && points[^2].Bytes >= Floor && peak >= Enough) break;
            // twice the size, or as far as maxLength allows
            int nextSize = size > int.MaxValue / 4 || task.LengthForSize(2 * size) > maxLength ? Math.Max(task.MinSize, task.SizeForLength(maxLength)) : 2 * size;
            int nextLength = task.LengthForSize(nextSize);
            if (nextLength < 1.25 * length || nextLength > maxLength) { stop = $"length {maxLength:N0} reached"; break; }
            double growth = (double)nextLength / length;
            if (2 * seconds * Math.Pow(growth, timeExponent) > maxProbeSeconds) { stop = "time"; break; }
            if (peak * Math.Pow(growth, points.Count >= 2 && Fit(points) is { } p ? p : MaxExponent) > available / 4.0) { stop = "memory"; break; }
            size = nextSize;
        }
        // Peaks must reach the floor to be fitted, except when the probe stopped because the next length would not
        // fit: then the linear guess would let long levels start with batches the kernel kills (Linux overcommits),
        // so small peaks are fitted anyway; they tend to err high, which costs a skipped level, not the process.
        bool memoryBound = stop is not null && stop != "time" && !stop.StartsWith("length", StringComparison.Ordinal);
        double? exponent = points.Count < 2 ? null : Fit(points) ?? (memoryBound ? Fit(points, SmallFloor) : null);
        if (exponent is null)
        {
            log?.Invoke(points.Count == 0
                ? $"memory: probe measured nothing ({stop}); estimate linear in the length"
                : $"memory: probe at lengths {string.Join(", ", points.Select(x => x.Length.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))} " +
                  $"peaks at {string.Join(", ", points.Select(x => MemoryGuard.Mib(x.Bytes)))}: too little to fit growth (stopped: {stop}); estimate linear in the length");
            return fallback;
        }
        var (l1, b1) = points[^2];
        var (l2, b2) = points[^1];
        string small = b1 < Floor ? $" (stopped: {stop}; small peaks, the estimate may err high)" : "";
        log?.Invoke($"memory: probe at lengths {l1:N0} and {l2:N0} peaks at {MemoryGuard.Mib(b1)} and {MemoryGuard.Mib(b2)} per example, memory ~ length^{exponent.Value:0.##}{small}");
        return new MemoryModel(staticBytesPerToken, b2, l2, exponent.Value, l1);
    }

    /// <summary>Least peak at the shorter length for a fit made only because memory stopped the probe.</summary>
    public const long SmallFloor = 4L << 20;

    private static double? Fit(List<(int Length, long Bytes)> points, long floor = Floor)
    {
        var (l1, b1) = points[^2];
        var (l2, b2) = points[^1];
        if (b1 < floor || b2 <= b1 || l2 <= l1) return null;
        return Math.Clamp(Math.Log((double)b2 / b1) / Math.Log((double)l2 / l1), 1, MaxExponent);
    }
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
        long availableBytes,
        string? memoryBasis = null)
    {
        string how = memoryBasis is null ? "" : $" ({memoryBasis})";
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
                string note = MemoryGuard.TooBig($"one example at length {length:N0}", need, how, availableBytes);
                trims.Add($"level {level.Name}: skipped: {note}");
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
                string note = $"needs about {Duration(level.Exhaustive ? full : one)}{(level.Exhaustive ? "" : " even at one sample per family")}, {Duration(Math.Max(0, left))} of the budget left";
                trims.Add($"level {level.Name}: skipped: {note}");
                plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, [], "skipped", note));
                continue;
            }
            double f = left / full;
            var run = planned.Select(c => new FamilyCount(c.Family, Math.Max(1, (int)Math.Floor(c.Count * f)))).ToList();
            left -= estimateSeconds(length, run.Sum(c => c.Count));
            string trimNote = $"{run.Sum(c => c.Count)} of {level.TotalSamples} samples (" +
                string.Join(", ", run.Zip(planned).Where(z => z.First.Count != z.Second.Count).Select(z => $"{z.First.Family} {z.First.Count}/{z.Second.Count}")) +
                $"): the whole level needs about {Duration(full)}";
            trims.Add($"level {level.Name}: trimmed to {trimNote}");
            plans.Add(new LevelPlan(level.Name, level.Size, length, level.Multiple, level.Exhaustive, planned, run, "trimmed", trimNote));
        }
        var casePlans = new List<CasePlan>();
        foreach (var (name, size, length) in cases)
        {
            long need = bytesPerExample(length);
            string? note = null;
            if (!MemoryGuard.Fits(need, availableBytes))
                note = MemoryGuard.TooBig($"length {length:N0}", need, how, availableBytes);
            else if (estimateSeconds is not null && budgetSeconds is not null)
            {
                double t = estimateSeconds(length, 1);
                if (t > left) note = $"needs about {Duration(t)}, {Duration(Math.Max(0, left))} of the budget left";
                else left -= t;
            }
            if (note is not null) trims.Add($"case {name}: skipped: {note}");
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
