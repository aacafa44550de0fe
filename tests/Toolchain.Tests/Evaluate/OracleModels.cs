using System.Text.Json;
using Google.Protobuf;
using Toolchain.Export.Onnx;
using Toolchain.Export.Onnx.Proto;
using Toolchain.Suites;

namespace Toolchain.Tests.Evaluate;

/// <summary>Small ONNX models that need no training: exact oracles, a deliberately broken one, and
/// models that break the contract, built with the export project's graph builder.</summary>
public static class OracleModels
{
    public static Dictionary<string, string> Metadata(string task, int trainLength, string arch = "oracle") => new()
    {
        ["toolchain.contract"] = "1",
        ["toolchain.task"] = task,
        ["toolchain.vocab"] = JsonSerializer.Serialize(TaskRegistry.Get(task).Vocab),
        ["toolchain.train_length"] = trainLength.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["toolchain.arch"] = arch,
        ["toolchain.config"] = "{}",
        ["toolchain.source"] = "test-oracle",
    };

    private static string OneHot(GraphBuilder g, string tokens, int vocab)
    {
        var values = g.Initializer(g.Fresh("onehot_values"), new float[] { 0f, 1f }, 2);
        return g.Node("OneHot", [tokens, g.Scalar((long)vocab), values], attrs: Attr.Int("axis", -1));
    }

    /// <summary>logits = one-hot(tokens): exact for copy (and any task whose target is its input).</summary>
    public static ModelProto Copy(string task = "copy", int trainLength = 20, Dictionary<string, string>? metadata = null)
    {
        int vocab = TaskRegistry.Get(task).Vocab.Count;
        var g = new GraphBuilder("copy_oracle");
        g.Input("tokens", ElementType.Int64, "batch", "length");
        g.Output(OneHot(g, "tokens", vocab), "logits", ElementType.Float, "batch", "length", (long)vocab);
        return ModelWriter.Model(g.Build(), metadata ?? Metadata(task, trainLength));
    }

    /// <summary>logits = one-hot(tokens reversed along the length): exact for reverse.</summary>
    public static ModelProto Reverse(int trainLength = 20)
    {
        var g = new GraphBuilder("reverse_oracle");
        g.Input("tokens", ElementType.Int64, "batch", "length");
        var reversed = g.Node("Slice", ["tokens", g.Ints(-1), g.Ints(long.MinValue), g.Ints(1), g.Ints(-1)]);
        g.Output(OneHot(g, reversed, 3), "logits", ElementType.Float, "batch", "length", 3L);
        return ModelWriter.Model(g.Build(), Metadata("reverse", trainLength));
    }

    /// <summary>Copy that is right only before position <paramref name="goodPositions"/>: beyond it, it
    /// predicts PAD (a position mask from Range/Less/Where), so copy of size k is exact iff k &lt;= goodPositions.</summary>
    public static ModelProto BrokenCopy(int goodPositions = 50, int trainLength = 10)
    {
        var g = new GraphBuilder("broken_copy_oracle");
        g.Input("tokens", ElementType.Int64, "batch", "length");
        var shape = g.Node("Shape", ["tokens"]);
        var length = g.Node("Gather", [shape, g.Scalar(1L)], attrs: Attr.Int("axis", 0));
        var positions = g.Node("Range", [g.Scalar(0L), length, g.Scalar(1L)]);
        var good = g.Node("Less", [positions, g.Scalar((long)goodPositions)]);
        var masked = g.Node("Where", [good, "tokens", g.Scalar(0L)]);
        g.Output(OneHot(g, masked, 3), "logits", ElementType.Float, "batch", "length", 3L);
        return ModelWriter.Model(g.Build(), Metadata("copy", trainLength, "broken"));
    }

    /// <summary>Copy that also builds a length x length float matrix per example (an outer product of the
    /// tokens, reduced to zero and added to the logits), so its memory grows as length^2 like attention.</summary>
    public static ModelProto QuadraticCopy(int trainLength = 20)
    {
        var g = new GraphBuilder("quadratic_copy_oracle");
        g.Input("tokens", ElementType.Int64, "batch", "length");
        var x = g.Node("Cast", ["tokens"], attrs: Attr.Int("to", (long)ElementType.Float));
        var column = g.Node("Unsqueeze", [x, g.Ints(2)]);                     // [batch, length, 1]
        var row = g.Node("Unsqueeze", [x, g.Ints(1)]);                        // [batch, 1, length]
        var square = g.Node("MatMul", [column, row]);                         // [batch, length, length]
        var peak = g.Node("ReduceMax", [square, g.Ints(-1)], attrs: Attr.Int("keepdims", 1)); // [batch, length, 1]
        var zero = g.Node("Mul", [peak, g.Scalar(0f)]);
        g.Output(g.Node("Add", [OneHot(g, "tokens", 3), zero]), "logits", ElementType.Float, "batch", "length", 3L);
        return ModelWriter.Model(g.Build(), Metadata("copy", trainLength, "quadratic"));
    }

    public static ModelProto WrongInputName()
    {
        var g = new GraphBuilder("wrong_input");
        g.Input("x", ElementType.Int64, "batch", "length");
        g.Output(OneHot(g, "x", 3), "logits", ElementType.Float, "batch", "length", 3L);
        return ModelWriter.Model(g.Build(), Metadata("copy", 20));
    }

    public static ModelProto WrongOutputType()
    {
        var g = new GraphBuilder("wrong_output_type");
        g.Input("tokens", ElementType.Int64, "batch", "length");
        var asInt = g.Node("Cast", [OneHot(g, "tokens", 3)], attrs: Attr.Int("to", (long)ElementType.Int64));
        g.Output(asInt, "logits", ElementType.Int64, "batch", "length", 3L);
        return ModelWriter.Model(g.Build(), Metadata("copy", 20));
    }

    public static ModelProto Opset(long opset)
    {
        var m = Copy();
        m.OpsetImport[0].Version = opset;
        return m;
    }

    public static ModelProto VocabMismatch()
    {
        var meta = Metadata("copy", 20);
        meta["toolchain.vocab"] = "[\"_\",\"1\",\"0\"]";
        return Copy(metadata: meta);
    }

    public static ModelProto NoMetadata() => Copy(metadata: []);

    public static string Save(ModelProto model, string dir, string name)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }
}

/// <summary>A fresh temporary folder, removed afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("toolchain-eval-").FullName;
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
