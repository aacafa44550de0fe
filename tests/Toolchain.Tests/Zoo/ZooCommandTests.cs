namespace Toolchain.Tests.Zoo;

/// <summary>`toolchain zoo` goes on past a model it cannot grade and says so in its exit code.</summary>
[Collection("torch")]
public class ZooCommandTests
{
    [Fact]
    public void A_model_that_cannot_be_graded_is_reported_and_the_zoo_goes_on_to_the_next_then_exits_1()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["zoo.yaml"], """
            models:
              - {name: bad-copy, task: copy, arch: cnn, preset: tiny, steps: 2}
              - {name: good-copy, task: copy, arch: cnn, preset: tiny, steps: 2}
            """);
        string models = tmp["models"];
        Directory.CreateDirectory(models);
        // a file where bad-copy's report folder goes: grading it fails when the report folder is made
        File.WriteAllText(Path.Combine(models, "bad-copy.report"), "in the way");

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05");

        code.Should().Be(1, output + err);
        output.Should().MatchRegex(@"== bad-copy: not graded: IOException: [^\n]*bad-copy\.report[^\n]*\n");
        output.Should().Contain("== good-copy: exported at step 2");
        output.Should().MatchRegex(@"== good-copy: k4 [0-9.]+%, 1x [0-9.]+%");
        output.Should().EndWith("== 1 zoo model failed: bad-copy\n");
        File.Exists(Path.Combine(models, "good-copy.card.json")).Should().BeTrue();
        File.Exists(Path.Combine(models, "good-copy.report", "results.json")).Should().BeTrue();
        // the model that could not be graded is not left behind without a card
        File.Exists(Path.Combine(models, "bad-copy.onnx")).Should().BeFalse();
        File.Exists(Path.Combine(models, "bad-copy.card.json")).Should().BeFalse();
    }
}

/// <summary>`toolchain report` (the README's main command) grades every model it can and names the ones it cannot.</summary>
public class ReportCommandTests
{
    [Fact]
    public void A_corrupt_model_is_named_not_graded_and_the_other_models_are_still_reported_with_exit_code_1()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        string models = tmp["models"];
        Directory.CreateDirectory(models);
        File.WriteAllBytes(Path.Combine(models, "copy-oracle.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(Toolchain.Tests.Evaluate.OracleModels.Copy()));
        File.WriteAllText(Path.Combine(models, "broken.onnx"), "not a protobuf at all");

        var (code, output, err) = CliRunner.InProcess("report", "--models", models, "--out", tmp["out"], "--budget-minutes", "0.2", "--suite", "quick");

        code.Should().Be(1, output + err);
        err.Should().Contain("broken: not graded").And.Contain("broken.onnx");
        output.Should().Contain("copy-oracle").And.Contain("graded 1 models");
        File.ReadAllText(Path.Combine(tmp["out"], "index.html")).Should().Contain("broken").And.Contain("not graded");
        File.Exists(Path.Combine(tmp["out"], "copy-oracle", "results.json")).Should().BeTrue();
    }
}
