using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Train;

/// <summary>A checkpoint that cannot be used: names the file and what to do.</summary>
public sealed class CheckpointException(string message) : Exception(message);

/// <summary>
/// Checkpoint file format (little-endian):
///   magic "TCKPT001" | int32 n, n bytes of UTF-8 JSON header {format, config, state} |
///   int32 count | count x (int32 name length, name, int32 rank, rank x int64 dims, float32 data) |
///   32-byte SHA-256 of everything before it.
/// Written atomically (temp file + rename); a truncated, corrupt or foreign file is refused on load.
/// </summary>
public sealed class Checkpoint
{
    private static readonly byte[] Magic = "TCKPT001"u8.ToArray();
    public const string Extension = ".tckpt";

    public required RunConfig Config { get; init; }
    /// <summary>Trainer state (step, curriculum, schedules) as JSON.</summary>
    public required JsonObject State { get; init; }
    /// <summary>Model parameters then optimizer state, "model/NAME" and "optim/NAME".</summary>
    public required IReadOnlyDictionary<string, Tensor> Tensors { get; init; }

    /// <summary>The tensors whose names start with <paramref name="prefix"/> ("model/", "optim/"), prefix removed.</summary>
    public Dictionary<string, Tensor> Section(string prefix) =>
        Tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    /// <summary>Set on a compacted checkpoint (<see cref="WithoutOptimizerState"/>): the SHA-256 of the full checkpoint it was made
    /// from, the hash that cards and exports of the run before compaction name.</summary>
    public string? CompactedFrom { get; init; }

    /// <summary>Whether the optimizer's state is in the file: false once <see cref="WithoutOptimizerState"/> dropped it.</summary>
    public bool HasOptimizerState => Tensors.Keys.Any(k => k.StartsWith("optim/", StringComparison.Ordinal));

    /// <summary>SHA-256 of the file it was loaded from (the `toolchain.source` of exports).</summary>
    public string? FileHash { get; private set; }

    /// <summary>The path it was loaded from or saved to, for messages.</summary>
    public string? Source { get; private set; }

    public static string FileName(long step) => $"ckpt-{step:D8}{Extension}";

