using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Tests.Evaluate;

/// <summary>`eval --ensemble`: per-position softmax probabilities averaged over the models, graded like one model.</summary>
public class EnsembleTests
{
    private static readonly RunnerOptions Cpu = new() { Provider = ProviderChoice.Cpu, Threads = 1 };

    private static int[][] Predict(TempDir tmp, IReadOnlyList<string> models, IReadOnlyList<int[]> inputs)
    {
        var (_, runner) = models.Count == 1 ? ModelIntake.Open(models[0], null, null, Cpu) : ModelIntake.OpenEnsemble(models, null, null, Cpu);
        using (runner) return runner.Predict(inputs);
    }

    [Fact]
    public void Averaging_a_right_and_an_equally_confident_wrong_model_invents_no_accuracy()
    {
        using var tmp = new TempDir();
        string right = OracleModels.Save(OracleModels.Copy(trainLength: 10), tmp.Path, "right.onnx");
        // right before position 6, PAD (one-hot, as confident as the copy) from there on
        string wrong = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 6, trainLength: 10), tmp.Path, "wrong.onnx");
        var task = TaskRegistry.Get("copy");
        var rng = new Rng(5);
        var inputs = Enumerable.Range(0, 16).Select(_ => task.Generate(10, AlgorithmicTask.Random, rng).Input).ToList();

        Predict(tmp, [right, right], inputs).Should().BeEquivalentTo(inputs, o => o.WithStrictOrdering(), "two right models stay right");
        var mixed = Predict(tmp, [right, wrong], inputs);
        for (int i = 0; i < inputs.Count; i++)
            for (int j = 0; j < 10; j++)
                mixed[i][j].Should().Be(j < 6 ? inputs[i][j] : -1, "where the two disagree at equal confidence the ensemble does not guess");
        // a majority of right models wins
        Predict(tmp, [right, wrong, right], inputs).Should().BeEquivalentTo(inputs, o => o.WithStrictOrdering());
        var majorityWrong = Predict(tmp, [wrong, right, wrong], inputs);
        majorityWrong.Should().OnlyContain(p => p.Skip(6).All(t => t == AlgorithmicTask.Pad));
    }

    [Fact]
    public void Softmax_averaging_ties_and_non_finite_logits_give_no_prediction()
    {
        var sum = new float[3];
        OnnxRunner.AddSoftmax([0f, 0f, 0f], sum);
        sum.Should().AllSatisfy(p => p.Should().BeApproximately(1f / 3, 1e-6f));
        OnnxRunner.UniqueArgMax(sum).Should().Be(-1);
        OnnxRunner.AddSoftmax([5f, 0f, 0f], sum);
        OnnxRunner.UniqueArgMax(sum).Should().Be(0);
        OnnxRunner.AddSoftmax([0f, float.NaN, 0f], sum);
        OnnxRunner.UniqueArgMax(sum).Should().Be(-1);
    }

    [Fact]
    public void Eval_grades_an_ensemble_and_records_its_members()
    {
        using var tmp = new TempDir();
        string right = OracleModels.Save(OracleModels.Copy(trainLength: 10), tmp.Path, "right.onnx");
        string wrong = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 30, trainLength: 10), tmp.Path, "wrong.onnx");
        var (code, output, err) = CliRunner.InProcess("eval", "--ensemble", right, wrong, "--levels", "1x,10x", "--out", tmp["out"], "--provider", "cpu", "--threads", "1");
        code.Should().Be(0, err);
        var r = EvalTests.ReadResults(tmp["out"]);
        var members = r["model"]!["ensemble"]!.AsArray();
        members.Select(m => m!["file"]!.GetValue<string>()).Should().Equal("right.onnx", "wrong.onnx");
        r["model"]!["file"]!.GetValue<string>().Should().Be("ensemble(right.onnx, wrong.onnx)");
        r["model"]!["sha256"]!.GetValue<string>().Should().HaveLength(64).And.NotBe(members[0]!["sha256"]!.GetValue<string>());
        double Seq(string level) => r["levels"]!.AsArray().Single(l => l!["name"]!.GetValue<string>() == level)!["total"]!["sequence_accuracy"]!.GetValue<double>();
        Seq("1x").Should().Be(1.0, "both are right at size 10");
        Seq("10x").Should().Be(0.0, "at size 100 the broken copy disagrees past position 30, and the ensemble is no better than it");
        output.Should().Contain("reports in");

        var (lone, _, loneErr) = CliRunner.InProcess("eval", "--ensemble", right, "--out", tmp["lone"]);
        lone.Should().Be(2);
        loneErr.Should().StartWith("error:").And.Contain("at least two models");
        string reverse = OracleModels.Save(OracleModels.Reverse(trainLength: 10), tmp.Path, "reverse.onnx");
        var (other, _, otherErr) = CliRunner.InProcess("eval", "--ensemble", right, reverse, "--out", tmp["other"], "--provider", "cpu");
        other.Should().Be(2);
        otherErr.Should().StartWith("error:").And.Contain("one task and training size");
    }
}
