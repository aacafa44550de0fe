using System.Diagnostics;
using System.Reflection;
using System.Text;
using Toolchain.Suites;

namespace Toolchain.Evaluate;

public sealed record EvalOptions
{
    public required SuiteDefinition Suite { get; init; }
    /// <summary>Level names to run (and "cases" for the pinned cases); null = all.</summary>
    public IReadOnlyList<string>? Levels { get; init; }
    public required string OutDir { get; init; }
    public Shard Shard { get; init; } = Shard.Whole;
    public bool Resume { get; init; }
    public double? BudgetMinutes { get; init; }
    public bool BreakPoint { get; init; }
    public BreakPointOptions BreakPointOptions { get; init; } = new();
    /// <summary>Memory the run may assume available; null = measure (MemAvailable).</summary>
    public long? MemoryLimitBytes { get; init; }
    public Action<string>? Log { get; init; }
    /// <summary>Called after each completed unit has been recorded (tests use it to stop a run midway).</summary>
    public Action<UnitRecord>? AfterUnit { get; init; }
    public CancellationToken Cancel { get; init; }
    /// <summary>Failure examples kept per (level, family), and first-wrong positions kept per (level, family).</summary>
    public int FailureCap { get; init; } = 20;
    public int FirstWrongCap { get; init; } = 1000;
    /// <summary>Also write verdicts.jsonl: the verdict on every graded example (<see cref="VerdictFile"/>).</summary>
    public bool Verdicts { get; init; }
}

/// <summary>
/// A graded run: plans work units (levels x families x sample ranges, and pinned cases) under the budget,
/// runs this shard's units that are not yet done, records each as one line of units.jsonl, optionally
/// finds the break point, and writes the reports. Resumed and merged runs rebuild the same report from
/// the same unit records.
/// </summary>
public static class Evaluator
{
    public const string PlanFile = "plan.json", UnitsFile = "units.jsonl", BreakPointFile = "breakpoint.json";

    /// <summary>Every file a run writes in its folder. Anything else there is someone else's, and a run refuses the
    /// folder rather than overwrite it.</summary>
    public static readonly IReadOnlyList<string> RunFiles =
        [PlanFile, UnitsFile, BreakPointFile, .. ReportWriter.Files, VerdictFile.FileName, FolderLock.FileName];

    /// <summary>Refuses an output folder that is a file, or that holds anything but a run's own files: an eval
    /// writes into an empty folder, or (with --resume) continues its own run there.</summary>
    public static void CheckFolder(string dir, bool resume)
    {
        if (File.Exists(dir)) throw new EvaluationException($"--out '{dir}' is a file, not a folder; choose a folder for the run");
        if (!Directory.Exists(dir)) return;
        var entries = Directory.EnumerateFileSystemEntries(dir).Select(e => Path.GetFileName(e)).Order(StringComparer.Ordinal).ToList();
        var foreign = entries.Where(e => !RunFiles.Contains(e) && !IsRunTempFile(e)).ToList();
        if (foreign.Count > 0)
            throw new EvaluationException($"'{dir}' holds files that eval did not write ({Few(foreign)}); " +
                "eval writes only into an empty folder " +
                "(or continues its own run there with --resume), so nothing of yours is overwritten: choose another --out");
        if (!resume && entries.Any(e => e is PlanFile or UnitsFile))
            throw new EvaluationException(
                $"'{dir}' already holds a run ({PlanFile}); pass --resume to continue it, or choose an empty --out");
        if (!resume && entries.Any(e => e != FolderLock.FileName))
            throw new EvaluationException(
                $"'{dir}' already holds a report ({Few(entries)}) but no {PlanFile} to resume from; choose an empty --out");
    }

    /// <summary>A temp file of an atomic write of a run file, left by a kill in mid-write.</summary>
    private static bool IsRunTempFile(string name) =>
        name.EndsWith(".tmp", StringComparison.Ordinal) && RunFiles.Any(f => name.StartsWith(f + ".", StringComparison.Ordinal));

    private static string Few(List<string> names) =>
        string.Join(", ", names.Take(3)) + (names.Count > 3 ? $" and {names.Count - 3} more" : "");

    /// <summary>The memory estimate without a probe: the static per-token guess. (Graded models carry no
    /// `states`: <see cref="ModelIntake.Open"/> prunes it.)</summary>
    private static MemoryModel StaticMemory(ModelInfo model) =>
        new(MemoryGuard.StaticBytesPerToken(model.Task.Vocab.Count, model.ActivationBytesPerToken));

