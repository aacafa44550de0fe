using System.Xml.Linq;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Tests.Evaluate;

public class GateBudgetTests
{
    [Fact]
    public void A_failing_gate_exits_1_and_writes_junit_and_markdown_a_passing_one_exits_0()
    {
        using var tmp = new TempDir();
        string good = OracleModels.Save(OracleModels.Copy(trainLength: 10), tmp.Path, "copy.onnx");
        string bad = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 50, trainLength: 10), tmp.Path, "broken.onnx");
        CliRunner.InProcess("eval", good, "--suite", "quick", "--out", tmp["good"], "--provider", "cpu").Code.Should().Be(0);
        CliRunner.InProcess("eval", bad, "--suite", "quick", "--out", tmp["bad"], "--provider", "cpu", "--break-point").Code.Should().Be(0);

        File.WriteAllText(tmp["gates.yaml"], """
            - {task: copy, arch: oracle, level: 100x, metric: sequence_accuracy, min: 0.99}
            - {task: copy, arch: broken, level: 1x, metric: sequence_accuracy, min: 0.99}
            - {task: copy, arch: broken, level: 10x, metric: sequence_accuracy, min: 0.99}
            - {task: copy, arch: broken, metric: break_point, min: 40}
            """);
        var (code, output, err) = CliRunner.InProcess("compare", tmp["good/results.json"], tmp["bad/results.json"], "--out", tmp["cmp"], "--gate", tmp["gates.yaml"]);
        code.Should().Be(1, err);
        output.Should().Contain("copy/oracle (copy.onnx)").And.Contain("copy/broken (broken.onnx)");
        output.Should().Contain("FAIL  copy/broken 10x sequence_accuracy >= 0.99").And.Contain("gates: 1 of 4 failed");
        var junit = XDocument.Load(tmp["cmp/gates.junit.xml"]);
        var suite = junit.Root!.Element("testsuite")!;
        suite.Attribute("tests")!.Value.Should().Be("4");
        suite.Attribute("failures")!.Value.Should().Be("1");
        suite.Elements("testcase").Where(t => t.Element("failure") is not null).Should().ContainSingle()
            .Which.Attribute("name")!.Value.Should().Be("copy/broken 10x sequence_accuracy >= 0.99");
        File.ReadAllText(tmp["cmp/gates.md"]).Should().Contain("1 of 4 failed").And.Contain("**FAIL**");
        File.ReadAllText(tmp["cmp/compare.svg"]).Should().StartWith("<svg").And.Contain("copy/broken (broken.onnx)");
        File.Exists(tmp["cmp/compare.html"]).Should().BeTrue();

        File.WriteAllText(tmp["pass.yaml"], "gates:\n  - {task: copy, arch: oracle, level: 100x, metric: wilson_lower_95, min: 0.5}\n");
        var pass = CliRunner.InProcess("compare", tmp["good"], tmp["bad"], "--out", tmp["cmp2"], "--gate", tmp["pass.yaml"]);
        pass.Code.Should().Be(0, pass.Out);
        XDocument.Load(tmp["cmp2/gates.junit.xml"]).Root!.Element("testsuite")!.Attribute("failures")!.Value.Should().Be("0");

        // a rule nothing matches fails rather than passing vacuously; a typo in a rule is a clear error
        File.WriteAllText(tmp["none.yaml"], "- {task: badd, level: 1x, metric: sequence_accuracy, min: 0.5}\n");
        CliRunner.InProcess("compare", tmp["good"], "--gate", tmp["none.yaml"], "--out", tmp["cmp3"]).Code.Should().Be(1);
        File.WriteAllText(tmp["typo.yaml"], "- {task: copy, levle: 1x, metric: sequence_accuracy, min: 0.5}\n");
        var typo = CliRunner.InProcess("compare", tmp["good"], "--gate", tmp["typo.yaml"]);
        typo.Code.Should().Be(2);
        typo.Err.Should().Contain("typo.yaml:1:").And.Contain("'levle'");
    }

    [Fact]
    public void Budget_planner_trims_sample_counts_skips_what_cannot_fit_and_never_trims_exhaustive_levels()
    {
        var task = TaskRegistry.Get("copy");
        var suite = SuiteFile.LoadBuiltIn("standard");
        var levels = suite.Resolve(task, 20); // k4 exhaustive (16), 1x (176), 10x (56), 100x (28), 1000x (7)
        double Est(int length, long samples) => 1e-3 * samples * length; // 1 ms per token
        // 16*4 + 176*20 + 56*200 = 14,784 ms fit in 30 s; 100x needs 56 s: trimmed; 1000x: one sample per family needs 80 s: skipped
        var (plans, _, trims) = BudgetPlanner.Plan(task, levels, [], Est, 30, l => 1, long.MaxValue);
        plans.Select(p => p.Status).Should().Equal("full", "full", "full", "trimmed", "skipped");
        var hundred = plans[3];
        hundred.Run.Sum(c => c.Count).Should().BeLessThan(28).And.BeGreaterThan(0);
        hundred.Run.Should().OnlyContain(c => c.Count >= 1);
        Est(hundred.Length, hundred.Run.Sum(c => c.Count)).Should().BeLessThanOrEqualTo(30 - 14.784 + 1e-9);
        trims.Should().HaveCount(2);
        trims[0].Should().StartWith("level 100x: trimmed to");
        trims[1].Should().StartWith("level 1000x: skipped");

        // an exhaustive level that does not fit whole is skipped, not cut short
        (plans, _, _) = BudgetPlanner.Plan(task, levels, [], Est, 0.01, l => 1, long.MaxValue);
        plans[0].Status.Should().Be("skipped");
        plans[0].Run.Should().BeEmpty();

        // memory: a level whose single example cannot fit never starts
        (plans, _, trims) = BudgetPlanner.Plan(task, levels, [], null, null, l => l * 1000L, 10_000_000);
        plans.Select(p => p.Status).Should().Equal("full", "full", "full", "full", "skipped");
        trims.Single().Should().Contain("length 20,000 needs about");
    }

    [Fact]
    public void Eval_with_little_memory_skips_the_long_level_and_the_report_says_so()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        // one example at length 20,000 needs about 20,000 x (3x4 + 12 + 128x4x32) bytes = 328 MB > 0.8 x 0.25 GiB
        var (code, output, err) = CliRunner.InProcess("eval", model, "--out", tmp["out"], "--provider", "cpu", "--max-memory-gb", "0.25", "--levels", "100x,1000x");
        code.Should().Be(0, err);
        var levels = EvalTests.ReadResults(tmp["out"])["levels"]!.AsArray();
        levels[0]!["status"]!.GetValue<string>().Should().Be("complete");
        levels[1]!["status"]!.GetValue<string>().Should().Be("skipped");
        levels[1]!["total"]!["samples"]!.GetValue<int>().Should().Be(0);
        output.Should().Contain("not graded: one example at length 20,000 needs about").And.Contain("over the limit of 80% of the");
        string summary = File.ReadAllText(tmp["out/summary.md"]);
        summary.Should().Contain("Trimmed or skipped").And.NotContain("skipped: skipped");

        // a level that was not graded never shows as 0%: not in a table, a plot or the comparison
        var rows = summary.Split('\n').Where(l => l.StartsWith("| 1000x", StringComparison.Ordinal)).ToList();
        rows.Should().NotBeEmpty().And.OnlyContain(l => l.Contains("not graded") && !l.Contains("0.0%") && l.Contains("| 0 of "));
        string html = File.ReadAllText(tmp["out/index.html"]);
        html.Should().Contain("1000x: not graded").And.Contain("not graded: one example at length 20,000");
        var results = Comparer.Load([tmp["out"]]).Select(r => r.Results).ToList();
        Comparer.Table(results, markdown: true).Should().Contain("| not graded |").And.Contain("|\n\nSequence accuracy");
    }

    [Fact]
    public void Notes_of_older_runs_lose_their_repeated_status_and_name_the_memory_limit()
    {
        LevelStatus.Reason("skipped: skipped: needs about 0:20 even at one sample per family, 0:05 of the budget left")
            .Should().Be("needs about 0:20 even at one sample per family, 0:05 of the budget left");
        LevelStatus.Reason("trimmed to 11 of 96 samples (random 5/64): the whole level needs about 1:00").Should().StartWith("11 of 96 samples");
        LevelStatus.Reason("one example at length 1,000 needs about 17.19 GiB, 19.81 GiB available")
            .Should().Be("one example at length 1,000 needs about 17.19 GiB, over the limit of 80% of the 19.81 GiB available (15.85 GiB)");
    }

    [Fact]
    public void The_time_probe_scales_from_its_longest_probe_so_fixed_overhead_is_not_extrapolated_as_length_squared()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var (info, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner)
        {
            runner.BeforeRun = (_, _) => Thread.Sleep(5); // 5 ms per run whatever the length: overhead, not work
            var cost = CostModel.Probe(runner, info.Task, 4, exponent: 2, seed: 1, maxLength: 2_000);
            cost.ProbeLength.Should().BeGreaterThanOrEqualTo(1_000, "the probe doubles the size while runs stay cheap");
            // scaling 5 ms from length 4 as length^2 would predict 5 ms / 4 x 500^2 = 312 s for one example at 2,000
            cost.Seconds(2_000, 1).Should().BeLessThan(0.1);
        }
    }

    [Fact]
    public void Eval_with_a_budget_probes_and_records_the_budget()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var (code, _, err) = CliRunner.InProcess("eval", model, "--out", tmp["out"], "--provider", "cpu", "--suite", "quick", "--budget-minutes", "5");
        code.Should().Be(0, err);
        err.Should().Contain("budget: probe at length ");
        var r = EvalTests.ReadResults(tmp["out"]);
        r["budget"]!["minutes"]!.GetValue<double>().Should().Be(5);
        r["levels"]!.AsArray().Should().OnlyContain(l => l!["status"]!.GetValue<string>() == "complete");
    }

    [Fact]
    public void Shards_come_from_the_option_or_the_job_array_variables_and_partition_the_units()
    {
        Shard.FromEnvironment(_ => null).Should().BeNull();
        Shard.FromEnvironment(v => v switch { "JOB_COMPLETION_INDEX" => "2", "JOB_COMPLETION_COUNT" => "4", _ => null }).Should().Be(new Shard(2, 4));
        Shard.FromEnvironment(v => v switch { "SLURM_ARRAY_TASK_ID" => "3", "SLURM_ARRAY_TASK_COUNT" => "3", "SLURM_ARRAY_TASK_MIN" => "1", _ => null }).Should().Be(new Shard(2, 3));
        var act = () => Shard.FromEnvironment(v => v == "JOB_COMPLETION_INDEX" ? "1" : null);
        act.Should().Throw<EvaluationException>().WithMessage("*JOB_COMPLETION_COUNT*");
        FluentActions.Invoking(() => Shard.Parse("4/4")).Should().Throw<EvaluationException>().WithMessage("*0 <= i < N*");

        var units = Enumerable.Range(0, 40).Select(i => new WorkUnit($"u{i}", "l", "f", i, i + 1, 1, 1, 1 + i % 7, false)).ToList();
        var parts = Enumerable.Range(0, 3).Select(i => WorkPlanner.ForShard(units, new Shard(i, 3))).ToList();
        parts.SelectMany(p => p).Select(u => u.Key).Should().BeEquivalentTo(units.Select(u => u.Key));
        parts.Sum(p => p.Count).Should().Be(40);
        var loads = parts.Select(p => p.Sum(u => u.Cost)).ToList();
        (loads.Max() - loads.Min()).Should().BeLessThanOrEqualTo(7); // balanced to within the largest unit
    }

    [Fact]
    public void Wilson_lower_bound_matches_known_values()
    {
        Stats.WilsonLower(10, 10).Should().BeApproximately(0.7225, 1e-4);
        Stats.WilsonLower(0, 10).Should().Be(0);
        Stats.WilsonLower(50, 100).Should().BeApproximately(0.4038, 1e-4);
        Stats.WilsonLower(0, 0).Should().Be(0);
    }
}
