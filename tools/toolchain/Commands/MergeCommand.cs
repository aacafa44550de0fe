using System.CommandLine;
using Toolchain.Evaluate;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain merge DIR1 DIR2 ... --out DIR`: one report from the folders of shard runs.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var dirs = new Argument<string[]>("dirs") { Description = "output folders of `toolchain eval --shard i/N`", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "folder for the merged report", Required = true };
        var cmd = new Command("merge", "combine shard outputs into the report an unsharded run would give") { dirs, outDir };
        cmd.SetAction(r =>
        {
            var err = r.InvocationConfiguration.Error;
            string dir = Cli.RequireFolder(r.GetValue(outDir)!);
            var results = Merger.Merge(r.GetValue(dirs)!, dir, line => Cli.Line(err, line));
            Cli.Line(r.InvocationConfiguration.Output, $"merged {results.Run.MergedFrom!.Count} shard(s) of {results.Model.Task}/{results.Model.Arch} into {Path.GetFullPath(dir)}");
            return 0;
        });
        return cmd;
    }
}
