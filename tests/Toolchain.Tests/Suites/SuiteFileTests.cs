using Toolchain.Suites;

namespace Toolchain.Tests.Suites;

public class SuiteFileTests
{
    [Fact]
    public void Built_in_suites_load_and_round_trip()
    {
        SuiteFile.BuiltInNames.Should().Contain(["standard", "quick"]);
        foreach (var name in SuiteFile.BuiltInNames)
        {
            var suite = SuiteFile.LoadBuiltIn(name);
            var again = SuiteFile.Parse(SuiteFile.ToYaml(suite), "roundtrip.yaml");
            SuiteFile.ToYaml(again).Should().Be(SuiteFile.ToYaml(suite));
            again.Hash.Should().Be(suite.Hash);
            again.Levels.Select(l => (l.Name, l.Multiple, l.Size, l.Exhaustive)).Should().Equal(suite.Levels.Select(l => (l.Name, l.Multiple, l.Size, l.Exhaustive)));
        }
    }

    private const string Custom = """
        name: custom
        description: a pinned regression suite
        seed: 42
        levels:
          - multiple: 1
            samples: 8
          - name: huge
            multiple: 100
            samples: {random: 2, carry: 3}
          - size: 3
            exhaustive: true
        cases:
          - name: ones-plus-one
            task: badd
            operands: ["2^64-1", "1"]
          - name: written-in-binary
            task: bmul
            operands: ["10", "110"]
            notation: task
            size: 8
          - name: palindrome
            symbols: "0110"
        """;

    [Fact]
    public void A_custom_suite_resolves_levels_and_encodes_pinned_cases()
    {
        var suite = SuiteFile.Parse(Custom, "custom.yaml");
        SuiteFile.Parse(SuiteFile.ToYaml(suite), "again.yaml").Hash.Should().Be(suite.Hash);
        var badd = TaskRegistry.Get("badd");
        var levels = suite.Resolve(badd, 20);
        levels.Select(l => l.Size).Should().Equal(20, 2000, 3);
        levels[0].Counts.Should().HaveCount(badd.Families.Count - badd.OptInFamilies.Count).And.OnlyContain(c => c.Count == 8);
        levels[1].Counts.Should().Equal(("random", 2), ("carry", 3));
        levels[2].Exhaustive.Should().BeTrue();
        levels[2].TotalSamples.Should().Be(64); // 2^3 x 2^3 operand pairs

        var all = Enumerable.Range(0, 64).Select(i => suite.Instance(badd, levels[2], "exhaustive", i)).ToList();
        all.Select(e => badd.Render(e.Input)).Distinct().Should().HaveCount(64);

        var cases = suite.CaseExamples(badd).ToList();
        cases.Should().HaveCount(1);
        badd.Render(cases[0].Example.Target).Should().Be(new string('0', 64) + "1" + new string('_', 64));
        var bmulCase = suite.CaseExamples(TaskRegistry.Get("bmul")).Single();
        TaskRegistry.Get("bmul").Describe(bmulCase.Example.Input).Should().Be("2 * 6 = 12");
        suite.CaseExamples(TaskRegistry.Get("reverse")).Single().Example.Target.Should().Equal(1, 2, 2, 1);
    }

    [Fact]
    public void Instances_are_a_pure_function_of_seed_level_family_and_index()
    {
        var suite = SuiteFile.LoadBuiltIn("standard");
        var task = TaskRegistry.Get("bmul");
        var level = suite.Resolve(task, 20)[1];
        var a = suite.Instance(task, level, "random", 5);
        var b = suite.Instance(task, level, "random", 5);
        a.Input.Should().Equal(b.Input);
        suite.Instance(task, level, "random", 6).Input.Should().NotEqual(a.Input);
    }

    [Theory]
    [InlineData("name: x\nseed: 1\nlevels:\n  - multiple: 1\n    sample: 3\n", 5, "levels[0].sample", "unknown field")]
    [InlineData("name: x\nseed: -1\nlevels:\n  - multiple: 1\n    samples: 3\n", 2, "seed", "non-negative")]
    [InlineData("name: x\nseed: 1\nlevels:\n  - multiple: 1\n    samples: lots\n", 5, "levels[0].samples", "whole number")]
    [InlineData("name: x\nseed: 1\nlevels:\n  - multiple: 1\n    size: 4\n    samples: 3\n", 4, "levels[0]", "exactly one of")]
    [InlineData("name: x\nseed: 1\nlevels: []\n", 3, "levels", "non-empty")]
    [InlineData("name: x\nlevels:\n  - multiple: 1\n    samples: 1\n", 1, "seed", "missing")]
    [InlineData("name: x\nseed: 1\nlevels:\n  - multiple: 1\n    samples: 1\ncases:\n  - name: c\n    task: badd\n    operands: [\"2^9\", \"1\"]\n    size: 3\n", 7, "cases[0]", "need 10 digits")]
    [InlineData("name: x\nseed: 1\nlevels:\n  - multiple: 1\n    samples: 1\ncases:\n  - name: c\n    task: nosuch\n    symbols: \"01\"\n", 8, "cases[0].task", "unknown task")]
    [InlineData("name: x\nseed: 1\nlevels:\n  - size: 40\n    exhaustive: true\n", 0, "", "")]
    [InlineData("name: [x\nseed: 1\n", 0, "", "not valid YAML")]
    public void Malformed_suite_files_fail_naming_file_line_and_field(string text, int line, string field, string problem)
    {
        if (line == 0 && problem.Length == 0)
        {
            // parses, but an exhaustive level of 2^80 inputs is refused when it is made concrete
            var suite = SuiteFile.Parse(text, "big.yaml");
            FluentActions.Invoking(() => suite.Resolve(TaskRegistry.Get("badd"), 20)).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*exhaustive*limit*");
            return;
        }
        var act = FluentActions.Invoking(() => SuiteFile.Parse(text, "bad.yaml"));
        var e = act.Should().Throw<SuiteFormatException>().Which;
        e.File.Should().Be("bad.yaml");
        e.Message.Should().Contain(problem);
        if (line > 0)
        {
            e.Line.Should().Be(line);
            e.Field.Should().Be(field);
            e.Message.Should().StartWith($"bad.yaml:{line}:");
        }
    }

    [Fact]
    public void Expressions_evaluate_and_bad_ones_fail()
    {
        Expression.Evaluate("2^10-1").Should().Be(1023);
        Expression.Evaluate("(1+2)*3^2").Should().Be(27);
        Expression.Evaluate("2^3^2").Should().Be(512);
        Expression.Evaluate("1_000").Should().Be(1000);
        FluentActions.Invoking(() => Expression.Evaluate("2^")).Should().Throw<FormatException>();
        FluentActions.Invoking(() => Expression.Evaluate("2x")).Should().Throw<FormatException>().WithMessage("*'x'*");
    }
}
