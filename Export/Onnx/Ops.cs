namespace Toolchain.Export.Onnx;

/// <summary>Typed helpers for the ONNX operators the exporters use (opset 21 signatures).</summary>
public static class Ops
{
    public static string Add(this GraphBuilder g, string a, string b) => g.Node("Add", [a, b]);
    public static string Sub(this GraphBuilder g, string a, string b) => g.Node("Sub", [a, b]);
    public static string Mul(this GraphBuilder g, string a, string b) => g.Node("Mul", [a, b]);
    public static string Div(this GraphBuilder g, string a, string b) => g.Node("Div", [a, b]);
    public static string Mul(this GraphBuilder g, string a, float b) => g.Mul(a, g.Scalar(b));
    public static string Add(this GraphBuilder g, string a, float b) => g.Add(a, g.Scalar(b));
    public static string Sigmoid(this GraphBuilder g, string x) => g.Node("Sigmoid", [x]);
    public static string Tanh(this GraphBuilder g, string x) => g.Node("Tanh", [x]);
    public static string Relu(this GraphBuilder g, string x) => g.Node("Relu", [x]);
    public static string Exp(this GraphBuilder g, string x) => g.Node("Exp", [x]);
    public static string MatMul(this GraphBuilder g, string a, string b) => g.Node("MatMul", [a, b]);
    public static string Identity(this GraphBuilder g, string x) => g.Node("Identity", [x]);

    /// <summary>Clip(x, lo, hi) with scalar bounds.</summary>
    public static string Clip(this GraphBuilder g, string x, float lo, float hi) => g.Node("Clip", [x, g.Scalar(lo), g.Scalar(hi)]);

    /// <summary>max(0, min(1, alpha x + beta)).</summary>
    public static string HardSigmoid(this GraphBuilder g, string x, float alpha, float beta) =>
        g.Node("HardSigmoid", [x], attrs: [Attr.Float("alpha", alpha), Attr.Float("beta", beta)]);

    /// <summary>x[..., start:end, ...] along one axis (end may be long.MaxValue for "to the end").</summary>
    public static string Slice(this GraphBuilder g, string x, long axis, long start, long end) =>
        g.Node("Slice", [x, g.Ints(start), g.Ints(end), g.Ints(axis)]);

    /// <summary>One Slice over two axes: [start0, end0) along axis0 and [start1, end1) along axis1.</summary>
    public static string Slice(this GraphBuilder g, string x, (long Axis, long Start, long End) a, (long Axis, long Start, long End) b) =>
        g.Node("Slice", [x, g.Ints(a.Start, b.Start), g.Ints(a.End, b.End), g.Ints(a.Axis, b.Axis)]);

    public static string Transpose(this GraphBuilder g, string x, params long[] perm) => g.Node("Transpose", [x], attrs: Attr.Ints("perm", perm));
    public static string Concat(this GraphBuilder g, long axis, params string[] xs) => g.Node("Concat", xs, attrs: Attr.Int("axis", axis));
    public static string Unsqueeze(this GraphBuilder g, string x, params long[] axes) => g.Node("Unsqueeze", [x, g.Ints(axes)]);
    public static string Squeeze(this GraphBuilder g, string x, params long[] axes) => g.Node("Squeeze", [x, g.Ints(axes)]);
    public static string Reshape(this GraphBuilder g, string x, params long[] shape) => g.Node("Reshape", [x, g.Ints(shape)]);
    public static string Shape(this GraphBuilder g, string x) => g.Node("Shape", [x]);

    /// <summary>Dimension <paramref name="axis"/> of x as a 1-element int64 tensor.</summary>
    public static string Dim(this GraphBuilder g, string x, long axis) => g.Node("Shape", [x], attrs: [Attr.Int("start", axis), Attr.Int("end", axis + 1)]);

