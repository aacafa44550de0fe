using Google.Protobuf;
using Toolchain.Export.Onnx.Proto;

namespace Toolchain.Export.Onnx;

/// <summary>ONNX element types Toolchain uses (values of TensorProto.DataType).</summary>
public enum ElementType
{
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
}

/// <summary>A node attribute: build with the typed factories.</summary>
public sealed class Attr
{
    internal AttributeProto Proto { get; }
    private Attr(AttributeProto proto) => Proto = proto;

    public static Attr Int(string name, long value) => new(new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value });
    public static Attr Float(string name, float value) => new(new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value });
    public static Attr String(string name, string value) => new(new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) });
    public static Attr Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return new(a);
    }
    public static Attr Floats(string name, params float[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.AddRange(values);
        return new(a);
    }
    public static Attr Graph(string name, GraphProto graph) => new(new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = graph });
    public static Attr Tensor(string name, TensorProto tensor) => new(new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = tensor });
}

/// <summary>
/// Builds one ONNX graph (the main graph or a Loop body): typed inputs and outputs, initializers stored
/// once, and nodes whose output names are generated unless given. Keeps protobuf plumbing out of exporters.
/// </summary>
public sealed class GraphBuilder(string name, string prefix = "")
{
    private readonly GraphProto _graph = new() { Name = name };
    /// <summary>Stem prefix of generated names, so a Loop body's names never collide with its outer graph's.</summary>
    public string Prefix { get; } = prefix;
    private readonly HashSet<string> _names = [];
    private int _counter;

    public int NodeCount => _graph.Node.Count;

    /// <summary>A value name with the given stem not used so far (claimed when a node or initializer takes it).</summary>
    public string Fresh(string stem)
    {
        string n;
        do { n = $"{Prefix}{stem}_{_counter++}"; } while (_names.Contains(n));
        return n;
    }

    private string Claim(string n)
    {
        if (!_names.Add(n)) throw new InvalidOperationException($"value name '{n}' is used twice in graph '{_graph.Name}'");
        return n;
    }

    /// <summary>Declares a graph input; a dimension is a long (fixed) or a string (symbolic), or null (unknown).</summary>
    public string Input(string inputName, ElementType type, params object?[] dims)
    {
        _graph.Input.Add(ValueInfo(Claim(inputName), type, dims));
        return inputName;
    }

    /// <summary>Declares <paramref name="value"/> as a graph output under the name <paramref name="outputName"/>
    /// (an Identity node is added when the names differ).</summary>
    public void Output(string value, string outputName, ElementType type, params object?[] dims)
    {
        if (value != outputName) Node("Identity", [value], outputName);
        _graph.Output.Add(ValueInfo(outputName, type, dims));
    }

    /// <summary>An output of a subgraph whose shape is left to inference.</summary>
    public void Output(string value, string outputName, ElementType type) =>
        Output(value, outputName, type, null!);

