using Google.Protobuf;

namespace Toolchain.Tests.Evaluate;

public class IntakeTests
{
    public static TheoryData<string, string> BadModels => new()
    {
        { "corrupt", "is not an ONNX model" },
        { "truncated", "is not an ONNX model" },
        { "wrong-input-name", "has input 'x'; contract 1 needs one input 'tokens'" },
        { "wrong-output-type", "output 'logits' is a int64 tensor" },
        { "opset27", "uses ai.onnx opset 27; ONNX Runtime 1.31 runs opsets 21-26" },
        { "vocab-mismatch", "has vocabulary [_ 1 0] but task 'copy' has [_ 0 1]" },
        { "no-metadata", "has no toolchain metadata" },
    };

    [Theory]
    [MemberData(nameof(BadModels))]
    public void A_bad_model_fails_with_one_clear_line_and_exit_code_2(string kind, string message)
    {
        using var tmp = new TempDir();
        string path = tmp[kind + ".onnx"];
        switch (kind)
        {
            case "corrupt": File.WriteAllText(path, "this is not a protobuf file at all\n"); break;
            case "truncated": File.WriteAllBytes(path, OracleModels.Copy().ToByteArray()[..100]); break;
            case "wrong-input-name": OracleModels.Save(OracleModels.WrongInputName(), tmp.Path, kind + ".onnx"); break;
            case "wrong-output-type": OracleModels.Save(OracleModels.WrongOutputType(), tmp.Path, kind + ".onnx"); break;
            case "opset27": OracleModels.Save(OracleModels.Opset(27), tmp.Path, kind + ".onnx"); break;
            case "vocab-mismatch": OracleModels.Save(OracleModels.VocabMismatch(), tmp.Path, kind + ".onnx"); break;
            case "no-metadata": OracleModels.Save(OracleModels.NoMetadata(), tmp.Path, kind + ".onnx"); break;
        }
        var (code, output, err) = CliRunner.InProcess("eval", path, "--out", tmp["out"], "--provider", "cpu");
        code.Should().Be(2);
        output.Should().BeEmpty();
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().ContainSingle().Which.Should().StartWith($"error: model '{path}'").And.Contain(message);
        err.Should().NotContain("   at ");
        File.Exists(tmp["out/results.json"]).Should().BeFalse();
    }

    [Fact]
    public void Metadata_and_command_line_must_agree_and_missing_metadata_is_supplied_by_options()
    {
        using var tmp = new TempDir();
        string copy = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var r = CliRunner.InProcess("eval", copy, "--task", "reverse", "--out", tmp["a"], "--provider", "cpu");
        r.Code.Should().Be(2);
        r.Err.Should().Contain("says it solves task 'copy' but --task is 'reverse'");

        string plain = OracleModels.Save(OracleModels.NoMetadata(), tmp.Path, "plain.onnx");
        r = CliRunner.InProcess("eval", plain, "--task", "copy", "--out", tmp["b"], "--provider", "cpu", "--suite", "quick");
        r.Code.Should().Be(2);
        r.Err.Should().Contain("--train-length");
        r = CliRunner.InProcess("eval", plain, "--task", "copy", "--train-length", "12", "--out", tmp["c"], "--provider", "cpu", "--suite", "quick");
        r.Code.Should().Be(0, r.Err);
        EvalTests.ReadResults(tmp["c"])["levels"]![0]!["size"]!.GetValue<int>().Should().Be(12);
    }

    [Fact]
    public void Cuda_runs_or_fails_clearly_and_auto_falls_back_to_cpu_with_one_notice()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 8), tmp.Path, "copy.onnx");
        var cuda = CliRunner.InProcess("eval", model, "--provider", "cuda", "--suite", "quick", "--out", tmp["cuda"]);
        var auto = CliRunner.InProcess("eval", model, "--provider", "auto", "--suite", "quick", "--out", tmp["auto"]);
        auto.Code.Should().Be(0, auto.Err);
        string ran = EvalTests.ReadResults(tmp["auto"])["run"]!["provider"]!.GetValue<string>();
        if (cuda.Code == 0)
        {
            EvalTests.ReadResults(tmp["cuda"])["run"]!["provider"]!.GetValue<string>().Should().Be("cuda");
            ran.Should().Be("cuda");
        }
        else
        {
            cuda.Code.Should().Be(2);
            cuda.Err.Trim().Split('\n').Should().ContainSingle().Which.Should().StartWith("error: the CUDA provider cannot run").And.Contain("--provider cpu");
            ran.Should().Be("cpu");
            auto.Err.Split('\n').Where(l => l.Contains("CUDA")).Should().ContainSingle().Which.Should().StartWith("notice: CUDA provider unavailable (").And.EndWith("running on CPU");
        }
    }
}
