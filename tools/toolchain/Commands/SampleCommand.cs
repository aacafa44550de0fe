using System.CommandLine;
using Toolchain.Suites;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain sample TASK --length K --count N --seed S [--family F]`: prints examples readably.
/// The same arguments print the same bytes on every run and machine. With `--level L` (and `--suite`), it
/// prints the examples `eval` grades at that level instead, from `--index I` on: the command that
/// failures.jsonl gives for each failed example.</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var task = new Argument<string>("task") { Description = "registered task name (see `toolchain tasks`)" };
        var length = new Option<int>("--length", "-k")
        {
            Description = "instance size k: digits per operand for arithmetic tasks, input symbols otherwise",
            Required = true,
        };
        var count = new Option<int>("--count", "-n") { Description = "number of examples", DefaultValueFactory = _ => 4 };
        var seed = new Option<ulong>("--seed", "-s")
        {
            Description = "seed of the example stream (with --level, the suite's seed is used instead)",
            DefaultValueFactory = _ => 1,
        };
        var family = new Option<string>("--family", "-f")
        {
            Description = "case family (random or a hard family; see `toolchain tasks`)",
            DefaultValueFactory = _ => AlgorithmicTask.Random,
        };
        var suite = new Option<string>("--suite")
        {
            Description = "with --level: built-in suite name or suite file",
            DefaultValueFactory = _ => "standard",
        };
        var level = new Option<string?>("--level")
        {
            Description = "print the examples eval grades at this level of --suite (at size --length), not a free stream",
        };
        var index = new Option<int>("--index")
        {
            Description = "with --level: the first example's index (the index in failures.jsonl)",
            DefaultValueFactory = _ => 0,
        };
        var cmd = new Command("sample", "print examples of a task, or the examples eval grades at a suite level")
        {
            task, length, count, seed, family, suite, level, index,
        };
        cmd.SetAction(r =>
        {
            var t = TaskRegistry.Get(r.GetValue(task)!);
            int size = r.GetValue(length), n = r.GetValue(count), first = r.GetValue(index);
            if (n < 0) throw new UserError($"--count must be at least 0, got {n}");
            if (first < 0) throw new UserError($"--index must be at least 0, got {first}");
            string f = r.GetValue(family)!;
            t.ValidateSize(size);
            var w = r.InvocationConfiguration.Output;
            if (r.GetValue(level) is { } levelName)
            {
                PrintLevel(w, t, SuiteFile.Resolve(r.GetValue(suite)!), levelName, size, f, first, n);
                return 0;
            }
            CheckFamily(t, f);
            ulong s = r.GetValue(seed);
            Cli.Line(w, $"# {t.Name}: {t.Description}; size k={size}, length {t.LengthForSize(size)}, family {f}, seed {s}");
            for (int i = 0; i < n; i++) Print(w, t, $"#{i}", t.Generate(size, f, Rng.For(s, t.Name, size, f, i)));
            return 0;
        });
        return cmd;
    }

    /// <summary>Examples [first, first + count) of a family at a suite level of size k, as eval draws them
    /// (<see cref="SuiteDefinition.Instance"/>: seeded by the suite's seed, the task, level, size, family and
    /// index).</summary>
    private static void PrintLevel(TextWriter w, AlgorithmicTask task, SuiteDefinition suite, string levelName, int size,
        string family, int first, int count)
    {
        var level = suite.Levels.FirstOrDefault(l => l.Name == levelName)
            ?? throw new UserError($"suite '{suite.Name}' has no level '{levelName}'; " +
                $"its levels: {string.Join(", ", suite.Levels.Select(l => l.Name))}");
        if (level.Size is { } fixedSize && fixedSize != size)
            throw new UserError($"level '{levelName}' of suite '{suite.Name}' has size {fixedSize}; pass --length {fixedSize}");
        if (level.Exhaustive)
        {
            family = "exhaustive";
            long inputs = SuiteDefinition.ExhaustiveCount(task, size);
            if (first + (long)count > inputs)
                throw new UserError($"level '{levelName}' has {inputs} inputs of size {size}: --index plus --count must not pass that");
        }
        else CheckFamily(task, family);
        var resolved = new ResolvedLevel(level.Name, size, 0, level.Exhaustive, []);
        Cli.Line(w, $"# {task.Name}: {task.Description}; suite {suite.Name} (seed {suite.Seed}), level {level.Name}, " +
            $"size k={size}, length {task.LengthForSize(size)}, family {family}, as eval grades it");
        for (int i = first; i < first + count; i++) Print(w, task, $"#{i}", suite.Instance(task, resolved, family, i));
    }

    private static void CheckFamily(AlgorithmicTask task, string family)
    {
        if (!task.Families.Contains(family))
            throw new UserError($"task '{task.Name}' has no case family '{family}'; its families are: {string.Join(", ", task.Families)}");
    }

    private static void Print(TextWriter w, AlgorithmicTask task, string label, Example example)
    {
        string? what = task.Describe(example.Input);
        Cli.Line(w, what is null ? label : $"{label}  {what}");
        Cli.Line(w, "  input : " + task.Render(example.Input));
        Cli.Line(w, "  target: " + task.Render(example.Target));
    }
}
