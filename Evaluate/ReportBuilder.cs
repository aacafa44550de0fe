namespace Toolchain.Evaluate;

/// <summary>Builds results.json from plans and unit records alone (so interrupted, resumed, sharded and
/// merged runs that did the same units give the same metrics).</summary>
public static class ReportBuilder
{
    public const int FirstWrongCap = 1000;

    public static ModelSection Model(ModelInfo m) =>
        new(m.FileName, m.Sha256, m.Bytes, m.Task.Name, m.Arch, m.TrainLength, m.ConfigJson, m.Source, m.HasMetadata, m.IrVersion, m.Opset,
            m.Members?.Select(e => new EnsembleMember(e.FileName, e.Sha256, e.Arch, e.ConfigJson)).ToList() ?? m.JoinedMembers?.ToList());

    public static Results Build(IReadOnlyList<RunPlan> plans, ModelSection model, SuiteSection suite, RunSection run,
        IReadOnlyCollection<UnitRecord> records, BreakPointResult? breakPoint, IEnumerable<string> notes)
    {
        var layout = plans[0];
        var present = records.Select(r => r.Key).ToHashSet();
        var shards = plans.Select(p => Shard.Parse(p.Shard)).ToList();
        int shardCount = shards[0].Count;
        bool allShards = shards.Select(s => s.Index).Distinct().Count() == shardCount;
        // the units each plan's own shard was to run
        var owned = plans.SelectMany(p => WorkPlanner.ForShard(WorkPlanner.Units(p), Shard.Parse(p.Shard))).ToList();

        var levels = new List<LevelResult>();
        var notGraded = new List<string>();
        foreach (var lp in layout.Levels)
        {
            var fams = new List<FamilyResult>();
            foreach (var fc in lp.Planned)
            {
                var recs = records.Where(r => !IsCase(r) && r.Level == lp.Name && r.Family == fc.Family).OrderBy(r => r.From).ToList();
                fams.Add(Aggregate(fc.Family, fc.Count, recs));
            }
            var all = records.Where(r => !IsCase(r) && r.Level == lp.Name).ToList();
            var total = Aggregate("all", lp.Planned.Sum(c => c.Count), all) with { FirstWrongPositions = [], FirstWrongTruncated = false };
            var mine = owned.Where(u => !u.IsCase && u.Level == lp.Name).ToList();
            bool anySkipped = plans.Any(p => p.Levels.FirstOrDefault(l => l.Name == lp.Name)?.Status == LevelStatus.Skipped);
            bool anyTrimmed = plans.Any(p => p.Levels.FirstOrDefault(l => l.Name == lp.Name)?.Status == LevelStatus.Trimmed);
            int ran = all.Sum(r => r.Samples), toRun = mine.Sum(u => u.To - u.From);
            string status;
            string? note = LevelStatus.Reason(plans.Select(p => p.Levels.FirstOrDefault(l => l.Name == lp.Name)?.Note).FirstOrDefault(n => n is not null));
            // units that ran out of memory (or follow a length that did) are recorded with why
            string? skippedWhy = all.Where(r => r.Skipped is not null).Select(r => LevelStatus.Reason(r.Skipped)!)
                .Distinct().Order(StringComparer.Ordinal).FirstOrDefault();
            if (anySkipped && ran == 0) status = LevelStatus.Skipped;
            else if (skippedWhy is not null)
            {
                status = ran == 0 ? LevelStatus.Skipped : LevelStatus.Incomplete;
                note = ran == 0 ? skippedWhy : $"{skippedWhy}; {ran} of {toRun} planned samples run";
                notGraded.Add($"level {lp.Name}: skipped: {skippedWhy}");
            }
            else if (mine.Any(u => !present.Contains(u.Key)))
            {
                status = LevelStatus.Incomplete;
                note = $"{ran} of {toRun} planned samples run (budget spent, memory, or the run was stopped)";
            }
            else if (!allShards)
            {
                status = LevelStatus.Partial;
                note = $"only shard{(shards.Count == 1 ? "" : "s")} {string.Join(", ", shards)}: merge all {shardCount} shards for the whole level";
            }
            else status = anyTrimmed || anySkipped ? LevelStatus.Trimmed : LevelStatus.Complete;
            levels.Add(new LevelResult
            {
                Name = lp.Name, Size = lp.Size, Length = lp.Length, Multiple = lp.Multiple, Exhaustive = lp.Exhaustive,
                Status = status, Note = note, Families = fams, Total = total,
            });
        }

        var cases = new List<CaseResult>();
        foreach (var cp in layout.Cases)
        {
            var r = records.FirstOrDefault(x => x.Key == "case/" + cp.Name);
            if (r?.Skipped is not null)
            {
                cases.Add(new CaseResult(cp.Name, cp.Size, cp.Length, false, -1, 0, "skipped"));
                notGraded.Add($"case {cp.Name}: skipped: {LevelStatus.Reason(r.Skipped)}");
            }
            else if (r is null)
                cases.Add(new CaseResult(cp.Name, cp.Size, cp.Length, false, -1, 0, cp.Status == "skipped" ? "skipped" : allShards ? "not run" : "partial"));
            else
                cases.Add(new CaseResult(cp.Name, cp.Size, cp.Length, r.Exact == 1, r.FirstWrong.Count > 0 ? r.FirstWrong[0][1] : -1,
                    r.Symbols == 0 ? 0 : (double)r.SymbolsCorrect / r.Symbols, "run"));
        }

        var timing = new List<TimingEntry>();
        // a level's units share one length; pinned cases do not, so each case is timed on its own
        long percent = InferenceStepPercent(model); // the config is read once, not per record
        foreach (var g in records.Where(r => r.Skipped is null).GroupBy(r => IsCase(r) ? "case " + r.Family["case:".Length..] : r.Level))
        {
            double secs = g.Sum(r => r.Seconds);
            int n = g.Sum(r => r.Samples);
            double tokenSteps = g.Sum(r => (double)r.Samples * r.Length * Steps(model.Arch, percent, r.Length));
            timing.Add(new TimingEntry(g.Key, g.Max(r => r.Length), Math.Round(secs, 6), n,
                Math.Round(n / Math.Max(secs, 1e-9), 3), Math.Round(tokenSteps / Math.Max(secs, 1e-9), 1)));
        }
        timing = timing.OrderBy(t => layout.Levels.FindIndex(l => l.Name == t.Level) is int i && i >= 0 ? i : int.MaxValue)
            .ThenBy(t => layout.Cases.FindIndex(c => "case " + c.Name == t.Level)).ToList();

        var trims = plans.SelectMany(p => p.Trims.Select(t => plans.Count > 1 ? $"shard {p.Shard}: {t}" : t)).Concat(notGraded).Concat(notes).ToList();
        return new Results
        {
            Grading = ResultsCache.GradingVersion,
            Tool = Evaluator.Tool(),
            Model = model,
            Suite = suite,
            Run = run,
            Budget = new BudgetSection(layout.BudgetMinutes, trims),
            Levels = levels,
            Cases = cases,
            BreakPoint = breakPoint,
            Timing = timing,
        };
    }

