using System.CommandLine;
using System.Globalization;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain eval MODEL.onnx ...`: a graded run of a contract-1 ONNX model under ONNX Runtime.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Argument<string?>("model") { Description = "the ONNX model (contract 1: tokens -> logits)", Arity = ArgumentArity.ZeroOrOne };
        var ensemble = new Option<string[]>("--ensemble")
        {
            Description = "grade an ensemble: these models (with MODEL, if given) averaged per position (softmax probabilities, equal weights)",
            AllowMultipleArgumentsPerToken = true,
        };
        var suite = new Option<string>("--suite") { Description = "built-in suite name or suite file", DefaultValueFactory = _ => "standard" };
        var levels = new Option<string?>("--levels") { Description = "comma-separated level names to run (e.g. 1x,10x; 'cases' for the pinned cases); default all" }.MustNameSomething();
        var outDir = new Option<string?>("--out") { Description = "output folder (default: eval-<model name>): new or empty, or this run's own with --resume; anything else is refused" };
        var provider = new Option<string>("--provider") { Description = "auto (CUDA if it loads, else CPU), cpu or cuda", DefaultValueFactory = _ => "auto" };
        provider.AcceptOnlyFromAmong("auto", "cpu", "cuda");
        var threads = new Option<int>("--threads") { Description = "intra-op threads (0: ONNX Runtime's default)", DefaultValueFactory = _ => 0 }.MustNotBeNegative();
        var opt = new Option<string>("--opt-level") { Description = "graph optimization: disable, basic, extended, all", DefaultValueFactory = _ => "all" };
        opt.AcceptOnlyFromAmong("disable", "basic", "extended", "all");
        var batchTokens = new Option<long>("--batch-tokens") { Description = "most tokens (batch x length) per sub-batch", DefaultValueFactory = _ => 1 << 18 };
        var budget = new Option<double?>("--budget-minutes") { Description = "time budget: trims sample counts or skips levels that would not fit" }.MustBePositive();
        var memory = new Option<double?>("--max-memory-gb") { Description = "memory the run may use (default: what the machine has available)" }.MustBePositive();
        var shard = new Option<string?>("--shard") { Description = "run shard i/N of the work units (default: JOB_COMPLETION_INDEX/COUNT or SLURM_ARRAY_TASK_ID/COUNT, else all)" };
        var resume = new Option<bool>("--resume") { Description = "continue a stopped run in --out from its completed units" };
        var task = new Option<string?>("--task") { Description = "task of a model without toolchain metadata" };
        var trainLength = new Option<int?>("--train-length") { Description = "training size k of a model without toolchain metadata" };
        var breakPoint = new Option<bool>("--break-point") { Description = "also find the longest size at which every probe is exact (doubling, then bisection)" };
        var bpSamples = new Option<int>("--break-point-samples") { Description = "random samples per break-point probe (plus one per hard family)", DefaultValueFactory = _ => 8 }.MustBeAtLeastOne();
        var bpMax = new Option<int?>("--break-point-max-size") { Description = "largest size the break-point search tries (default 10,000 x training size)" };
        var bpMinutes = new Option<double>("--break-point-minutes") { Description = "time limit of the break-point search", DefaultValueFactory = _ => 5 }.MustBePositive();
        var verdicts = new Option<bool>("--verdicts") { Description = "also write verdicts.jsonl: the verdict on every graded example, to compare two runs with `toolchain verdicts-diff`" };
        var loopChunk = new Option<int>("--loop-chunk")
        {
            Description = "run the model's step Loop K steps per iteration (same steps, fewer Loop iterations; 1: as exported)",
            DefaultValueFactory = _ => 1,
        }.MustBeAtLeastOne();
        var ioBinding = new Option<bool>("--io-binding") { Description = "run through an ONNX Runtime IO binding (on CUDA the logits go to pinned host memory)" };
        var cmd = new Command("eval", "grade an ONNX model at 1x, 10x, 100x, 1000x its training size; writes results.json, failures.jsonl, summary.md, index.html")
        {
            model, ensemble, suite, levels, outDir, provider, threads, opt, batchTokens, budget, memory, shard, resume, task, trainLength, breakPoint, bpSamples, bpMax, bpMinutes,
            verdicts, loopChunk, ioBinding,
        };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            var err = r.InvocationConfiguration.Error;
            string[] members = [.. new[] { r.GetValue(model) }.OfType<string>(), .. r.GetValue(ensemble) ?? []];
            if (members.Length == 0) throw new UserError("eval needs a model: toolchain eval MODEL.onnx, or an ensemble: toolchain eval --ensemble A.onnx B.onnx ...");
            if (r.GetValue(ensemble) is { Length: > 0 } && members.Length < 2)
                throw new UserError("--ensemble needs at least two models in all: toolchain eval --ensemble A.onnx B.onnx ...");
            string path = members[0];
            if (r.GetValue(batchTokens) < 1) throw new UserError("--batch-tokens must be at least 1");
            if (r.GetValue(bpMax) is < 1) throw new UserError("--break-point-max-size must be at least 1");
            var suiteDef = SuiteFile.Resolve(r.GetValue(suite)!);
            var shardSpec = r.GetValue(shard) is { } s ? Shard.Parse(s) : Shard.FromEnvironment(Environment.GetEnvironmentVariable) ?? Shard.Whole;
            string dir = r.GetValue(outDir) ?? (members.Length > 1 ? "eval-ensemble-" : "eval-") + Path.GetFileNameWithoutExtension(path);
            var runnerOptions = new RunnerOptions
            {
                Provider = Enum.Parse<ProviderChoice>(r.GetValue(provider)!, ignoreCase: true),
                Threads = r.GetValue(threads),
                Optimization = RunnerOptions.ParseOptimization(r.GetValue(opt)!),
                BatchTokens = r.GetValue(batchTokens),
                LoopChunk = r.GetValue(loopChunk),
                IoBinding = r.GetValue(ioBinding),
                Log = line => Cli.Line(err, line),
            };
            var (info, runner) = members.Length > 1
                ? ModelIntake.OpenEnsemble(members, r.GetValue(task), r.GetValue(trainLength), runnerOptions)
                : ModelIntake.Open(path, r.GetValue(task), r.GetValue(trainLength), runnerOptions);
            using (runner)
            {
                Cli.Line(err, $"eval {info.Label} ({info.FileName}, trained at size {info.TrainLength}) with suite '{suiteDef.Name}' on {runner.Provider} ({runner.Device})" +
                    (runner.LoopChunk > 1 ? $", step loop in chunks of {runner.LoopChunk} steps" : "") + (runnerOptions.IoBinding ? ", IO binding" : "") +
                    (shardSpec.IsWhole ? "" : $", shard {shardSpec}"));
                var results = Evaluator.Run(info, runner, new EvalOptions
                {
                    Suite = suiteDef,
                    Levels = r.GetValue(levels)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    OutDir = dir,
                    Shard = shardSpec,
                    Resume = r.GetValue(resume),
                    BudgetMinutes = r.GetValue(budget),
                    BreakPoint = r.GetValue(breakPoint),
                    BreakPointOptions = new BreakPointOptions { Samples = r.GetValue(bpSamples), MaxSize = r.GetValue(bpMax), Seconds = r.GetValue(bpMinutes) * 60 },
                    MemoryLimitBytes = r.GetValue(memory) is { } gb ? (long)(gb * 1024 * 1024 * 1024) : null,
                    Verdicts = r.GetValue(verdicts),
                    Log = line => Cli.Line(err, line),
                });
                foreach (var line in Table(results)) Cli.Line(w, line);
                Cli.Line(w, $"reports in {Path.GetFullPath(dir)} (results.json, failures.jsonl, summary.md, index.html{(r.GetValue(verdicts) ? ", " + VerdictFile.FileName : "")})");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>The printed outcome: one line per level (accuracy, status and why it was trimmed or skipped),
    /// per pinned case, and the break point.</summary>
    public static IEnumerable<string> Table(Results results)
    {
        foreach (var l in results.Levels)
            yield return $"{l.Name,-8} size {l.Size.ToString("N0", CultureInfo.InvariantCulture),8}  " +
                (l.Total is { Samples: > 0 } t ? $"{ReportWriter.Pct(t.SequenceAccuracy),6} exact of {t.Samples,5}" : "not graded          ") +
                $"  {(l.Exhaustive && l.Note is null ? "exhaustive" : LevelStatus.Describe(l))}";
        foreach (var c in results.Cases)
            yield return $"case {c.Name}: {(c.Status == "run" ? (c.Exact ? "exact" : $"wrong from position {c.FirstWrong}") : c.Status)}";
        if (results.BreakPoint is { } bp) yield return bp.Verdict;
    }
}