    public static Results Run(ModelInfo model, OnnxRunner runner, EvalOptions o)
    {
        var task = model.Task;
        var log = o.Log ?? (_ => { });
        CheckFolder(o.OutDir, o.Resume);
        using var folderLock = FolderLock.Take(o.OutDir, "evaluation run"); // a second process into this --out is refused
        CheckFolder(o.OutDir, o.Resume); // again under the lock: another process may have written it in between
        string planPath = Path.Combine(o.OutDir, PlanFile), unitsPath = Path.Combine(o.OutDir, UnitsFile);
        long available = o.MemoryLimitBytes ?? MemoryGuard.AvailableBytes();
        var clock = Stopwatch.StartNew();
        double? budgetSeconds = o.BudgetMinutes * 60;

        IReadOnlyList<ResolvedLevel> resolved;
        List<(SuiteCase Case, Example Example)> cases;
        try
        {
            resolved = o.Suite.Resolve(task, model.TrainLength);
            cases = o.Suite.CaseExamples(task).ToList();
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new EvaluationException($"suite '{o.Suite.Name}' cannot be made concrete for task '{task.Name}' at training size {model.TrainLength}: {e.Message}");
        }
        var filter = o.Levels?.ToList();
        if (filter is not null)
        {
            var known = resolved.Select(l => l.Name).Append("cases").ToHashSet();
            var unknown = filter.Where(f => !known.Contains(f)).ToList();
            if (unknown.Count > 0)
                throw new EvaluationException($"suite '{o.Suite.Name}' has no level {string.Join(", ", unknown.Select(u => $"'{u}'"))}; its levels: {string.Join(", ", resolved.Select(l => l.Name))}, cases");
            resolved = resolved.Where(l => filter.Contains(l.Name)).ToList();
            if (!filter.Contains("cases")) cases = [];
        }

        RunPlan plan;
        var done = new Dictionary<string, UnitRecord>();
        if (o.Resume)
        {
            if (!File.Exists(planPath))
                throw new EvaluationException($"nothing to resume in '{o.OutDir}' (no {PlanFile}); run without --resume");
            plan = Json.Deserialize<RunPlan>(File.ReadAllText(planPath), Path.Combine(o.OutDir, PlanFile));
            string? mismatch =
                plan.ModelSha256 != model.Sha256 ? $"model sha256 {plan.ModelSha256[..12]}, not {model.Sha256[..12]}" :
                plan.SuiteHash != o.Suite.Hash ? $"suite '{plan.SuiteName}' ({plan.SuiteHash[..12]}), not '{o.Suite.Name}' ({o.Suite.Hash[..12]})" :
                plan.Shard != o.Shard.ToString() ? $"shard {plan.Shard}, not {o.Shard}" :
                !SameFilter(plan.LevelFilter, filter) ? $"levels {Show(plan.LevelFilter)}, not {Show(filter)}" :
                plan.TrainLength != model.TrainLength ? $"training size {plan.TrainLength}, not {model.TrainLength}" : null;
            if (mismatch is not null)
                throw new EvaluationException($"'{o.OutDir}' holds a run of {mismatch}: resume with the same model, suite, levels and shard, or choose another --out");
            foreach (var r in UnitLog.Load(unitsPath)) done[r.Key] = r;
            log($"resuming: {done.Count} completed unit{(done.Count == 1 ? "" : "s")} in {unitsPath}");
        }
        else
        {
            CostModel? cost = null;
            var memory = StaticMemory(model);
            if (budgetSeconds is not null)
            {
                int probeSize = Math.Max(task.MinSize, Math.Min(model.TrainLength, resolved.Count > 0 ? resolved.Min(l => l.Size) : model.TrainLength));
                int longest = resolved.Select(l => task.LengthForSize(l.Size)).Concat(cases.Select(c => c.Example.Length)).DefaultIfEmpty(0).Max();
                // memory first: the session's memory pool keeps what the timing runs take, which would hide growth
                memory = MemoryModel.Probe(runner, task, probeSize, longest / 4, memory.StaticBytesPerToken, available, o.Suite.Seed, log, model.CostExponent ?? 2);
                cost = CostModel.Probe(runner, task, probeSize, model.CostExponent, o.Suite.Seed, maxLength: Math.Max(task.LengthForSize(probeSize), longest / 4));
                log($"budget: probe at length {cost.ProbeLength:N0} gives {cost.Seconds(cost.ProbeLength, 1) * 1000:0.###} ms/example, cost ~ length^{cost.Exponent:0.##}{(cost.ExponentFitted ? " (fitted)" : "")}");
            }
            double? levelBudget = budgetSeconds is { } b ? Math.Max(0, (o.BreakPoint && o.Shard.Index == 0 ? 0.75 : 1.0) * b - clock.Elapsed.TotalSeconds) : null;
            var (levels, casePlans, trims) = BudgetPlanner.Plan(task, resolved,
                cases.Select(c => (c.Case.Name, c.Example.Size, c.Example.Length)).ToList(),
                cost is null ? null : cost.Seconds, levelBudget,
                memory.BytesPerExample, available, memory.Basis);
            plan = new RunPlan
            {
                ModelSha256 = model.Sha256,
                Task = task.Name,
                TrainLength = model.TrainLength,
                SuiteName = o.Suite.Name,
                SuiteHash = o.Suite.Hash,
                LevelFilter = filter,
                Shard = o.Shard.ToString(),
                BudgetMinutes = o.BudgetMinutes,
                UnitExponent = model.CostExponent ?? 1,
                Levels = levels,
                Cases = casePlans,
                Trims = trims,
                BreakPoint = o.BreakPoint,
                Memory = memory,
            };
            AtomicFile.Write(planPath, Json.Serialize(plan));
            foreach (var t in trims) log("budget: " + t);
        }

        var units = WorkPlanner.ForShard(WorkPlanner.Units(plan), o.Shard);
        var caseExamples = cases.ToDictionary(c => c.Case.Name, c => c.Example);
        var notes = new List<string>();
        var memoryModel = plan.Memory ?? StaticMemory(model);
        // Linux overcommits memory: a batch too large for the machine is not an allocation failure ONNX Runtime
        // could recover from but a kernel kill, so every sub-batch (levels, cases, break point) is sized from
        // the memory estimate up front
        runner.MemoryBatchLimit = length => memoryModel.MaxBatch(length, available);
        ModelOutOfMemoryException? outOfMemory = null;
        var rate = new RateTracker(plan.UnitExponent);
        int levelNo = 0;
        var groups = units.GroupBy(u => u.Level).ToList();
        foreach (var group in groups)
        {
            levelNo++;
            var pending = group.Where(u => !done.ContainsKey(u.Key)).ToList();
            if (pending.Count == 0) continue;
            var first = pending[0];
            string what = first.IsCase ? "cases" : $"level {first.Level}";
            if (budgetSeconds is { } bs && clock.Elapsed.TotalSeconds >= bs)
            {
                string note = $"{what}: not run, the budget of {BudgetPlanner.Duration(bs)} is spent ({pending.Sum(u => u.To - u.From)} samples left)";
                notes.Add(note);
                log("budget: " + note);
                continue;
            }
            int maxLen = pending.Max(u => u.Length);
            long need = memoryModel.BytesPerExample(maxLen);
            long nowAvailable = o.MemoryLimitBytes ?? MemoryGuard.AvailableBytes();
            bool pastOutOfMemory = outOfMemory is { } ran && maxLen >= ran.Length; // recorded as not graded below
            if (!pastOutOfMemory && !memoryModel.Fits(maxLen, nowAvailable))
            {
                string how = memoryModel.Basis is { } basis ? $" ({basis})" : "";
                string note = $"{what}: not run, {MemoryGuard.TooBig($"one example at length {maxLen:N0}", need, how, nowAvailable)} now";
                notes.Add(note);
                log("memory: " + note);
                continue;
            }
            var sw = Stopwatch.StartNew();
            int examples = 0, exact = 0;
            long tokens = 0;
            foreach (var unit in pending)
            {
                o.Cancel.ThrowIfCancellationRequested();
                UnitRecord rec;
                if (outOfMemory is { } oom && unit.Length >= oom.Length)
                    rec = NotGraded(unit, unit.Length == oom.Length
                        ? oom.Reason
                        : $"longer than length {oom.Length:N0}, which ran out of memory (batch {oom.Batch})");
                else
                {
                    try
                    {
                        rec = RunUnit(model, runner, o, plan, unit, caseExamples);
                    }
                    catch (ModelOutOfMemoryException x)
                    {
                        outOfMemory = x;
                        log($"memory: {what}: {x.Message}; this level and every longer one are not graded");
                        rec = NotGraded(unit, x.Reason);
                    }
                }
                UnitLog.Append(unitsPath, rec);
                done[rec.Key] = rec;
                // pinned cases differ in size and length: each gets its own line, never a mix of two cases' numbers
                if (unit.IsCase && rec.Skipped is null)
                    log($"[{levelNo}/{groups.Count}] case {unit.Family["case:".Length..]}: size {unit.Size:N0}, length {unit.Length:N0}: " +
                        $"{(rec.Exact == 1 ? "exact" : "wrong")}, {rec.Seconds:0.###} s, {unit.Length / Math.Max(rec.Seconds, 1e-9):N0} tok/s");
                examples += rec.Samples;
                exact += rec.Exact;
                tokens += (long)rec.Samples * rec.Length;
                rate.Add(rec);
                o.AfterUnit?.Invoke(rec);
                o.Cancel.ThrowIfCancellationRequested();
            }
            double secs = sw.Elapsed.TotalSeconds;
            if (examples == 0 && pending.All(u => done[u.Key].Skipped is not null))
            {
                log($"[{levelNo}/{groups.Count}] {what,-12} size {first.Size:N0}, length {maxLen:N0}: not graded ({done[first.Key].Skipped})");
                continue;
            }
            var remaining = groups.Skip(levelNo).SelectMany(g => g).Where(u => !done.ContainsKey(u.Key)).ToList();
            if (first.IsCase) continue; // logged case by case above
            log($"[{levelNo}/{groups.Count}] {what,-12} size {first.Size:N0}, length {maxLen:N0}: {examples} examples, {exact} exact, " +
                $"{ReportWriter.Rate(examples / Math.Max(secs, 1e-9))} ex/s, {ReportWriter.Rate(tokens / Math.Max(secs, 1e-9))} tok/s; ETA {BudgetPlanner.Duration(rate.Estimate(remaining))}");
        }

        BreakPointResult? bp = null;
        if (plan.BreakPoint && o.Shard.Index == 0)
        {
            string bpPath = Path.Combine(o.OutDir, BreakPointFile);
            if (o.Resume && File.Exists(bpPath))
                bp = Json.Deserialize<BreakPointResult>(File.ReadAllText(bpPath), bpPath);
            else
            {
                var bo = o.BreakPointOptions with { Seed = o.Suite.Seed };
                if (budgetSeconds is { } bs) bo = bo with { Seconds = Math.Min(bo.Seconds, Math.Max(1, bs - clock.Elapsed.TotalSeconds)) };
                bp = BreakPointSearch.Run(model, runner, bo, available, log, o.Cancel, memoryModel);
                AtomicFile.Write(bpPath, Json.Serialize(bp));
            }
            log(bp.Verdict);
        }

        var results = ReportBuilder.Build([plan], ReportBuilder.Model(model), new SuiteSection(o.Suite.Name, o.Suite.Hash, o.Suite.Seed, filter),
            RunInfo(runner, o.Shard.IsWhole ? null : o.Shard.ToString(), null), done.Values.ToList(), bp, notes);
        ReportWriter.WriteAll(o.OutDir, results, ReportBuilder.Failures([plan], done.Values, o.FailureCap));
        if (o.Verdicts) VerdictFile.Write(o.OutDir, plan, done.Values, unitsPath);
        return results;
    }

