using Toolchain.Suites;
using System.CommandLine;
using Toolchain.Evaluate;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain compare A/results.json B/results.json ... [--out DIR] [--gate gates.yaml]`.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("results") { Description = "results.json files (or evaluation folders)", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string?>("--out") { Description = "folder for compare.svg/.html/.md (and gates.junit.xml, gates.md)" };
        var gate = new Option<string?>("--gate") { Description = "gates file (YAML rules); exit code 1 when a rule fails" };
        var cmd = new Command("compare", "table (models x levels) and overlay plot of several results; optional CI gates") { files, outDir, gate };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            var loaded = Comparer.Load(r.GetValue(files)!);
            var results = loaded.Select(l => l.Results).ToList();
            var rules = r.GetValue(gate) is { } g ? Gates.Load(g) : null;
            w.Write(Comparer.Table(results, markdown: false));
            string? dir = r.GetValue(outDir) is { } given ? Cli.RequireFolder(given) : null;
            if (dir is not null) Comparer.Write(results, dir);
            if (rules is null) return 0;
            var outcomes = Gates.Check(rules, results);
            string gatesDir = dir ?? ".";
            Directory.CreateDirectory(gatesDir);
            string md = Gates.Markdown(outcomes);
            AtomicFile.Write(Path.Combine(gatesDir, "gates.junit.xml"), Gates.JUnit(outcomes));
            AtomicFile.Write(Path.Combine(gatesDir, "gates.md"), md);
            if (Environment.GetEnvironmentVariable("GITHUB_STEP_SUMMARY") is { Length: > 0 } summary)
            {
                try { File.AppendAllText(summary, md + "\n"); }
                catch (Exception e) when (StorageException.IsStorageFailure(e)) { throw StorageException.From(summary, e); }
            }
            foreach (var o in outcomes)
                Cli.Line(w, $"{(o.Passed ? "pass" : "FAIL")}  {o.Rule.Describe()}  {o.Model}: {o.Message}");
            int failed = outcomes.Count(o => !o.Passed);
            Cli.Line(w, failed == 0 ? $"gates: all {outcomes.Count} passed" : $"gates: {failed} of {outcomes.Count} failed");
            return failed == 0 ? 0 : Cli.CheckFailed;
        });
        return cmd;
    }
}
