using System.CommandLine;

namespace Toolchain.Cli.Commands;

/// <summary>The whole command tree of `toolchain`.</summary>
public static class Root
{
    public static RootCommand Create()
    {
        var root = new RootCommand("toolchain: train, export and grade algorithm-learning networks (did it learn an algorithm, or only the training lengths?)");
        root.Subcommands.Add(TasksCommand.Create());
        root.Subcommands.Add(SampleCommand.Create());
        root.Subcommands.Add(SuitesCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(MergeCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(VerdictsDiffCommand.Create());
        root.Subcommands.Add(ZooCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(VisualizeCommand.Create());
        return root;
    }
}
