using System.Text.Json.Nodes;
using Toolchain.Evaluate;

namespace Toolchain.Tests.Evaluate;

/// <summary>`toolchain report` grades a model once: the results cache is keyed by the model file's SHA-256, the
/// suite's hash and the grading code's version, is filled by the zoo's gradings and by report itself, and
/// `--regrade` ignores it.</summary>
public class ResultsCacheTests
{
    private static (int Code, string Out, string Err) Report(TempDir tmp, params string[] extra) =>
        CliRunner.InProcess(["report", "--models", tmp["models"], "--out", tmp["reports/latest"], "--budget-minutes", "0.2", "--suite", "quick", .. extra]);

    [Fact]
    public void Report_reuses_a_grading_whose_key_matches_and_grades_again_when_the_model_or_suite_differs_or_on_regrade()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["models"]);
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 8), tmp["models"], "copy.onnx");

        OracleModels.Save(OracleModels.Reverse(trainLength: 8), tmp["models"], "reverse.onnx");
        var first = Report(tmp);
        first.Code.Should().Be(0, first.Err);
        first.Err.Split('\n').Count(l => l.StartsWith("notice: CUDA", StringComparison.Ordinal)).Should().BeLessThanOrEqualTo(1, "a notice is printed once, not per model");
        first.Err.Should().NotContain("from the cache");
        first.Out.Should().Contain("now (");
        Directory.GetDirectories(tmp["reports/cache"]).Should().HaveCount(2)
            .And.OnlyContain(d => d.EndsWith($"-g{ResultsCache.GradingVersion}", StringComparison.Ordinal));
        EvalTests.ReadResults(tmp["reports/latest/copy"])["break_point"].Should().NotBeNull("report finds the break point of what it grades");
        string firstMetrics = EvalTests.Metrics(tmp["reports/latest/copy"]);

        var second = Report(tmp);
        second.Code.Should().Be(0, second.Err);
        second.Err.Should().Contain("copy: from the cache");
        second.Out.Should().Contain("cached (").And.Contain("2 from the cache");
        EvalTests.Metrics(tmp["reports/latest/copy"]).Should().Be(firstMetrics);
        File.ReadAllText(tmp["reports/latest/index.html"]).Should().Contain("graded cached (");

        Report(tmp, "--regrade").Err.Should().NotContain("from the cache");

        // another model file under the same name: its key differs, so it is graded
        OracleModels.Save(OracleModels.Copy(trainLength: 9), tmp["models"], "copy.onnx");
        Report(tmp).Err.Should().NotContain("copy: from the cache").And.Contain("reverse: from the cache");
        Directory.GetDirectories(tmp["reports/cache"]).Should().HaveCount(3);

        // another suite: graded; a level filter or a shard is never a cache entry
        File.Delete(tmp["models/reverse.onnx"]);
        CliRunner.InProcess("report", "--models", tmp["models"], "--out", tmp["reports/latest"], "--budget-minutes", "0.2")
            .Err.Should().NotContain("from the cache");
        var results = Comparer.Load([tmp["reports/latest/copy"]])[0].Results;
        CacheKey.Of(results).Should().Be(new CacheKey(results.Model.Sha256, results.Suite.Hash, ResultsCache.GradingVersion));
        CacheKey.Of(results with { Suite = results.Suite with { LevelFilter = ["1x"] } }).Should().BeNull();
        CacheKey.Of(results with { Run = results.Run with { Shard = "0/2" } }).Should().BeNull();
        CacheKey.Of(results with { Grading = null })!.Grading.Should().Be(1, "results older than the field were made by version 1");
        CacheKey.For(model, results.Suite.Hash).Should().Be(CacheKey.Of(results));
    }

    [Fact]
    public void The_zoos_grading_in_models_NAME_report_fills_the_cache_matched_by_key_not_by_name()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["models"]);
        OracleModels.Save(OracleModels.Copy(trainLength: 8), tmp["models"], "copy.onnx");
        var (code, _, err) = CliRunner.InProcess("eval", Path.Combine(tmp["models"], "copy.onnx"), "--suite", "quick", "--out", tmp["models/other-name.report"], "--provider", "cpu");
        code.Should().Be(0, err);
        // as the zoo leaves it: results.json without the grading field (version 1) and no resume bookkeeping
        var node = JsonNode.Parse(File.ReadAllText(tmp["models/other-name.report/results.json"]))!.AsObject();
        node.Remove("grading");
        File.WriteAllText(tmp["models/other-name.report/results.json"], node.ToJsonString());

        var report = Report(tmp);
        report.Code.Should().Be(0, report.Err);
        report.Err.Should().Contain("copy: from the cache (zoo");
        File.ReadAllText(tmp["reports/latest/copy/summary.md"]).Should().Contain("| 1x (x1) |");
    }
}
