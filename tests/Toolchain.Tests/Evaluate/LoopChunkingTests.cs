using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Evaluate;
using Toolchain.Evaluate.Onnx;
using Toolchain.Export;
using Toolchain.Suites;
using Toolchain.Tests.Zoo;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;

namespace Toolchain.Tests.Evaluate;

/// <summary>`eval --loop-chunk K` runs the step Loop K steps per iteration: the same logits, and models without a
/// step Loop run as they are.</summary>
[Collection("torch")]
public class LoopChunkingTests
{
    private static float[] Logits(byte[] model, long[] tokens)
    {
        using var options = new SessionOptions();
        using var session = new InferenceSession(model, options);
        using var input = OrtValue.CreateTensorValueFromMemory(tokens, [1, tokens.Length]);
        using var result = session.Run(new RunOptions(), ["tokens"], [input], ["logits"]);
        return result[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static int Loops(byte[] model) =>
        Toolchain.Evaluate.OnnxGraph.ModelProto.Parser.ParseFrom(model).Graph.Node.Count(n => n.OpType == "Loop");

    /// <summary>9 tokens in chunks of 4 (two chunks and one step left), 3 (three chunks, none left) and 16 (no chunk,
    /// every step in the remainder Loop); the ngpu with 3 relaxation parameter sets picks a set by the step's number
    /// (Mod(iteration, 3)), so a wrong iteration number inside a chunk would change its logits.</summary>
    [Theory]
    [InlineData("dngpu", 1)]
    [InlineData("ngpu", 3)]
    public void A_chunked_loop_computes_the_logits_of_the_loop(string arch, int relaxation)
    {
        torch.manual_seed(5);
        var config = (RunConfig.Preset("tiny", arch, "badd") with { Maps = 6, Width = 3, Relaxation = relaxation }).Validate();
        using var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        // relaxation starts every set at the same weights: make them differ (and the logits far from zero), so that
        // a step run with another step's parameter set shows in the logits
        using (torch.no_grad())
            foreach (var p in model.parameters()) p.add_(torch.randn_like(p) * 0.5);
        byte[] loop = ModelExporter.Export(model, "test", new ExportOptions { ParityMultiples = [1] }).Model.ToByteArray();
        var body = Toolchain.Evaluate.OnnxGraph.ModelProto.Parser.ParseFrom(loop).Graph.Node.Single(n => n.OpType == "Loop").Attribute.Single().G;
        body.Node.Any(n => n.OpType == "Mod").Should().Be(relaxation > 1, "the step reads its number only to pick a parameter set");
        var tokens = new long[] { 1, 2, 2, 1, 3, 2, 1, 2, 2 };
        var expected = Logits(loop, tokens);
        foreach (int k in new[] { 4, 3, 16 })
        {
            byte[] chunked = LoopChunking.Chunk(loop, k, out string why)!;
            chunked.Should().NotBeNull(why);
            Loops(chunked).Should().Be(2, "a Loop of chunks and a Loop of the steps left");
            var got = Logits(chunked, tokens);
            got.Length.Should().Be(expected.Length);
            got.Zip(expected).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThanOrEqualTo(1e-6f, $"chunks of {k}: the same steps in the same order");
        }
    }

    [Fact]
    public void Models_without_a_step_loop_run_as_they_are_and_eval_says_so()
    {
        string cnn = Path.Combine(ZooTests.RepoRoot(), "models", "cnn-badd.onnx");
        LoopChunking.Chunk(File.ReadAllBytes(cnn), 8, out string why).Should().BeNull();
        why.Should().Contain("no Loop");

        using var tmp = new TempDir();
        var (code, _, err) = CliRunner.InProcess("eval", cnn, "--suite", "quick", "--levels", "1x", "--provider", "cpu", "--loop-chunk", "8", "--out", tmp["cnn"]);
        code.Should().Be(0, err);
        err.Should().Contain("notice: --loop-chunk 8:").And.Contain("runs as exported");
        EvalTests.ReadResults(tmp["cnn"])["run"]!.AsObject().ContainsKey("loop_chunk").Should().BeFalse("nothing was chunked");

        CliRunner.InProcess("eval", cnn, "--loop-chunk", "0", "--out", tmp["zero"]).Code.Should().Be(2);
    }

    [Fact]
    public void Chunks_and_io_binding_grade_a_zoo_model_as_the_plain_loop_does()
    {
        using var tmp = new TempDir();
        string model = Path.Combine(ZooTests.RepoRoot(), "models", "dngpu-badd.onnx");
        string[] common = ["--suite", "quick", "--levels", "1x", "--provider", "cpu", "--verdicts"];
        CliRunner.InProcess(["eval", model, "--out", tmp["loop"], .. common]).Code.Should().Be(0);
        var chunked = CliRunner.InProcess(["eval", model, "--out", tmp["chunks"], "--loop-chunk", "16", .. common]);
        chunked.Code.Should().Be(0, chunked.Err);
        chunked.Err.Should().Contain("step loop in chunks of 16 steps");
        var bound = CliRunner.InProcess(["eval", model, "--out", tmp["bound"], "--io-binding", .. common]);
        bound.Code.Should().Be(0, bound.Err);

        var run = EvalTests.ReadResults(tmp["chunks"])["run"]!;
        run["loop_chunk"]!.GetValue<int>().Should().Be(16);
        EvalTests.ReadResults(tmp["bound"])["run"]!["io_binding"]!.GetValue<bool>().Should().BeTrue();
        File.ReadAllText(tmp["chunks/summary.md"]).Should().Contain("step loop in chunks of 16 steps");
        foreach (var other in new[] { "chunks", "bound" })
        {
            File.ReadAllBytes(tmp[other + "/" + VerdictFile.FileName]).Should().Equal(File.ReadAllBytes(tmp["loop/" + VerdictFile.FileName]), other);
            EvalTests.Metrics(tmp[other]).Should().Be(EvalTests.Metrics(tmp["loop"]), other);
        }
    }
}