    public void Save(string path)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            var header = new JsonObject
            {
                ["format"] = 1,
                ["config"] = JsonNode.Parse(Config.ToJson()),
                ["state"] = State.DeepClone(),
            };
            if (CompactedFrom is not null) header["compacted_from"] = CompactedFrom;
            var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
            w.Write(headerBytes.Length);
            w.Write(headerBytes);
            w.Write(Tensors.Count);
            foreach (var (name, tensor) in Tensors)
            {
                var nameBytes = Encoding.UTF8.GetBytes(name);
                w.Write(nameBytes.Length);
                w.Write(nameBytes);
                w.Write((int)tensor.shape.Length);
                foreach (long d in tensor.shape) w.Write(d);
                using var cpu = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
                w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()));
            }
        }
        var body = ms.ToArray();
        var hash = SHA256.HashData(body);
        string full = Path.GetFullPath(path);
        string temp = $"{full}.{Environment.ProcessId}.tmp";
        try
        {
            using (var f = File.Create(temp))
            {
                f.Write(body);
                f.Write(hash);
                f.Flush(flushToDisk: true);
            }
            Toolchain.Suites.AtomicFile.ThrowIfFaulted(full);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (Toolchain.Suites.StorageException.IsStorageFailure(e))
        {
            // a full disk: the previous checkpoints are untouched, and no half-written file is left behind
            Toolchain.Suites.AtomicFile.TryDelete(temp);
            throw Toolchain.Suites.StorageException.From(full, e);
        }
        FileHash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(full)));
        Source = full;
    }

    /// <summary>The end of a refusal of a header with a valid checksum but impossible contents.</summary>
    private const string Altered = "the file was not written by `toolchain train`, or was altered";

    public static Checkpoint Load(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException($"{path}: no such checkpoint file");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 32 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new CheckpointException($"{path}: not a Toolchain checkpoint (wrong magic bytes); pass a file written by `toolchain train`");
        var body = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
            throw new CheckpointException($"{path}: checkpoint is truncated or corrupt (checksum mismatch); use an earlier checkpoint from the same run directory");
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes, 0, body.Length), Encoding.UTF8);
            r.ReadBytes(Magic.Length);
            var header = JsonNode.Parse(r.ReadBytes(r.ReadInt32()))!.AsObject();
            if ((int?)header["format"] != 1)
                throw new CheckpointException($"{path}: checkpoint format {header["format"]} is not supported by this version (format 1)");
            var config = RunConfig.FromJson(header["config"]!.ToJsonString());
            try { config.Validate(); }
            catch (ArgumentException e)
            {
                throw new CheckpointException($"{path}: the checkpoint's configuration is invalid ({e.Message}); {Altered}");
            }
            var state = header["state"]!.AsObject();
            int count = r.ReadInt32();
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            for (int i = 0; i < count; i++)
            {
                string name = Encoding.UTF8.GetString(r.ReadBytes(r.ReadInt32()));
                var dims = new long[r.ReadInt32()];
                for (int d = 0; d < dims.Length; d++) dims[d] = r.ReadInt64();
                if (dims.Length > 8 || dims.Any(d => d < 0))
                    throw new CheckpointException($"{path}: tensor '{name}' has the impossible shape [{string.Join(",", dims)}]; {Altered}");
                long n = dims.Aggregate(1L, (a, b) => checked(a * b));
                if (n * 4 > body.Length - r.BaseStream.Position)
                    throw new CheckpointException(
                        $"{path}: tensor '{name}' of shape [{string.Join(",", dims)}] needs more bytes than the file holds; {Altered}");
                var data = new float[n];
                var raw = r.ReadBytes(checked((int)(n * 4)));
                Buffer.BlockCopy(raw, 0, data, 0, raw.Length);
                tensors[name] = torch.tensor(data, dims).DetachFromDisposeScope();
            }
            string hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
            string? compactedFrom = header["compacted_from"]?.GetValue<string>();
            return new Checkpoint { Config = config, State = state, Tensors = tensors, FileHash = hash, Source = path, CompactedFrom = compactedFrom };
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or ArgumentException or OverflowException or NullReferenceException or InvalidOperationException)
        {
            throw new CheckpointException($"{path}: checkpoint header or tensors are malformed ({e.Message})");
        }
    }

    /// <summary>
    /// This checkpoint without its optimizer state, to save over the file it came from: the weights, configuration and
    /// trainer state are kept bit for bit, and the header names this file's SHA-256 (<see cref="CompactedFrom"/>).
    /// For finished runs whose checkpoints are committed (the zoo): about a third of the size for AdaMax and Adam,
    /// which keep two moments per weight. Such a checkpoint exports and grades like the full one; training refuses to
    /// continue from it.
    /// </summary>
    public Checkpoint WithoutOptimizerState() => new()
    {
        Config = Config,
        State = State,
        Tensors = Tensors.Where(kv => !kv.Key.StartsWith("optim/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
        CompactedFrom = FileHash,
    };

    /// <summary>Checkpoint files of a run directory, newest first.</summary>
    public static IReadOnlyList<string> InDirectory(string dir) =>
        Directory.Exists(dir)
            ? Directory.GetFiles(dir, "ckpt-*" + Extension).OrderByDescending(f => f, StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>The newest checkpoint of a run directory (or the file itself).</summary>
    public static Checkpoint LoadLatest(string dirOrFile)
    {
        if (File.Exists(dirOrFile)) return Load(dirOrFile);
        var files = InDirectory(dirOrFile);
        if (files.Count == 0)
            throw new CheckpointException($"{dirOrFile}: no checkpoint (ckpt-*{Extension}) found; train with `toolchain train --out {dirOrFile}` first");
        return Load(files[0]);
    }
}