    /// <summary>Gather with a constant scalar index: removes the axis.</summary>
    public static string Pick(this GraphBuilder g, string x, long index, long axis) => g.Node("Gather", [x, g.Scalar(index)], attrs: Attr.Int("axis", axis));
    public static string Gather(this GraphBuilder g, string x, string indices, long axis) => g.Node("Gather", [x, indices], attrs: Attr.Int("axis", axis));

    /// <summary>Split along an axis into parts of the given sizes (one op, one pass, instead of a Slice per part).</summary>
    public static string[] Split(this GraphBuilder g, string x, long axis, params long[] sizes) =>
        g.NodeMulti("Split", [x, g.Ints(sizes)], sizes.Select(_ => g.Fresh("split")).ToArray(), Attr.Int("axis", axis));

    /// <summary>Zero padding: pads = [begin per axis..., end per axis...].</summary>
    public static string Pad(this GraphBuilder g, string x, params long[] pads) => g.Node("Pad", [x, g.Ints(pads)]);

    /// <summary>Convolution (1-D or 2-D by the weight's rank) with symmetric zero padding.</summary>
    public static string Conv(this GraphBuilder g, string x, string w, string? b, params long[] pads)
    {
        string[] inputs = b is null ? [x, w] : [x, w, b];
        return g.Node("Conv", inputs, attrs: Attr.Ints("pads", [.. pads, .. pads]));
    }

    /// <summary>x @ W^T + b for a weight stored [out, in] (stored transposed once as an initializer by the caller).</summary>
    public static string Linear(this GraphBuilder g, string x, string weightTransposed, string? bias)
    {
        var y = g.MatMul(x, weightTransposed);
        return bias is null ? y : g.Add(y, bias);
    }
}

/// <summary>
/// Builds an ONNX Loop: M iterations (M from a runtime value), loop-carried values, and per-iteration
/// scan outputs stacked along a new first axis. The body may read any value of the outer graph by name.
/// </summary>
public sealed class LoopBuilder
{
    private readonly GraphBuilder _outer;
    private readonly List<(string Name, ElementType Type)> _carried = [];

    public LoopBuilder(GraphBuilder outer, string name)
    {
        _outer = outer;
        Body = new GraphBuilder(name, prefix: name + "_");
        Iteration = Body.Input(name + "_iter", ElementType.Int64, []);
        Condition = Body.Input(name + "_cond_in", ElementType.Bool, []);
    }

    public GraphBuilder Body { get; }
    /// <summary>The iteration number (int64 scalar) inside the body.</summary>
    public string Iteration { get; }
    private string Condition { get; }

    /// <summary>Declares a loop-carried value; returns its name inside the body.</summary>
    public string Carry(string name, ElementType type)
    {
        _carried.Add((name, type));
        return Body.Input(name, type, null!);
    }

    /// <summary>Closes the body and adds the Loop node to the outer graph. Returns the final carried values
    /// and the stacked scan outputs, in order.</summary>
    public (string[] Final, string[] Scans) Finish(string tripCount, string[] initial, string[] carriedNext, (string Value, ElementType Type)[] scans)
    {
        if (initial.Length != _carried.Count || carriedNext.Length != _carried.Count)
            throw new ArgumentException("one initial and one next value per carried value");
        Body.Output(Condition, Body.Fresh("cond_out"), ElementType.Bool, []);
        for (int i = 0; i < _carried.Count; i++)
            Body.Output(carriedNext[i], Body.Fresh(_carried[i].Name + "_next"), _carried[i].Type);
        foreach (var (value, type) in scans)
            Body.Output(value, Body.Fresh("scan"), type);
        var final = initial.Select(_ => _outer.Fresh("loop_final")).ToArray();
        var scanNames = scans.Select(_ => _outer.Fresh("loop_scan")).ToArray();
        _outer.NodeMulti("Loop", [tripCount, "", .. initial], [.. final, .. scanNames], Attr.Graph("body", Body.Build()));
        return (final, scanNames);
    }
}
