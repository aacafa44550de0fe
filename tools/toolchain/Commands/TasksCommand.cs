using System.CommandLine;
using System.Text.Json;
using Toolchain.Suites;
using Toolchain.Suites.Tasks;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain tasks [--json]`: the registered tasks with their vocabularies and families.</summary>
public static class TasksCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "machine-readable: name, vocab in id order, families, description" };
        var cmd = new Command("tasks", "list the registered tasks with their vocabularies") { json };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                var rows = TaskRegistry.All.Select(t => new
                {
                    name = t.Name,
                    vocab = t.Vocab,
                    families = t.Families,
                    length = t is ArithmeticTask ? "2k+1" : t.LengthForSize(2) == 4 ? "2k" : "k",
                    description = t.Description,
                });
                Cli.Line(w, JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }).ReplaceLineEndings("\n"));
                return 0;
            }
            Cli.Line(w, $"{"task",-12} {"vocab (id order)",-26} {"length",-6} description");
            foreach (var t in TaskRegistry.All)
            {
                string length = t is ArithmeticTask ? "2k+1" : t.LengthForSize(2) == 4 ? "2k" : "k";
                Cli.Line(w, $"{t.Name,-12} {string.Join(" ", t.Vocab),-26} {length,-6} {t.Description}");
                Cli.Line(w, $"{"",-12} families: {string.Join(", ", t.Families)}");
            }
            return 0;
        });
        return cmd;
    }
}
