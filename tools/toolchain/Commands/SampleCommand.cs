using System.CommandLine;
using Toolchain.Suites;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain sample TASK --length K --count N --seed S [--family F]`: prints examples readably.
/// The same arguments print the same bytes on every run and machine.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var task = new Argument<string>("task") { Description = "registered task name (see `toolchain tasks`)" };
        var length = new Option<int>("--length", "-k") { Description = "instance size k: digits per operand for arithmetic tasks, input symbols otherwise", Required = true };
        var count = new Option<int>("--count", "-n") { Description = "number of examples", DefaultValueFactory = _ => 4 };
        var seed = new Option<ulong>("--seed", "-s") { Description = "seed of the example stream", DefaultValueFactory = _ => 1 };
        var family = new Option<string>("--family", "-f") { Description = "case family (random or a hard family; see `toolchain tasks`)", DefaultValueFactory = _ => AlgorithmicTask.Random };
        var cmd = new Command("sample", "print examples of a task") { task, length, count, seed, family };
        cmd.SetAction(r =>
        {
            var t = TaskRegistry.Get(r.GetValue(task)!);
            int k = r.GetValue(length), n = r.GetValue(count);
            if (n < 0) throw new UserError($"--count must be at least 0, got {n}");
            string f = r.GetValue(family)!;
            ulong s = r.GetValue(seed);
            t.ValidateSize(k);
            if (!t.Families.Contains(f))
                throw new UserError($"task '{t.Name}' has no case family '{f}'; its families are: {string.Join(", ", t.Families)}");
            var w = r.InvocationConfiguration.Output;
            Cli.Line(w, $"# {t.Name}: {t.Description}; size k={k}, length {t.LengthForSize(k)}, family {f}, seed {s}");
            for (int i = 0; i < n; i++)
            {
                var ex = t.Generate(k, f, Rng.For(s, t.Name, k, f, i));
                string? what = t.Describe(ex.Input);
                Cli.Line(w, what is null ? $"#{i}" : $"#{i}  {what}");
                Cli.Line(w, "  input : " + t.Render(ex.Input));
                Cli.Line(w, "  target: " + t.Render(ex.Target));
            }
            return 0;
        });
        return cmd;
    }
}
