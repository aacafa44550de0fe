using System.Diagnostics;
using System.Globalization;
using Toolchain.Evaluate;

namespace Toolchain.Cli.Bench;

/// <summary>Timing, memory and fitting helpers of the benchmark.</summary>
public static class BenchMeasure
{
    /// <summary>Times two actions side by side: one warm-up each, then alternating A, B, A, B ... until both
    /// have run at least <paramref name="minReps"/> times and together <paramref name="minSeconds"/> passed
    /// (at most <paramref name="maxReps"/> each). When a warm-up alone takes longer than
    /// <paramref name="longRun"/> seconds, the warm-ups are the samples (first-run costs are negligible there).
    /// Returns the median seconds of each. Alternation puts the noise of a shared machine on both sides.</summary>
    public static (double A, double B, int Reps) Interleaved(Action a, Action b, double minSeconds, int minReps = 3, int maxReps = 50, double longRun = 8)
    {
        double wa = Time(a), wb = Time(b);
        if (wa + wb > 2 * longRun) return (wa, wb, 1);
        var sa = new List<double>();
        var sb = new List<double>();
        var clock = Stopwatch.StartNew();
        while (sa.Count < maxReps && (sa.Count < minReps || clock.Elapsed.TotalSeconds < minSeconds))
        {
            sa.Add(Time(a));
            sb.Add(Time(b));
        }
        return (Median(sa), Median(sb), sa.Count);
    }

    /// <summary>Median seconds of one action (one warm-up, then repeats as <see cref="Interleaved"/>).</summary>
    public static (double Seconds, int Reps) Repeat(Action a, double minSeconds, int minReps = 3, int maxReps = 50, double longRun = 8)
    {
        double w = Time(a);
        if (w > longRun) return (w, 1);
        var s = new List<double>();
        var clock = Stopwatch.StartNew();
        while (s.Count < maxReps && (s.Count < minReps || clock.Elapsed.TotalSeconds < minSeconds)) s.Add(Time(a));
        return (Median(s), s.Count);
    }

    public static double Time(Action a)
    {
        long start = Stopwatch.GetTimestamp();
        a();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    public static double Median(IReadOnlyList<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>Least-squares slope of log(y) against log(x): the exponent p of y ~ c x^p. NaN with fewer
    /// than two usable points (y must be positive).</summary>
    public static double LogLogExponent(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        var pts = x.Zip(y).Where(p => p.First > 0 && p.Second > 0).Select(p => (X: Math.Log(p.First), Y: Math.Log(p.Second))).ToArray();
        if (pts.Length < 2) return double.NaN;
        double mx = pts.Average(p => p.X), my = pts.Average(p => p.Y);
        double sxy = pts.Sum(p => (p.X - mx) * (p.Y - my)), sxx = pts.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx > 0 ? sxy / sxx : double.NaN;
    }

    /// <summary>Least-squares line y = a + b x; returns (a, b).</summary>
    public static (double Intercept, double Slope) Linear(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        int n = Math.Min(x.Count, y.Count);
        if (n < 2) return (double.NaN, double.NaN);
        double mx = x.Take(n).Average(), my = y.Take(n).Average();
        double sxy = 0, sxx = 0;
        for (int i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); }
        double b = sxx > 0 ? sxy / sxx : double.NaN;
        return (my - b * mx, b);
    }

    /// <summary>Peak resident memory (bytes) the action added above the resident memory before it. Linux:
    /// resets the kernel's high-water mark (clear_refs 5) and reads VmHWM afterwards; elsewhere, or when
    /// that is refused, samples the working set every millisecond on a background thread.</summary>
    public static (double Seconds, long PeakDeltaBytes, string Method) PeakMemory(Action a)
    {
        long before = ProcessMemory.Read("VmRSS:") ?? Environment.WorkingSet;
        if (ProcessMemory.ResetPeak())
        {
            double s = Time(a);
            long? hwm = ProcessMemory.Read("VmHWM:");
            if (hwm is { } h) return (s, Math.Max(0, h - before), "VmHWM after clear_refs");
        }
        long peak = before;
        using var stop = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                long now = ProcessMemory.Read("VmRSS:") ?? Environment.WorkingSet;
                if (now > Interlocked.Read(ref peak)) Interlocked.Exchange(ref peak, now);
                Thread.Sleep(1);
            }
        }) { IsBackground = true };
        sampler.Start();
        double seconds = Time(a);
        stop.Cancel();
        sampler.Join();
        return (seconds, Math.Max(0, Interlocked.Read(ref peak) - before), "sampled working set");
    }
}