    /// <summary>Recurrent steps per example of a length, for token-step throughput: a Neural GPU runs n steps on
    /// length n, or ceil(f n) with the inference_step_factor f of its training config; the others count 1.</summary>
    public static long Steps(ModelSection model, int length) => Steps(model.Arch, InferenceStepPercent(model), length);

    private static long Steps(string arch, long percent, int length) =>
        arch is "ngpu" or "dngpu" ? ((long)length * percent + 99) / 100 : 1;

    /// <summary>A Neural GPU's inference_step_factor in hundredths, read from its training config: 100 (n steps) for
    /// any other architecture, and for a config without the field or one that cannot be read.</summary>
    public static long InferenceStepPercent(ModelSection model)
    {
        if (model.Arch is not ("ngpu" or "dngpu") || model.Config is null) return 100;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(model.Config);
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && doc.RootElement.TryGetProperty("inference_step_factor", out var f) && f.TryGetDouble(out double v)
                && double.IsFinite(v) && v is >= 1 and <= 8 ? (long)Math.Round(v * 100) : 100;
        }
        catch (System.Text.Json.JsonException) { return 100; }
    }

    private static bool IsCase(UnitRecord r) => r.Key.StartsWith("case/", StringComparison.Ordinal);

    private static FamilyResult Aggregate(string family, int planned, IReadOnlyList<UnitRecord> recs)
    {
        int samples = recs.Sum(r => r.Samples), exact = recs.Sum(r => r.Exact);
        long symbols = recs.Sum(r => r.Symbols), correct = recs.Sum(r => r.SymbolsCorrect);
        var fw = recs.OrderBy(r => r.From).SelectMany(r => r.FirstWrong).ToList();
        int failures = samples - exact;
        return new FamilyResult
        {
            Family = family,
            Planned = planned,
            Samples = samples,
            Exact = exact,
            SequenceAccuracy = samples == 0 ? 0 : (double)exact / samples,
            WilsonLower95 = Math.Round(Stats.WilsonLower(exact, samples), 6),
            Symbols = symbols,
            SymbolsCorrect = correct,
            SymbolAccuracy = symbols == 0 ? 0 : (double)correct / symbols,
            FirstWrongPositions = fw.Take(FirstWrongCap).ToList(),
            FirstWrongTruncated = failures > Math.Min(fw.Count, FirstWrongCap),
        };
    }

    /// <summary>Failure examples for failures.jsonl: the first <paramref name="cap"/> by index of each (level, family), in plan order.</summary>
    public static List<FailureExample> Failures(IReadOnlyList<RunPlan> plans, IEnumerable<UnitRecord> records, int cap)
    {
        var order = plans[0].Levels.Select(l => l.Name).ToList();
        return records.SelectMany(r => r.Failures)
            .GroupBy(f => (f.Level, f.Family))
            .OrderBy(g => order.IndexOf(g.Key.Level) is int i && i >= 0 ? i : int.MaxValue)
            .ThenBy(g => g.Key.Family, StringComparer.Ordinal)
            .SelectMany(g => g.OrderBy(f => f.Index).Take(cap))
            .ToList();
    }
}
