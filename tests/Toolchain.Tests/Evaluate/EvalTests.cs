using System.Text.Json;
using System.Text.Json.Nodes;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Tests.Evaluate;

public class EvalTests
{
    internal static JsonNode ReadResults(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "results.json")))!;

    /// <summary>The metrics part of results.json (levels, pinned cases, break point without probe timings), as canonical text.</summary>
    internal static string Metrics(string dir)
    {
        var r = ReadResults(dir);
        foreach (var probe in r["break_point"]?["probes"]?.AsArray() ?? [])
            probe!.AsObject().Remove("seconds"); // timing, not a metric
        return new JsonObject
        {
            ["levels"] = r["levels"]!.DeepClone(),
            ["cases"] = r["cases"]!.DeepClone(),
            ["break_point"] = r["break_point"]?.DeepClone(),
        }.ToJsonString();
    }

    [Fact]
    public void Copy_oracle_scores_100_percent_at_every_level_including_1000x_and_the_exhaustive_level()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var (code, output, err) = CliRunner.InProcess("eval", model, "--out", tmp["out"], "--provider", "cpu", "--threads", "1");
        code.Should().Be(0, err);
        var r = ReadResults(tmp["out"]);
        r["schema"]!.GetValue<int>().Should().Be(1);
        r["run"]!["provider"]!.GetValue<string>().Should().Be("cpu");
        r["run"]!["threads"]!.GetValue<int>().Should().Be(1);
        r["suite"]!["name"]!.GetValue<string>().Should().Be("standard");
        r["model"]!["sha256"]!.GetValue<string>().Should().HaveLength(64);
        var levels = r["levels"]!.AsArray();
        levels.Select(l => l!["name"]!.GetValue<string>()).Should().Equal("k4", "1x", "10x", "100x", "1000x");
        levels.Single(l => l!["name"]!.GetValue<string>() == "1000x")!["length"]!.GetValue<int>().Should().Be(20_000);
        foreach (var l in levels)
        {
            var total = l!["total"]!;
            total["samples"]!.GetValue<int>().Should().BeGreaterThan(0);
            total["exact"]!.GetValue<int>().Should().Be(total["samples"]!.GetValue<int>());
            total["sequence_accuracy"]!.GetValue<double>().Should().Be(1.0);
            total["symbol_accuracy"]!.GetValue<double>().Should().Be(1.0);
            l["status"]!.GetValue<string>().Should().Be("complete");
        }
        var k4 = levels[0]!;
        k4["exhaustive"]!.GetValue<bool>().Should().BeTrue();
        k4["families"]![0]!["family"]!.GetValue<string>().Should().Be("exhaustive");
        k4["families"]![0]!["samples"]!.GetValue<int>().Should().Be(16); // every 4-bit input
        output.Should().Contain("exhaustive");
        File.ReadAllText(tmp["out/failures.jsonl"]).Should().BeEmpty();
        File.ReadAllText(tmp["out/summary.md"]).Should().Contain("| k4 (exhaustive) | 4 | 4 | exhaustive | 16 | 100.0%");
        File.ReadAllText(tmp["out/index.html"]).Should().Contain("<svg").And.Contain("20,000");
        err.Should().Contain("ex/s").And.Contain("ETA");
    }

    [Fact]
    public void Reverse_oracle_is_exact_and_a_copy_oracle_evaluated_as_reverse_is_not()
    {
        using var tmp = new TempDir();
        string reverse = OracleModels.Save(OracleModels.Reverse(trainLength: 16), tmp.Path, "reverse.onnx");
        var (code, _, err) = CliRunner.InProcess("eval", reverse, "--suite", "quick", "--out", tmp["rev"], "--provider", "cpu");
        code.Should().Be(0, err);
        foreach (var l in ReadResults(tmp["rev"])["levels"]!.AsArray())
            l!["total"]!["sequence_accuracy"]!.GetValue<double>().Should().Be(1.0);

        // no metadata: the task comes from the command line; copy is wrong on reversal except on palindromes
        string copy = OracleModels.Save(OracleModels.NoMetadata(), tmp.Path, "plain.onnx");
        (code, _, err) = CliRunner.InProcess("eval", copy, "--task", "reverse", "--train-length", "16", "--suite", "quick", "--levels", "10x", "--out", tmp["copy"], "--provider", "cpu");
        code.Should().Be(0, err);
        var r = ReadResults(tmp["copy"]);
        r["model"]!["metadata"]!.GetValue<bool>().Should().BeFalse();
        var random = r["levels"]![0]!["families"]!.AsArray().Single(f => f!["family"]!.GetValue<string>() == "random")!;
        random["sequence_accuracy"]!.GetValue<double>().Should().Be(0);
        random["first_wrong_positions"]!.AsArray().Should().HaveCount(random["samples"]!.GetValue<int>());
        File.ReadAllLines(tmp["copy/failures.jsonl"]).Should().NotBeEmpty().And.AllSatisfy(line =>
        {
            var f = JsonNode.Parse(line)!;
            string input = f["input"]!.GetValue<string>(), expected = f["expected"]!.GetValue<string>(), got = f["got"]!.GetValue<string>();
            got.Should().Be(input);
            expected.Should().Be(new string(input.Reverse().ToArray()));
            f["first_wrong"]!.GetValue<int>().Should().Be(Enumerable.Range(0, got.Length).First(i => got[i] != expected[i]));
        });

        // each failure names the `sample` command that prints it again, byte for byte
        var last = JsonNode.Parse(File.ReadAllLines(tmp["copy/failures.jsonl"])[^1])!;
        string again = last["reproduce"]!.GetValue<string>();
        again.Should().StartWith("toolchain sample reverse -k ").And.Contain("--suite quick --level 10x").And.Contain($"--index {last["index"]}");
        var sample = CliRunner.InProcess(again.Split(' ')[1..]);
        sample.Code.Should().Be(0, sample.Err);
        sample.Out.Should().Contain($"#{last["index"]}").And.Contain("  input : " + last["input"]!.GetValue<string>() + "\n")
            .And.Contain("  target: " + last["expected"]!.GetValue<string>() + "\n");
    }

    [Fact]
    public void Broken_oracle_has_its_break_point_at_exactly_size_50_and_fails_at_position_50()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 50, trainLength: 10), tmp.Path, "broken.onnx");
        var (code, output, err) = CliRunner.InProcess("eval", model, "--suite", "quick", "--out", tmp["out"], "--provider", "cpu", "--break-point");
        code.Should().Be(0, err);
        output.Should().Contain("copy/broken: exact up to 50 (x5), first failure at 51");
        var r = ReadResults(tmp["out"]);
        var bp = r["break_point"]!;
        bp["exact_up_to"]!.GetValue<int>().Should().Be(50);
        bp["first_failure"]!.GetValue<int>().Should().Be(51);
        bp["resolved"]!.GetValue<bool>().Should().BeTrue();
        bp["probes"]!.AsArray().Select(p => p!["size"]!.GetValue<int>()).Take(4).Should().Equal(10, 20, 40, 80); // doubling, then bisection
        var levels = r["levels"]!.AsArray();
        levels[0]!["total"]!["sequence_accuracy"]!.GetValue<double>().Should().Be(1.0); // size 10
        var tenX = levels[1]!;                                                          // size 100
        tenX["total"]!["sequence_accuracy"]!.GetValue<double>().Should().Be(0);
        foreach (var f in tenX["families"]!.AsArray())
            f!["first_wrong_positions"]!.AsArray().Select(p => p![1]!.GetValue<int>()).Should().OnlyContain(pos => pos == 50);
        tenX["total"]!["symbol_accuracy"]!.GetValue<double>().Should().BeApproximately(0.5, 1e-9);
    }

    [Fact]
    public void Sharded_and_merged_equals_unsharded()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 30, trainLength: 8), tmp.Path, "broken.onnx");
        string[] common = ["--suite", "standard", "--provider", "cpu", "--break-point"];
        CliRunner.InProcess(["eval", model, "--out", tmp["whole"], .. common]).Code.Should().Be(0);
        var dirs = new List<string>();
        var unitSets = new List<HashSet<string>>();
        for (int i = 0; i < 3; i++)
        {
            string dir = tmp[$"shard{i}"];
            var (code, _, err) = CliRunner.InProcess(["eval", model, "--out", dir, "--shard", $"{i}/3", .. common]);
            code.Should().Be(0, err);
            ReadResults(dir)["run"]!["shard"]!.GetValue<string>().Should().Be($"{i}/3");
            unitSets.Add(UnitLog.Load(Path.Combine(dir, "units.jsonl")).Select(u => u.Key).ToHashSet());
            dirs.Add(dir);
        }
        unitSets.Should().AllSatisfy(s => s.Should().NotBeEmpty());
        unitSets[0].Intersect(unitSets[1]).Concat(unitSets[0].Intersect(unitSets[2])).Concat(unitSets[1].Intersect(unitSets[2])).Should().BeEmpty();
        ReadResults(dirs[1])["levels"]!.AsArray().Select(l => l!["status"]!.GetValue<string>()).Should().Contain("partial");

        var merged = CliRunner.InProcess(["merge", .. dirs, "--out", tmp["merged"]]);
        merged.Code.Should().Be(0, merged.Err);
        Metrics(tmp["merged"]).Should().Be(Metrics(tmp["whole"]));
        File.ReadAllText(tmp["merged/failures.jsonl"]).Should().Be(File.ReadAllText(tmp["whole/failures.jsonl"]));
        ReadResults(tmp["merged"])["run"]!["merged_from"]!.AsArray().Should().HaveCount(3);

        // a missing shard is not silently a whole run
        CliRunner.InProcess(["merge", dirs[0], dirs[2], "--out", tmp["two"]]).Code.Should().Be(0);
        Metrics(tmp["two"]).Should().NotBe(Metrics(tmp["whole"]));
        ReadResults(tmp["two"])["levels"]!.AsArray().Select(l => l!["status"]!.GetValue<string>()).Should().Contain("partial");
    }

    [Fact]
    public void A_stopped_and_resumed_run_equals_an_uninterrupted_one()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 30, trainLength: 8), tmp.Path, "broken.onnx");
        var suite = SuiteFile.LoadBuiltIn("standard");
        RunnerOptions ro = new() { Provider = ProviderChoice.Cpu };

        var (info, runner) = ModelIntake.Open(model, null, null, ro);
        int total = 0;
        using (runner) Evaluator.Run(info, runner, new EvalOptions { Suite = suite, OutDir = tmp["whole"], AfterUnit = _ => total++ });

        using var cts = new CancellationTokenSource();
        int first = 0;
        (info, runner) = ModelIntake.Open(model, null, null, ro);
        using (runner)
        {
            var stopped = () => Evaluator.Run(info, runner, new EvalOptions
            {
                Suite = suite, OutDir = tmp["resumed"], Cancel = cts.Token,
                AfterUnit = _ => { if (++first == 5) cts.Cancel(); },
            });
            stopped.Should().Throw<OperationCanceledException>();
        }
        first.Should().Be(5);
        File.Exists(tmp["resumed/results.json"]).Should().BeFalse();
        UnitLog.Load(tmp["resumed/units.jsonl"]).Should().HaveCount(5);

        // without --resume the folder is refused rather than overwritten
        var refused = CliRunner.InProcess("eval", model, "--out", tmp["resumed"], "--provider", "cpu");
        refused.Code.Should().Be(2);
        refused.Err.Should().Contain("--resume");

        var (code, _, err) = CliRunner.InProcess("eval", model, "--out", tmp["resumed"], "--provider", "cpu", "--resume");
        code.Should().Be(0, err);
        err.Should().Contain("resuming: 5 completed units");
        UnitLog.Load(tmp["resumed/units.jsonl"]).Should().HaveCount(total);
        Metrics(tmp["resumed"]).Should().Be(Metrics(tmp["whole"]));
        File.ReadAllText(tmp["resumed/failures.jsonl"]).Should().Be(File.ReadAllText(tmp["whole/failures.jsonl"]));
    }

    [Fact]
    public void A_torn_last_line_of_the_units_file_is_dropped_on_resume()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 8), tmp.Path, "copy.onnx");
        CliRunner.InProcess("eval", model, "--suite", "quick", "--out", tmp["a"], "--provider", "cpu").Code.Should().Be(0);
        string units = tmp["a/units.jsonl"];
        var lines = File.ReadAllLines(units);
        File.WriteAllText(units, string.Join("\n", lines[..2]) + "\n" + lines[2][..10]); // killed while writing line 3
        var (code, _, err) = CliRunner.InProcess("eval", model, "--suite", "quick", "--out", tmp["a"], "--provider", "cpu", "--resume");
        code.Should().Be(0, err);
        err.Should().Contain("resuming: 2 completed units");
        File.ReadAllLines(units).Should().HaveCount(lines.Length);
        ReadResults(tmp["a"])["levels"]!.AsArray().Should().AllSatisfy(l => l!["total"]!["sequence_accuracy"]!.GetValue<double>().Should().Be(1));
    }
}
