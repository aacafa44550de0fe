using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Google.Protobuf;
using Toolchain.Export.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Tests.Runtime;

/// <summary>The two native runtimes load on this machine through the normal build.</summary>
public class NativeRuntimeTests
{
    [Fact]
    public void TorchSharp_runs_forward_backward_and_an_Adamax_step_on_cpu()
    {
        torch.manual_seed(1);
        using var scope = torch.NewDisposeScope();
        var layer = nn.Linear(8, 4);
        var optimizer = optim.Adamax(layer.parameters(), lr: 0.01);
        var x = torch.randn(16, 8);
        var y = torch.randint(0, 4, [16], dtype: ScalarType.Int64);
        var before = layer.weight!.detach().clone();
        var loss = nn.functional.cross_entropy(layer.forward(x), y);
        optimizer.zero_grad();
        loss.backward();
        layer.weight!.grad!.abs().sum().item<float>().Should().BeGreaterThan(0);
        optimizer.step();
        (layer.weight!.detach() - before).abs().max().item<float>().Should().BeGreaterThan(0);
        float.IsFinite(loss.item<float>()).Should().BeTrue();
    }

    [Fact]
    public void OnnxRuntime_creates_a_cpu_session_and_runs_a_built_model()
    {
        // logits = one-hot(tokens): the copy oracle, built with the export project's graph builder
        var g = new GraphBuilder("copy_oracle");
        g.Input("tokens", ElementType.Int64, "batch", "length");
        var values = g.Initializer("onehot_values", new float[] { 0f, 1f }, 2);
        var depth = g.Scalar(3L);
        var logits = g.Node("OneHot", ["tokens", depth, values], attrs: Attr.Int("axis", -1));
        g.Output(logits, "logits", ElementType.Float, "batch", "length", 3L);
        var bytes = ModelWriter.Model(g.Build(), new Dictionary<string, string> { ["toolchain.contract"] = "1" }).ToByteArray();

        using var options = new SessionOptions();
        using var session = new InferenceSession(bytes, options);
        session.ModelMetadata.CustomMetadataMap["toolchain.contract"].Should().Be("1");
        long[] tokens = [1, 2, 2, 0, 1, 1];
        using var input = OrtValue.CreateTensorValueFromMemory(tokens, [2, 3]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["tokens"], [input], ["logits"]);
        var result = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        outputs[0].GetTensorTypeAndShape().Shape.Should().Equal(2, 3, 3);
        for (int i = 0; i < tokens.Length; i++)
            for (int v = 0; v < 3; v++)
                result[i * 3 + v].Should().Be(tokens[i] == v ? 1f : 0f);
    }
}
