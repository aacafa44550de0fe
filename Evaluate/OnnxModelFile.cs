using System.Text;

namespace Toolchain.Evaluate;

/// <summary>
/// The few top-level fields of an ONNX ModelProto that intake checks before ONNX Runtime sees the file:
/// IR version, opset imports and metadata properties. A tiny protobuf wire reader, so the evaluator needs
/// no schema and no reference to the export project.
/// </summary>
public sealed record OnnxModelHeader(long IrVersion, IReadOnlyList<(string Domain, long Version)> Opsets, IReadOnlyDictionary<string, string> Metadata, bool HasGraph)
{
    /// <summary>The ai.onnx opset version, or null when the model imports none.</summary>
    public long? DefaultOpset => Opsets.Where(o => o.Domain is "" or "ai.onnx").Select(o => (long?)o.Version).FirstOrDefault();

    /// <summary>Reads the header; throws <see cref="InvalidDataException"/> when the bytes are not a protobuf ModelProto.</summary>
    public static OnnxModelHeader Read(ReadOnlySpan<byte> data)
    {
        long ir = 0;
        bool graph = false;
        var opsets = new List<(string, long)>();
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        var r = new WireReader(data);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            switch (field, wire)
            {
                case (1, 0): ir = (long)r.Varint(); break;
                case (7, 2): r.Bytes(); graph = true; break;
                case (8, 2):
                    {
                        var sub = new WireReader(r.Bytes());
                        string domain = "";
                        long version = 0;
                        while (!sub.End)
                        {
                            var (f, w) = sub.Tag();
                            if (f == 1 && w == 2) domain = sub.String();
                            else if (f == 2 && w == 0) version = (long)sub.Varint();
                            else sub.Skip(w);
                        }
                        opsets.Add((domain, version));
                        break;
                    }
                case (14, 2):
                    {
                        var sub = new WireReader(r.Bytes());
                        string key = "", value = "";
                        while (!sub.End)
                        {
                            var (f, w) = sub.Tag();
                            if (f == 1 && w == 2) key = sub.String();
                            else if (f == 2 && w == 2) value = sub.String();
                            else sub.Skip(w);
                        }
                        meta[key] = value;
                        break;
                    }
                default: r.Skip(wire); break;
            }
        }
        return new OnnxModelHeader(ir, opsets, meta, graph);
    }

    private ref struct WireReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly bool End => _pos >= _data.Length;

        public (int Field, int Wire) Tag()
        {
            ulong tag = Varint();
            int field = (int)(tag >> 3), wire = (int)(tag & 7);
            if (field <= 0 || wire is 3 or 4 or 6 or 7) throw Bad($"invalid field tag {tag}");
            return (field, wire);
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length) throw Bad("truncated varint");
                byte b = _data[_pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return v;
            }
            throw Bad("varint longer than 10 bytes");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong len = Varint();
            if (len > (ulong)(_data.Length - _pos)) throw Bad($"length {len} runs past the end of the data");
            var s = _data.Slice(_pos, (int)len);
            _pos += (int)len;
            return s;
        }

        public string String()
        {
            try { return new UTF8Encoding(false, true).GetString(Bytes()); }
            catch (DecoderFallbackException) { throw Bad("string field is not UTF-8"); }
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Bytes(); break;
                case 5: Advance(4); break;
                default: throw Bad($"wire type {wire}");
            }
        }

        private void Advance(int n)
        {
            if (_pos + n > _data.Length) throw Bad("truncated fixed-width field");
            _pos += n;
        }

        private readonly InvalidDataException Bad(string what) => new($"protobuf breaks at byte {_pos}: {what}");
    }
}
