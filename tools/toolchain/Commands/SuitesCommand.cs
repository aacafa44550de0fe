using System.CommandLine;
using Toolchain.Suites;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain suites [NAME|FILE] [--task T --train-length K]`: lists built-in suites, or checks
/// and shows one suite (its canonical form and, for a task, the concrete levels).</summary>
public static class SuitesCommand
{
    public static Command Create()
    {
        var suite = new Argument<string?>("suite") { Description = "built-in suite name or suite file", Arity = ArgumentArity.ZeroOrOne };
        var task = new Option<string?>("--task") { Description = "show the levels made concrete for this task" };
        var trainLength = new Option<int>("--train-length") { Description = "training size k the levels multiply", DefaultValueFactory = _ => 20 };
        var cmd = new Command("suites", "list built-in suites, or validate and show one") { suite, task, trainLength };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            string? name = r.GetValue(suite);
            if (name is null)
            {
                foreach (var n in SuiteFile.BuiltInNames)
                    Cli.Line(w, $"{n,-12} {SuiteFile.LoadBuiltIn(n).Description}");
                return 0;
            }
            var def = SuiteFile.Resolve(name);
            w.Write(SuiteFile.ToYaml(def));
            Cli.Line(w, $"# sha256 {def.Hash}");
            if (r.GetValue(task) is { } taskName)
            {
                var t = TaskRegistry.Get(taskName);
                foreach (var level in def.Resolve(t, r.GetValue(trainLength)))
                    Cli.Line(w, $"# level {level.Name}: size {level.Size} (x{level.Multiple:0.##}), {level.TotalSamples} samples: " +
                        string.Join(", ", level.Counts.Select(c => $"{c.Family} {c.Count}")));
                foreach (var (c, ex) in def.CaseExamples(t))
                    Cli.Line(w, $"# case {c.Name}: size {ex.Size}, length {ex.Length}");
            }
            return 0;
        });
        return cmd;
    }
}
