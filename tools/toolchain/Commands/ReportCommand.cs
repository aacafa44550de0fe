using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Cli.Commands;

/// <summary>
/// `toolchain report`: the main command. Grades every model of the zoo (models/*.onnx) on the standard suite
/// within one time budget shared by the models, prints the task/architecture x level table, and writes
/// reports/latest/index.html with the accuracy-vs-length overlay and a report per model.
/// </summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var models = new Option<string>("--models") { Description = "folder of ONNX models to grade", DefaultValueFactory = _ => "models" };
        var suite = new Option<string>("--suite") { Description = "built-in suite name or suite file", DefaultValueFactory = _ => "standard" };
        var budget = new Option<double>("--budget-minutes") { Description = "time budget for the whole report", DefaultValueFactory = _ => 8 }.MustBePositive();
        var outDir = new Option<string>("--out")
        {
            Description = "report folder: replaced whole when the new report is complete; a non-empty folder that is not a report is refused",
            DefaultValueFactory = _ => Path.Combine("reports", "latest"),
        };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0: default)", DefaultValueFactory = _ => 0 }.MustNotBeNegative();
        var regrade = new Option<bool>("--regrade") { Description = "grade every model again, ignoring the results cache" };
        var cacheDir = new Option<string?>("--cache") { Description = "results cache folder (default: 'cache' beside --out, i.e. reports/cache)" };
        var cmd = new Command("report", "grade the whole model zoo and write reports/latest/index.html") { models, suite, budget, outDir, threads, regrade, cacheDir };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            var err = r.InvocationConfiguration.Error;
            string dir = r.GetValue(models)!;
            if (!Directory.Exists(dir)) throw new UserError($"{dir}: no model folder; run from the repository root or pass --models DIR");
            var files = Directory.GetFiles(dir, "*.onnx").Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new UserError($"{dir}: no .onnx models; build the zoo with `toolchain zoo` or export one with `toolchain export`");
            var suiteDef = SuiteFile.Resolve(r.GetValue(suite)!);
            // the new report is built beside the old one and swapped in only when complete: nothing is deleted before
            using var folder = ReportFolder.Begin(r.GetValue(outDir)!);
            string output = folder.Staging;
            var clock = Stopwatch.StartNew();
            double total = r.GetValue(budget) * 60;
            var all = new List<(string Name, Results Results)>();
            var graded = new List<string>();
            // the cache: its own entries, and the zoo's gradings (models/NAME.report), matched by model, suite and grading code
            var cache = new ResultsCache(r.GetValue(cacheDir) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(output))!, "cache"),
                Directory.GetDirectories(dir, "*.report").Order(StringComparer.Ordinal).Select(d => Path.Combine(d, "results.json")));
            var hits = r.GetValue(regrade) ? [] : files.ToDictionary(f => f, f => cache.Find(CacheKey.For(f, suiteDef.Hash)));
            int toGrade = files.Count(f => hits.GetValueOrDefault(f) is null);
            var failed = new List<(string Name, string Reason)>();
            // a notice (CUDA unavailable) is the same for every model: print it once, not once per model
            var notices = new HashSet<string>(StringComparer.Ordinal);
            void RunnerLog(string line)
            {
                if (!line.StartsWith("notice: ", StringComparison.Ordinal) || notices.Add(line)) Cli.Line(err, line);
            }
            for (int i = 0; i < files.Count; i++)
            {
                string name = Path.GetFileNameWithoutExtension(files[i]);
                if (hits.GetValueOrDefault(files[i]) is { } hit)
                {
                    // graded before: the same model file, suite and grading code give the same results
                    ReportWriter.WriteAll(CreateFolder(Path.Combine(output, name)), hit.Results, hit.Failures);
                    all.Add((name, hit.Results));
                    graded.Add($"cached ({hit.GradedAt})");
                    Cli.Line(err, $"[{i + 1}/{files.Count}] {name}: from the cache ({hit.GradedAt}; {hit.Source})");
                    continue;
                }
                // an equal share of what is left, keeping a tenth in reserve for session start-up and reports
                double share = Math.Max(5, (total * 0.9 - clock.Elapsed.TotalSeconds) / Math.Max(1, toGrade--));
                try
                {
                    var (info, runner) = ModelIntake.Open(files[i], null, null, new RunnerOptions { Threads = r.GetValue(threads), Log = RunnerLog });
                    using (runner)
                    {
                        Cli.Line(err, $"[{i + 1}/{files.Count}] {name}: {info.Label} on {runner.Provider}, {share:0} s budget");
                        var results = Evaluator.Run(info, runner, new EvalOptions
                        {
                            Suite = suiteDef,
                            OutDir = Path.Combine(output, name),
                            BudgetMinutes = share / 60,
                            BreakPoint = true,
                            Log = line => Cli.Line(err, "    " + line),
                        });
                        all.Add((name, results));
                        graded.Add($"now ({DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC)");
                        cache.Store(Path.Combine(output, name), results, DateTimeOffset.UtcNow);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException and not StorageException and not FolderBusyException)
                {
                    // one broken or foreign model must not hide the rest of the zoo's results
                    string reason = Cli.OneLine(e);
                    failed.Add((name, reason));
                    Cli.Line(err, $"[{i + 1}/{files.Count}] {name}: not graded: {reason}");
                }
            }
            if (all.Count == 0) throw new UserError($"{dir}: none of the {files.Count} models could be graded (first: {failed[0].Name}: {failed[0].Reason})");
            var allResults = all.Select(a => a.Results).ToList();
            Comparer.Write(allResults, output, graded);
            string table = Comparer.Table(allResults, markdown: false, graded);
            w.Write(table);
            AtomicFile.Write(Path.Combine(output, "index.html"), Index(all, graded, failed, table, suiteDef, clock.Elapsed));
            folder.Commit();
            int cached = graded.Count(g => g.StartsWith("cached", StringComparison.Ordinal));
            Cli.Line(w, $"graded {all.Count} models ({cached} from the cache {cache.Folder}; --regrade grades them again) in " +
                $"{clock.Elapsed.TotalMinutes:0.0} min; report: {Path.GetFullPath(Path.Combine(folder.Target, "index.html"))}");
            foreach (var (name, reason) in failed) Cli.Line(err, $"not graded: {name}: {reason}");
            return failed.Count == 0 ? 0 : 1;
        });
        return cmd;
    }

    private static string CreateFolder(string path)
    {
        Directory.CreateDirectory(path);
        return path;
    }

    private static string Index(List<(string Name, Results Results)> all, List<string> graded, List<(string Name, string Reason)> failed, string table,
        SuiteDefinition suite, TimeSpan elapsed)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Toolchain zoo report</title>");
        html.Append("<style>body{font-family:sans-serif;margin:2em;max-width:90em}pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>\n");
        html.Append("<h1>Did it learn an algorithm, or only the training lengths?</h1>\n");
        html.Append($"<p>{all.Count} models graded on suite <code>{Plot.Esc(suite.Name)}</code> (sha256 {suite.Hash[..12]}) in {(elapsed.TotalMinutes >= 1 ? $"{elapsed.TotalMinutes:0.0} minutes" : $"{elapsed.TotalSeconds:0} s")}. ");
        html.Append("Levels are multiples of each model's training size (1x, 10x, ...); an exhaustive level such as k4 grades every input of ");
        html.Append("its size (k4: size 4). Trimmed levels (time budget) are marked *, and a level that was not graded says so. ");
        html.Append("Each model's own report has the per-family numbers, the reasons and the failing examples.</p>\n");
        html.Append("<p><a href=\"compare.html\">Comparison page</a>: the plot against tokens and against multiples of the training size, and the table.</p>\n");
        html.Append("<h2>Sequence accuracy against length</h2>\n").Append("<img src=\"compare.svg\" alt=\"accuracy vs length\">\n");
        html.Append($"<img src=\"{Comparer.MultiplesPlot}\" alt=\"accuracy vs multiple of the training size\">\n");
        html.Append("<h2>Table</h2>\n<p>The last column says whether a row was graded by this run or taken from the results cache ");
        html.Append("(same model file, suite and grading code), and when it was graded; <code>toolchain report --regrade</code> grades every model again.</p>\n<pre>").Append(Plot.Esc(table)).Append("</pre>\n<h2>Models</h2>\n<ul>\n");
        foreach (var ((name, r), when) in all.Zip(graded))
            html.Append($"<li><a href=\"{Uri.EscapeDataString(name)}/index.html\">{Plot.Esc(name)}</a>: {Plot.Esc(Comparer.Label(r))}; graded {Plot.Esc(when)}</li>\n");
        foreach (var (name, reason) in failed)
            html.Append($"<li>{Plot.Esc(name)}: <strong>not graded</strong>: {Plot.Esc(reason)}</li>\n");
        html.Append("</ul>\n</body></html>\n");
        return html.ToString();
    }
}
