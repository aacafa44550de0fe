using System.CommandLine;
using Toolchain.Evaluate;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain verdicts-diff A B`: two runs' verdicts.jsonl compared example for example.</summary>
public static class VerdictsDiffCommand
{
    public static Command Create()
    {
        var a = new Argument<string>("a") { Description = "verdicts.jsonl of run A (or its eval folder)" };
        var b = new Argument<string>("b") { Description = "verdicts.jsonl of run B (or its eval folder)" };
        var show = new Option<int>("--show") { Description = "differing examples to name", DefaultValueFactory = _ => 5 }.MustNotBeNegative();
        var cmd = new Command("verdicts-diff",
            "compare two `eval --verdicts` runs example for example over the examples both graded; exit 1 when a verdict differs or none is shared")
        { a, b, show };
        cmd.SetAction(r =>
        {
            var comparison = VerdictFile.Compare(r.GetValue(a)!, r.GetValue(b)!, r.GetValue(show));
            Cli.Line(r.InvocationConfiguration.Output, comparison.Describe());
            return comparison.Same ? 0 : Cli.CheckFailed;
        });
        return cmd;
    }
}
