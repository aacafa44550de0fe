namespace Toolchain.Evaluate;

/// <summary>Combines the output folders of shards i/N into one report, as if one run had done every unit.</summary>
public static class Merger
{
    public static Results Merge(IReadOnlyList<string> dirs, string outDir, Action<string>? log = null)
    {
        if (dirs.Count == 0) throw new EvaluationException("merge needs at least one shard folder");
        var shards = new List<(string Dir, RunPlan Plan, Results Results, List<UnitRecord> Units, BreakPointResult? Bp)>();
        foreach (var dir in dirs)
        {
            string planPath = Path.Combine(dir, Evaluator.PlanFile), resultsPath = Path.Combine(dir, "results.json");
            if (!File.Exists(planPath)) throw new EvaluationException($"'{dir}' is not an evaluation folder (no {Evaluator.PlanFile}); pass the --out folders of the shard runs");
            if (!File.Exists(resultsPath)) throw new EvaluationException($"shard folder '{dir}' has no results.json: that shard did not finish; rerun it with --resume");
            var plan = Json.Deserialize<RunPlan>(File.ReadAllText(planPath), planPath);
            var shardResults = Json.Deserialize<Results>(File.ReadAllText(resultsPath), resultsPath);
            string bpPath = Path.Combine(dir, Evaluator.BreakPointFile);
            var shardBp = File.Exists(bpPath) ? Json.Deserialize<BreakPointResult>(File.ReadAllText(bpPath), bpPath) : null;
            shards.Add((dir, plan, shardResults, UnitLog.Load(Path.Combine(dir, Evaluator.UnitsFile)), shardBp));
        }
        var first = shards[0];
        foreach (var s in shards.Skip(1))
        {
            string? diff =
                s.Plan.ModelSha256 != first.Plan.ModelSha256 ? "model" :
                s.Plan.SuiteHash != first.Plan.SuiteHash ? "suite" :
                s.Plan.TrainLength != first.Plan.TrainLength ? "training size" :
                !(s.Plan.LevelFilter ?? []).SequenceEqual(first.Plan.LevelFilter ?? []) ? "levels" :
                Shard.Parse(s.Plan.Shard).Count != Shard.Parse(first.Plan.Shard).Count ? "shard count" : null;
            if (diff is not null)
                throw new EvaluationException($"'{s.Dir}' and '{first.Dir}' are shards of different runs (their {diff} differs); merge shards of one run only");
        }
        var dup = shards.GroupBy(s => s.Plan.Shard).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new EvaluationException($"shard {dup.Key} is given twice ({string.Join(", ", dup.Select(d => d.Dir))})");
        int n = Shard.Parse(first.Plan.Shard).Count;
        var missing = Enumerable.Range(0, n).Except(shards.Select(s => Shard.Parse(s.Plan.Shard).Index)).ToList();
        if (missing.Count > 0) log?.Invoke($"warning: shard{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing.Select(i => $"{i}/{n}"))} missing; their levels are marked partial");

        shards = shards.OrderBy(s => Shard.Parse(s.Plan.Shard).Index).ToList();
        var records = new Dictionary<string, UnitRecord>();
        foreach (var s in shards)
            foreach (var u in s.Units) records.TryAdd(u.Key, u);
        var plans = shards.Select(s => s.Plan).ToList();
        var run = shards[0].Results.Run with { Shard = null, MergedFrom = shards.Select(s => s.Plan.Shard).ToList() };
        var bp = shards.Select(s => s.Bp).FirstOrDefault(b => b is not null);
        var results = ReportBuilder.Build(plans, shards[0].Results.Model, shards[0].Results.Suite, run, records.Values.ToList(), bp, []);
        Directory.CreateDirectory(outDir);
        ReportWriter.WriteAll(outDir, results, ReportBuilder.Failures(plans, records.Values, 20));
        // the shards' verdicts are in their unit records; the merged file is the one an unsharded run writes
        if (shards.Any(s => File.Exists(Path.Combine(s.Dir, VerdictFile.FileName))))
            VerdictFile.Write(outDir, plans[0], records.Values, string.Join(", ", shards.Select(s => Path.Combine(s.Dir, Evaluator.UnitsFile))));
        return results;
    }
}
