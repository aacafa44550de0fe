using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Evaluate;
using Toolchain.Evaluate.Onnx;
using Toolchain.Export;
using Toolchain.Export.Onnx;
using Toolchain.Export.Onnx.Proto;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;

namespace Toolchain.Tests.Evaluate;

/// <summary>Grading drops the `states` output and the nodes that only fed it; the logits stay the same.</summary>
[Collection("torch")]
public class StatesPruningTests
{
    private static AlgorithmicModel Tiny(string arch)
    {
        torch.manual_seed(11);
        var config = (RunConfig.Preset("tiny", arch, "badd") with { Maps = 6, Width = 3 }).Validate();
        var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        return model;
    }

    private static int CountNodes(GraphProto g) =>
        g.Node.Count + g.Node.SelectMany(n => n.Attribute).Where(a => a.G is not null).Sum(a => CountNodes(a.G));

    private static float[] Logits(byte[] model, long[] tokens, out string[] outputs)
    {
        using var session = new InferenceSession(model);
        outputs = [.. session.OutputMetadata.Keys];
        using var input = OrtValue.CreateTensorValueFromMemory(tokens, [1, tokens.Length]);
        using var result = session.Run(new RunOptions(), ["tokens"], [input], ["logits"]);
        return result[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [Theory]
    [InlineData("dngpu", "loop")]
    [InlineData("ngpu", "loop")]
    [InlineData("dngpu", "unrolled")]
    public void Pruning_removes_states_and_only_what_fed_them(string arch, string mode)
    {
        using var model = Tiny(arch);
        var tokens = new long[] { 1, 2, 2, 1, 3, 2, 1, 2, 2 };
        var options = new ExportOptions { WithStates = true, ParityMultiples = [1] };
        if (mode == "unrolled") options = options with { Mode = ExportMode.Unrolled, Length = tokens.Length };
        var full = ModelExporter.Export(model, "test", options).Model;
        var plain = ModelExporter.Export(model, "test", options with { WithStates = false }).Model;

        byte[] pruned = StatesPruning.WithoutStates(full.ToByteArray())!;
        pruned.Should().NotBeNull();
        var p = ModelProto.Parser.ParseFrom(pruned);
        p.Graph.Output.Select(o => o.Name).Should().Equal("logits");
        CountNodes(p.Graph).Should().Be(CountNodes(plain.Graph), "exactly the nodes of an export without states remain");
        CountNodes(p.Graph).Should().BeLessThan(CountNodes(full.Graph));
        p.MetadataProps.Select(m => m.Key).Should().Equal(full.MetadataProps.Select(m => m.Key), "metadata survives as unknown fields");

        Logits(pruned, tokens, out var outputs).Should().Equal(Logits(full.ToByteArray(), tokens, out _), "the same nodes compute the logits");
        outputs.Should().Equal("logits");
        StatesPruning.WithoutStates(plain.ToByteArray()).Should().BeNull("a model without states is used as it is");
    }

    [Fact]
    public void Grading_opens_a_states_model_without_its_states()
    {
        using var model = Tiny("dngpu");
        using var tmp = new TempDir();
        var export = ModelExporter.Export(model, "test", new ExportOptions { WithStates = true, ParityMultiples = [1] });
        ModelWriter.Save(export.Model, tmp["m.onnx"]);
        var (_, runner) = ModelIntake.Open(tmp["m.onnx"], null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner) runner.Session.OutputMetadata.Keys.Should().Equal("logits");
    }
}
