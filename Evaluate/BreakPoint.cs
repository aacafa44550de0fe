using System.Diagnostics;
using System.Globalization;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

public sealed record BreakPointOptions
{
    /// <summary>Random samples per probed size (each hard family adds one more).</summary>
    public int Samples { get; init; } = 8;
    public double Seconds { get; init; } = 300;
    /// <summary>Largest size to try; null = 10,000 x the training size, bounded by memory.</summary>
    public int? MaxSize { get; init; }
    public ulong Seed { get; init; } = 1;
}

/// <summary>
/// The break point: the longest size at which every probe sample is exactly right, found by doubling the
/// size from the training size until a probe fails, then bisecting between the last exact and the first
/// failing size. Each probe is a fixed set of examples (random ones plus one of each hard family), so a
/// rerun probes the same inputs. Stops early at the time budget or the memory bound and says so.
/// </summary>
public static class BreakPointSearch
{
    public static BreakPointResult Run(ModelInfo model, OnnxRunner runner, BreakPointOptions o, long availableBytes, Action<string>? log = null, CancellationToken cancel = default,
        MemoryModel? memory = null)
    {
        var task = model.Task;
        var families = task.Families.Except(task.OptInFamilies).ToList();
        memory ??= new MemoryModel(MemoryGuard.StaticBytesPerToken(task.Vocab.Count, model.ActivationBytesPerToken));
        int maxLength = task.LengthForSize(task.MinSize);
        while (maxLength < AlgorithmicTask.MaxLength / 2 && memory.Fits(maxLength * 2, availableBytes))
            maxLength *= 2;
        int cap = Math.Max(task.MinSize, Math.Min(o.MaxSize ?? (int)Math.Min(int.MaxValue / 4, 10_000L * model.TrainLength), task.SizeForLength(maxLength)));
        var probes = new List<BreakPointProbe>();
        var clock = Stopwatch.StartNew();
        double p = model.CostExponent ?? 2;
        double? secondsPerUnit = null;
        string? stopped = null;

        bool? Probe(int size)
        {
            cancel.ThrowIfCancellationRequested();
            int length = task.LengthForSize(size);
            int n = o.Samples + families.Count - 1;
            if (secondsPerUnit is { } spu)
            {
                double est = spu * n * Math.Pow(length, p);
                if (clock.Elapsed.TotalSeconds + est > o.Seconds) { stopped = $"time budget ({BudgetPlanner.Duration(o.Seconds)}; size {size:N0} would take about {BudgetPlanner.Duration(est)})"; return null; }
            }
            var examples = new List<Example>();
            for (int i = 0; i < o.Samples; i++)
                examples.Add(task.Generate(size, AlgorithmicTask.Random, Rng.For(o.Seed, task.Name, "break-point", size, AlgorithmicTask.Random, i)));
            foreach (var f in families.Skip(1))
                examples.Add(task.Generate(size, f, Rng.For(o.Seed, task.Name, "break-point", size, f, 0)));
            var sw = Stopwatch.StartNew();
            int[][] preds;
            try
            {
                preds = runner.Predict(examples.Select(e => e.Input).ToList(), cancel);
            }
            catch (ModelOutOfMemoryException x)
            {
                stopped = x.Reason;
                log?.Invoke($"break point: size {size:N0} not probed: {x.Reason}");
                return null;
            }
            double secs = sw.Elapsed.TotalSeconds;
            secondsPerUnit = Math.Max(secs, 1e-7) / examples.Count / Math.Pow(length, p);
            int firstWrong = -1;
            foreach (var (e, pred) in examples.Zip(preds))
            {
                var c = CheckResult.Compare(e.Target, pred);
                if (!c.Correct && (firstWrong < 0 || c.FirstWrongPosition < firstWrong)) firstWrong = c.FirstWrongPosition;
            }
            probes.Add(new BreakPointProbe(size, length, firstWrong < 0, examples.Count, firstWrong, secs));
            log?.Invoke($"break point: size {size:N0} {(firstWrong < 0 ? "exact" : $"fails (first wrong position {firstWrong:N0})")} [{secs * 1000:0.#} ms]");
            return firstWrong < 0;
        }

        int lo = task.MinSize - 1; // largest size known exact (MinSize - 1: none yet)
        int? hi = null;            // smallest size known failing
        int s = Math.Clamp(model.TrainLength, task.MinSize, cap);
        while (true)
        {
            var ok = Probe(s);
            if (ok is null) break;
            if (ok == false) { hi = s; break; }
            lo = s;
            if (s >= cap) { stopped = $"size cap {cap:N0}"; break; }
            s = (int)Math.Min(cap, 2L * s);
        }
        while (stopped is null && hi is { } h && h - lo > 1)
        {
            int mid = lo + (h - lo) / 2;
            var ok = Probe(mid);
            if (ok is null) break;
            if (ok == true) lo = mid; else hi = mid;
        }
        int exact = Math.Max(0, lo);
        bool resolved = hi is { } hh && hh - lo == 1;
        string label = model.Label;
        string verdict = hi switch
        {
            null => $"{label}: exact up to {exact:N0} ({Multiple(exact, model.TrainLength)}), no failure found (stopped: {stopped})",
            _ when exact == 0 && resolved => $"{label}: no probed size is exact, down to size {hi:N0} (the task's smallest)",
            _ when resolved => $"{label}: exact up to {exact:N0} ({Multiple(exact, model.TrainLength)}), first failure at {hi:N0}",
            _ => $"{label}: exact up to {exact:N0} ({Multiple(exact, model.TrainLength)}), failure seen at {hi:N0} (bisection stopped: {stopped})",
        };
        return new BreakPointResult
        {
            ExactUpTo = exact,
            FirstFailure = hi,
            Resolved = resolved,
            StoppedBy = stopped,
            SamplesPerProbe = o.Samples,
            Families = families,
            Verdict = verdict,
            Probes = probes,
        };
    }

    public static string Multiple(int size, int train)
    {
        double m = (double)size / train;
        return "x" + (m >= 10 ? m.ToString("N0", CultureInfo.InvariantCulture) : m.ToString("0.##", CultureInfo.InvariantCulture));
    }
}