    private static bool SameFilter(List<string>? a, List<string>? b) =>
        (a is null && b is null) || (a is not null && b is not null && a.SequenceEqual(b));

    private static string Show(List<string>? f) => f is null ? "all" : string.Join(",", f);

    public static RunSection RunInfo(OnnxRunner runner, string? shard, List<string>? mergedFrom) =>
        new(runner.Provider, runner.Device, runner.Options.Threads, RunnerOptions.OptimizationName(runner.Options.Optimization), runner.Options.BatchTokens, shard, mergedFrom,
            runner.LoopChunk > 1 ? runner.LoopChunk : null, runner.Options.IoBinding ? true : null);

    /// <summary>The record of a unit that could not be graded (e.g. out of memory): no samples, and why.</summary>
    private static UnitRecord NotGraded(WorkUnit unit, string reason) => new()
    {
        Key = unit.Key, Level = unit.Level, Family = unit.Family, From = unit.From, To = unit.To,
        Size = unit.Size, Length = unit.Length, Samples = 0, Exact = 0, Symbols = 0, SymbolsCorrect = 0,
        FirstWrong = [], Failures = [], Seconds = 0, Skipped = reason,
    };

    private static UnitRecord RunUnit(ModelInfo model, OnnxRunner runner, EvalOptions o, RunPlan plan, WorkUnit unit, Dictionary<string, Example> cases)
    {
        var task = model.Task;
        var examples = new List<Example>();
        if (unit.IsCase) examples.Add(cases[unit.Family["case:".Length..]]);
        else
        {
            var lp = plan.Levels.First(l => l.Name == unit.Level);
            var level = new ResolvedLevel(lp.Name, lp.Size, lp.Multiple, lp.Exhaustive, []);
            for (int i = unit.From; i < unit.To; i++) examples.Add(o.Suite.Instance(task, level, unit.Family, i));
        }
        var sw = Stopwatch.StartNew();
        var preds = runner.Predict(examples.Select(e => e.Input).ToList(), o.Cancel);
        double secs = sw.Elapsed.TotalSeconds;
        int exact = 0;
        long symbols = 0, correct = 0;
        var firstWrong = new List<int[]>();
        var failures = new List<FailureExample>();
        var verdicts = new char[examples.Count];
        for (int i = 0; i < examples.Count; i++)
        {
            var e = examples[i];
            var c = CheckResult.Compare(e.Target, preds[i]);
            symbols += e.Length;
            correct += e.Length - c.WrongSymbols;
            verdicts[i] = c.Correct ? '1' : '0';
            if (c.Correct) { exact++; continue; }
            int index = unit.From + i;
            if (firstWrong.Count < o.FirstWrongCap) firstWrong.Add([index, c.FirstWrongPosition]);
            if (failures.Count < o.FailureCap)
                failures.Add(FailureExample.Create(task, unit.Level, unit.Family, index, e.Size, c.FirstWrongPosition, c.WrongSymbols,
                    e.Input, e.Target, preds[i], o.Suite.Name));
        }
        return new UnitRecord
        {
            Key = unit.Key, Level = unit.Level, Family = unit.Family, From = unit.From, To = unit.To,
            Size = unit.Size, Length = unit.Length, Samples = examples.Count, Exact = exact,
            Symbols = symbols, SymbolsCorrect = correct, FirstWrong = firstWrong, Failures = failures, Seconds = secs,
            Verdicts = new string(verdicts),
        };
    }