    private static ValueInfoProto ValueInfo(string n, ElementType type, object?[]? dims)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type };
        if (dims is not null && !(dims.Length == 1 && dims[0] is null))
        {
            tensor.Shape = new TensorShapeProto();
            foreach (var d in dims)
            {
                var dim = new TensorShapeProto.Types.Dimension();
                if (d is long l) dim.DimValue = l;
                else if (d is int i) dim.DimValue = i;
                else if (d is string s) dim.DimParam = s;
                tensor.Shape.Dim.Add(dim);
            }
        }
        return new ValueInfoProto { Name = n, Type = new TypeProto { TensorType = tensor } };
    }

    /// <summary>A float initializer stored once in this graph (subgraphs may refer to it by name).</summary>
    public string Initializer(string initName, ReadOnlySpan<float> data, params long[] dims)
    {
        CheckCount(initName, data.Length, dims);
        var t = new TensorProto { Name = Claim(initName), DataType = (int)ElementType.Float, RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data)) };
        t.Dims.AddRange(dims);
        _graph.Initializer.Add(t);
        return initName;
    }

    /// <summary>An int64 initializer (shapes, indices, axes).</summary>
    public string Initializer(string initName, ReadOnlySpan<long> data, params long[] dims)
    {
        CheckCount(initName, data.Length, dims);
        var t = new TensorProto { Name = Claim(initName), DataType = (int)ElementType.Int64, RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data)) };
        t.Dims.AddRange(dims);
        _graph.Initializer.Add(t);
        return initName;
    }

    /// <summary>A 1-D int64 constant (e.g. axes or a shape), as an initializer with a fresh name.</summary>
    public string Ints(params long[] values)
    {
        string key = "i:" + string.Join(",", values);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        return _constants[key] = Initializer(Fresh("const_i64"), values, values.Length);
    }

    /// <summary>A scalar int64 constant (one initializer per distinct value).</summary>
    public string Scalar(long value)
    {
        string key = "l:" + value;
        if (_constants.TryGetValue(key, out var existing)) return existing;
        return _constants[key] = Initializer(Fresh("const_i64"), [value]);
    }

    /// <summary>A scalar float constant (one initializer per distinct value).</summary>
    public string Scalar(float value)
    {
        string key = "f:" + BitConverter.SingleToInt32Bits(value);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        return _constants[key] = Initializer(Fresh("const_f32"), [value]);
    }

    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);

    /// <summary>A scalar bool constant (a Constant node, since raw bool initializers are byte-per-element).</summary>
    public string Bool(bool value)
    {
        var t = new TensorProto { DataType = (int)ElementType.Bool, RawData = ByteString.CopyFrom([(byte)(value ? 1 : 0)]) };
        return Node("Constant", [], attrs: [Attr.Tensor("value", t)]);
    }

    private static void CheckCount(string n, int count, long[] dims)
    {
        long expected = dims.Aggregate(1L, (a, b) => a * b);
        if (expected != count) throw new ArgumentException($"initializer '{n}' has {count} values but shape [{string.Join(",", dims)}] needs {expected}");
    }

    /// <summary>Adds a node with one output; returns the output's name (fresh unless given).</summary>
    public string Node(string opType, string[] inputs, string? output = null, params Attr[] attrs)
    {
        string o = Claim(output ?? Fresh(opType.ToLowerInvariant()));
        AddNode(opType, inputs, [o], attrs);
        return o;
    }

    /// <summary>Adds a node with several outputs (empty string for an omitted optional output).</summary>
    public string[] NodeMulti(string opType, string[] inputs, string[] outputs, params Attr[] attrs)
    {
        foreach (var o in outputs) if (o.Length > 0) Claim(o);
        AddNode(opType, inputs, outputs, attrs);
        return outputs;
    }

    private void AddNode(string opType, string[] inputs, string[] outputs, Attr[] attrs)
    {
        var node = new NodeProto { OpType = opType, Name = $"{opType}_{_graph.Node.Count}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attrs.Select(a => a.Proto));
        _graph.Node.Add(node);
    }

    /// <summary>Registers a name produced outside this builder's nodes (e.g. a Loop body input) as taken.</summary>
    public string Reserve(string n) => Claim(n);

    public GraphProto Build() => _graph;
}

/// <summary>Wraps a graph into a model: IR version, opset, producer and metadata properties.</summary>
public static class ModelWriter
{
    /// <summary>IR 10 with opset 21: what ONNX Runtime 1.31 accepts (it takes opsets 21-26, IR 10-13).</summary>
    public const long IrVersion = 10;
    public const long Opset = 21;

    public static ModelProto Model(GraphProto graph, IReadOnlyDictionary<string, string> metadata, string producerVersion = "0.1.0")
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "toolchain",
            ProducerVersion = producerVersion,
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            model.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return model;
    }

    /// <summary>Writes atomically: a temp file beside the target, then rename.</summary>
    public static void Save(ModelProto model, string path)
    {
        if (Directory.Exists(path))
            throw new ArgumentException($"'{path}' is a folder; name the model file to write, e.g. {Path.Combine(path, "model.onnx")}");
        Toolchain.Suites.AtomicFile.Write(path, model.WriteTo);
    }
}
