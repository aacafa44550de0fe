using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Export;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Toolchain.Tests.Export;

/// <summary>Exports of the baselines (gru, lstm, cnn, transformer): ONNX Runtime reproduces TorchSharp's
/// logits, and the optional states output, within 1e-4, in loop and unrolled mode.</summary>
[Collection("torch")]
public class BaselineExportTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;
    private static readonly AlgorithmicTask Task = TaskRegistry.Get("badd");

    public static TheoryData<string, string, bool> Cases()
    {
        var d = new TheoryData<string, string, bool>();
        foreach (var variant in new[] { "gru", "lstm", "cnn", "transformer", "transformer-learned" })
            foreach (var mode in new[] { "loop", "unrolled" })
                foreach (bool withStates in new[] { false, true })
                    d.Add(variant, mode, withStates);
        return d;
    }

    /// <summary>A tiny random-init model; two layers so the residual paths (and per-layer weights) are covered.
    /// Learned positions get a short table so 4x and 16x the training size run past it (the clamp). Every parameter
    /// is perturbed, so zero-initialized biases and unit LayerNorm scales cannot hide a misplaced weight.</summary>
    private static AlgorithmicModel Tiny(string variant)
    {
        string arch = variant.StartsWith("transformer", StringComparison.Ordinal) ? "transformer" : variant;
        var config = RunConfig.Preset("tiny", arch, "badd") with { Layers = 2 };
        if (variant == "transformer-learned") config = config with { Positions = "learned", MaxPositions = 16 };
        torch.manual_seed(1234);
        var model = ModelRegistry.Create(config.Validate(), Task.Vocab.Count);
        using (torch.no_grad())
            foreach (var p in model.parameters())
                p.add_(torch.randn_like(p) * 0.1);
        model.eval();
        return model;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Baseline_export_matches_torchsharp(string variant, string mode, bool withStates)
    {
        using var model = Tiny(variant);
        int trainLength = Task.LengthForSize(model.Config.TrainLength);
        var options = new ExportOptions
        {
            Mode = mode == "loop" ? ExportMode.Loop : ExportMode.Unrolled,
            Length = mode == "loop" ? null : trainLength,
            WithStates = withStates,
            Tolerance = Tolerance,
        };
        var result = ModelExporter.Export(model, "test", options);

        result.Parity.Should().HaveCount(mode == "loop" ? 3 : 1);
        result.Parity.Should().OnlyContain(p => p.MaxAbsDifference <= Tolerance);
        if (mode == "loop")
            result.Parity.Select(p => p.Size).Should().Equal(new[] { 1, 4, 16 }.Select(k => k * model.Config.TrainLength));
        foreach (var p in result.Parity)
            output.WriteLine($"{variant} {mode} states={withStates}: size {p.Size} length {p.Length} max diff {p.MaxAbsDifference:G3}");

        var opTypes = result.Model.Graph.Node.Select(n => n.OpType).ToHashSet();
        if (variant == "gru") opTypes.Should().Contain("GRU");
        if (variant == "lstm") opTypes.Should().Contain("LSTM");
        var lengthDim = result.Model.Graph.Input.Single(i => i.Name == "tokens").Type.TensorType.Shape.Dim[1];
        if (mode == "loop") lengthDim.DimParam.Should().Be("length");
        else lengthDim.DimValue.Should().Be(trainLength);

        if (withStates)
        {
            int length = mode == "loop" ? Task.LengthForSize(4 * model.Config.TrainLength) : trainLength;
            double worst = StatesDifference(model, result, length);
            output.WriteLine($"{variant} {mode}: states max diff {worst:G3} at length {length}");
            worst.Should().BeLessThanOrEqualTo(Tolerance);
        }
        else
        {
            result.Model.Graph.Output.Select(o => o.Name).Should().Equal("logits");
        }
    }

    /// <summary>Runs the exported model through ONNX Runtime (OrtValue API) and compares its states output with
    /// TorchSharp's <see cref="AlgorithmicModel.Run"/> states: same shape, max |difference| returned.</summary>
    private static double StatesDifference(AlgorithmicModel model, ExportResult result, int length)
    {
        const int batch = 3;
        var rng = new Rng(99);
        var tokens = new long[batch * length];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(Task.Vocab.Count);

        long[] expectedShape;
        float[] expected;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            var states = model.Run(torch.tensor(tokens, [batch, length]), keepStates: true).States!;
            expectedShape = states.shape;
            expected = states.contiguous().data<float>().ToArray();
        }

        using var session = new InferenceSession(result.Model.ToByteArray());
        using var input = OrtValue.CreateTensorValueFromMemory(tokens, [batch, length]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["tokens"], [input], ["logits", "states"]);
        outputs[1].GetTensorTypeAndShape().Shape.Should().Equal(expectedShape);
        var got = outputs[1].GetTensorDataAsSpan<float>();
        got.Length.Should().Be(expected.Length);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - got[i]);
            if (!(d <= worst)) worst = double.IsNaN(d) ? double.PositiveInfinity : d;
        }
        return worst;
    }
}