    public static ToolInfo Tool()
    {
        var asm = Assembly.GetEntryAssembly() ?? typeof(Evaluator).Assembly;
        string info = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(Evaluator).Assembly.GetName().Version?.ToString() ?? "0.0.0";
        int plus = info.IndexOf('+');
        string version = plus >= 0 ? info[..plus] : info;
        string? commit = plus >= 0 ? info[(plus + 1)..] : null;
        return new ToolInfo("toolchain", version, commit);
    }

    /// <summary>Measured seconds per length^p unit, for the ETA.</summary>
    private sealed class RateTracker(double p)
    {
        private double _seconds, _units;
        public void Add(UnitRecord r) { _seconds += r.Seconds; _units += r.Samples * Math.Pow(r.Length, p); }
        public double Estimate(IEnumerable<WorkUnit> remaining) => _units <= 0 ? 0 : _seconds / _units * remaining.Sum(u => u.Cost);
    }
}

/// <summary>units.jsonl: one completed unit per line, appended whole and flushed to disk.</summary>
public static class UnitLog
{
    public static void Append(string path, UnitRecord record)
    {
        var bytes = Encoding.UTF8.GetBytes(Json.Serialize(record, indented: false) + "\n");
        try
        {
            AtomicFile.ThrowIfFaulted(path);
            using var f = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        catch (Exception e) when (StorageException.IsStorageFailure(e))
        {
            // the units recorded before are intact; a torn last line is cut off when the run is resumed
            throw StorageException.From(path, e);
        }
    }

    /// <summary>Records of a units file; a torn last line (a kill mid-write) is cut off the file.</summary>
    public static List<UnitRecord> Load(string path)
    {
        var list = new List<UnitRecord>();
        if (!File.Exists(path)) return list;
        var text = File.ReadAllText(path);
        int pos = 0;
        while (pos < text.Length)
        {
            int nl = text.IndexOf('\n', pos);
            if (nl < 0)
            {
                // no newline: the write was cut short; drop it so the next append starts a clean line
                using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
                f.SetLength(Encoding.UTF8.GetByteCount(text.AsSpan(0, pos)));
                break;
            }
            string line = text[pos..nl];
            if (line.Length > 0) list.Add(Json.Deserialize<UnitRecord>(line, $"{path}, line {list.Count + 1}"));
            pos = nl + 1;
        }
        return list;
    }
}
