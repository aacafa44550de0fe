using System.Text.Json.Nodes;
using Toolchain.Evaluate;
using Toolchain.Suites;
using Toolchain.Tests.Zoo;

namespace Toolchain.Tests.Evaluate;

/// <summary>`eval --verdicts` writes the verdict on every graded example (verdicts.jsonl), the same file after a resume
/// and after a merge of shards; `verdicts-diff` compares two such files example for example.</summary>
public class VerdictTests
{
    private static string ZooModel(string name) => Path.Combine(ZooTests.RepoRoot(), "models", name + ".onnx");

    // the zoo's dngpu-port-badd (the first port's model, frozen) at 1x of the quick suite: 38 examples in 12 families, one of them wrong (a carry chain)
    private static readonly string[] Quick1x = ["--suite", "quick", "--levels", "1x", "--provider", "cpu", "--verdicts"];

    private static List<JsonNode> Lines(string dir) =>
        File.ReadAllLines(Path.Combine(dir, VerdictFile.FileName)).Select(l => JsonNode.Parse(l)!).ToList();

    [Fact]
    public void Verdicts_of_a_zoo_model_match_its_accuracy_and_survive_resume_and_merge()
    {
        using var tmp = new TempDir();
        string model = ZooModel("dngpu-port-badd");
        var whole = CliRunner.InProcess(["eval", model, "--out", tmp["whole"], .. Quick1x]);
        whole.Code.Should().Be(0, whole.Err);
        whole.Out.Should().Contain(VerdictFile.FileName);

        // one line per unit, sorted by family; its 1s and 0s are the exact counts of results.json
        var lines = Lines(tmp["whole"]);
        lines.Select(l => l["family"]!.GetValue<string>()).Should().BeInAscendingOrder(StringComparer.Ordinal);
        var level = EvalTests.ReadResults(tmp["whole"])["levels"]!.AsArray().Single()!;
        foreach (var family in level["families"]!.AsArray())
        {
            string name = family!["family"]!.GetValue<string>();
            string bits = string.Concat(lines.Where(l => l["family"]!.GetValue<string>() == name).Select(l => l["verdicts"]!.GetValue<string>()));
            bits.Length.Should().Be(family["samples"]!.GetValue<int>(), name);
            bits.Count(c => c == '1').Should().Be(family["exact"]!.GetValue<int>(), name);
        }
        string all = string.Concat(lines.Select(l => l["verdicts"]!.GetValue<string>()));
        all.Should().HaveLength(16 + 11 * 2).And.Contain("0", "the zoo model gets a carry chain wrong at 1x").And.Contain("1");

        // stopped after 4 of the 12 units, then resumed from the command line: the same file, byte for byte
        using var cts = new CancellationTokenSource();
        int units = 0;
        var (info, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner)
        {
            var stopped = () => Evaluator.Run(info, runner, new EvalOptions
            {
                Suite = SuiteFile.LoadBuiltIn("quick"), Levels = ["1x"], OutDir = tmp["resumed"], Verdicts = true, Cancel = cts.Token,
                AfterUnit = _ => { if (++units == 4) cts.Cancel(); },
            });
            stopped.Should().Throw<OperationCanceledException>();
        }
        File.Exists(tmp["resumed/" + VerdictFile.FileName]).Should().BeFalse("nothing is reported before the run ends");
        var resumed = CliRunner.InProcess(["eval", model, "--out", tmp["resumed"], "--resume", .. Quick1x]);
        resumed.Code.Should().Be(0, resumed.Err);
        resumed.Err.Should().Contain("resuming: 4 completed units");
        File.ReadAllBytes(tmp["resumed/" + VerdictFile.FileName]).Should().Equal(File.ReadAllBytes(tmp["whole/" + VerdictFile.FileName]));

        // two shards merged: the unsharded file
        for (int i = 0; i < 2; i++)
            CliRunner.InProcess(["eval", model, "--out", tmp[$"shard{i}"], "--shard", $"{i}/2", .. Quick1x]).Code.Should().Be(0);
        Lines(tmp["shard0"]).Should().NotBeEmpty().And.HaveCountLessThan(lines.Count, "each shard grades a share of the units");
        var merged = CliRunner.InProcess("merge", tmp["shard0"], tmp["shard1"], "--out", tmp["merged"]);
        merged.Code.Should().Be(0, merged.Err);
        File.ReadAllBytes(tmp["merged/" + VerdictFile.FileName]).Should().Equal(File.ReadAllBytes(tmp["whole/" + VerdictFile.FileName]));

        var diff = CliRunner.InProcess("verdicts-diff", tmp["whole"], tmp["merged/" + VerdictFile.FileName]);
        diff.Code.Should().Be(0, diff.Err);
        diff.Out.Trim().Should().Be("verdicts: 38 examples in both files; 0 differ");

        // without --verdicts no file is written, and merging such shards writes none either
        CliRunner.InProcess("eval", model, "--suite", "quick", "--levels", "1x", "--provider", "cpu", "--out", tmp["plain"]).Code.Should().Be(0);
        File.Exists(tmp["plain/" + VerdictFile.FileName]).Should().BeFalse();
    }

    [Fact]
    public void Verdicts_diff_names_the_differing_examples_and_fails_the_check()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["a.jsonl"],
            """
            {"level":"1x","family":"random","from":0,"verdicts":"1101"}
            {"level":"1x","family":"random","from":4,"verdicts":"11"}
            {"level":"cases","family":"case:ones","from":0,"verdicts":"1"}

            """);
        File.WriteAllText(tmp["b.jsonl"],
            """
            {"level":"1x","family":"random","from":0,"verdicts":"1001"}
            {"level":"cases","family":"case:ones","from":0,"verdicts":"0"}
            {"level":"10x","family":"random","from":0,"verdicts":"1"}

            """);
        var (code, output, _) = CliRunner.InProcess("verdicts-diff", tmp["a.jsonl"], tmp["b.jsonl"]);
        code.Should().Be(1, "a differing verdict is a failed check");
        output.Trim().Should().Be("verdicts: 5 examples in both files; 2 differ (1x/random/1: A right, B wrong, cases/case:ones/0: A right, B wrong); " +
            "2 only in A, 1 only in B (not compared)");

        File.WriteAllText(tmp["c.jsonl"], """{"level":"100x","family":"random","from":0,"verdicts":"1"}""" + "\n");
        var none = CliRunner.InProcess("verdicts-diff", tmp["a.jsonl"], tmp["c.jsonl"]);
        none.Code.Should().Be(1, "two runs with nothing in common prove nothing");
        none.Out.Should().Contain("nothing to compare");

        File.WriteAllText(tmp["bad.jsonl"], """{"level":"1x","family":"random","from":0,"verdicts":"1x1"}""" + "\n");
        var bad = CliRunner.InProcess("verdicts-diff", tmp["a.jsonl"], tmp["bad.jsonl"]);
        bad.Code.Should().Be(2);
        bad.Err.Should().StartWith("error: ").And.Contain("bad.jsonl', line 1").And.NotContain("   at ");
        var missing = CliRunner.InProcess("verdicts-diff", tmp["a.jsonl"], tmp["none"]);
        missing.Code.Should().Be(2);
        missing.Err.Should().Contain("--verdicts");
    }
}
