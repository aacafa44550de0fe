using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace Toolchain.Evaluate;

public enum ProviderChoice { Auto, Cpu, Cuda }

/// <summary>How to run a model: execution provider, threads, graph optimization, sub-batch bounds.</summary>
public sealed record RunnerOptions
{
    public ProviderChoice Provider { get; init; } = ProviderChoice.Auto;

    /// <summary>Intra-op threads; 0 = ONNX Runtime's default (one per physical core).</summary>
    public int Threads { get; init; }

    public GraphOptimizationLevel Optimization { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Most tokens (batch x length) in one sub-batch; bounds the logits buffer.</summary>
    public long BatchTokens { get; init; } = 1 << 18;

    /// <summary>Most examples in one sub-batch.</summary>
    public int MaxBatch { get; init; } = 256;

    /// <summary>Steps per iteration of the model's step Loop (<see cref="Onnx.LoopChunking"/>); 1 runs the Loop as
    /// exported. Which is faster on CUDA is what tools/gpu-long.sh measures; the default stays 1 until it has.</summary>
    public int LoopChunk { get; init; } = 1;

    /// <summary>Run through an <see cref="OrtIoBinding"/>: the tokens bound as input and, on CUDA, the logits
    /// bound to page-locked (pinned) host memory that the device copies into, instead of ONNX Runtime's plain
    /// copy into the caller's buffer; on CPU the caller's buffers are bound. It changes how the input and the
    /// output cross once per run, not the Loop's per-iteration work.</summary>
    public bool IoBinding { get; init; }

    /// <summary>Where notices go (the CUDA fallback line); stderr in the command line.</summary>
    public Action<string>? Log { get; init; }

    public static string OptimizationName(GraphOptimizationLevel level) => level switch
    {
        GraphOptimizationLevel.ORT_DISABLE_ALL => "disable",
        GraphOptimizationLevel.ORT_ENABLE_BASIC => "basic",
        GraphOptimizationLevel.ORT_ENABLE_EXTENDED => "extended",
        _ => "all",
    };

    public static GraphOptimizationLevel ParseOptimization(string text) => text switch
    {
        "disable" => GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all" => GraphOptimizationLevel.ORT_ENABLE_ALL,
        _ => throw new EvaluationException($"unknown graph optimization level '{text}'; use disable, basic, extended or all"),
    };
}

/// <summary>
/// One ONNX Runtime session for one model (contract 1: int64 `tokens` [batch, length] in, float32 `logits`
/// [batch, length, vocab] out). Runs equal-length examples in sub-batches through the OrtValue API into
/// preallocated, reused buffers and returns the argmax token per position.
/// </summary>
public sealed class OnnxRunner : IDisposable
{
    private static readonly string[] InputNames = ["tokens"];
    private static readonly string[] OutputNames = ["logits"];

    private readonly InferenceSession _session;
    private readonly SessionOptions _options;
    private readonly RunOptions _runOptions = new();
    private readonly string _path;
    private long[] _tokens = [];
    private float[] _logits = [];
    private float[] _probabilities = [];
    private readonly List<OnnxRunner> _members = [];

    public int Vocab { get; }
    public RunnerOptions Options { get; }

    /// <summary>"cuda" or "cpu": what actually runs.</summary>
    public string Provider { get; }

    /// <summary>The device in words (CPU model name, or the CUDA device).</summary>
    public string Device { get; }

    /// <summary>Steps per iteration of the step Loop as the session runs it: <see cref="RunnerOptions.LoopChunk"/>
    /// when the Loop was chunked, else 1.</summary>
    public int LoopChunk { get; internal set; } = 1;

    /// <summary>Total sub-batches run so far and examples run so far.</summary>
    public long Batches { get; private set; }
    public long Examples { get; private set; }

    private OnnxRunner(InferenceSession session, SessionOptions options, string provider, string path, int vocab, RunnerOptions o)
    {
        _session = session;
        _options = options;
        Provider = provider;
        _path = path;
        Vocab = vocab;
        Options = o;
        Device = provider == "cuda" ? "CUDA device 0" : CpuName();
    }

    /// <summary>Opens a session on <paramref name="model"/>'s bytes, or (null) on the file at <paramref name="path"/>,
    /// so that ONNX Runtime resolves external data next to the model (and refuses absolute or escaping paths):
    /// for Auto, CUDA when it loads, else CPU with one notice; for Cuda, CUDA or an error.</summary>
    public static OnnxRunner Open(byte[]? model, string path, int vocab, RunnerOptions o)
    {
        InferenceSession NewSession(SessionOptions options) =>
            model is null ? new InferenceSession(path, options) : new InferenceSession(model, options);
        if (o.Provider != ProviderChoice.Cpu)
        {
            SessionOptions? cudaOptions = null;
            var env = OrtEnv.Instance();
            var level = env.EnvLogLevel;
            try
            {
                env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL; // the failure is reported below, in one line

                cudaOptions = NewOptions(o);
                cudaOptions.AppendExecutionProvider_CUDA(0);
                var session = NewSession(cudaOptions);
                return new OnnxRunner(session, cudaOptions, "cuda", path, vocab, o);
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException or TypeInitializationException)
            {
                cudaOptions?.Dispose();
                string why = CudaLoadError() ?? FirstLine(e.Message);
                if (o.Provider == ProviderChoice.Cuda)
                    throw new EvaluationException($"the CUDA provider cannot run '{path}': {why}; install the CUDA 13 and cuDNN 9 libraries, or use --provider cpu");
                o.Log?.Invoke($"notice: CUDA provider unavailable ({why}); running on CPU");
            }
            finally
            {
                env.EnvLogLevel = level;
            }
        }
        var options = NewOptions(o);
        try
        {
            return new OnnxRunner(NewSession(options), options, "cpu", path, vocab, o);
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    private static SessionOptions NewOptions(RunnerOptions o)
    {
        var s = new SessionOptions
        {
            GraphOptimizationLevel = o.Optimization,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
        };
        if (o.Threads > 0) s.IntraOpNumThreads = o.Threads;
        return s;
    }

    /// <summary>Why the CUDA provider library does not load (the dynamic loader's message, e.g. a missing
    /// libcublasLt), or null when it loads or cannot be found.</summary>
    private static string? CudaLoadError()
    {
        string name = OperatingSystem.IsWindows() ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
        string rid = OperatingSystem.IsWindows() ? "win-x64" : "linux-x64";
        foreach (var dir in new[] { AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native") })
        {
            string path = Path.Combine(dir, name);
            if (!File.Exists(path)) continue;
            try
            {
                System.Runtime.InteropServices.NativeLibrary.Free(System.Runtime.InteropServices.NativeLibrary.Load(path));
                return null;
            }
            catch (DllNotFoundException e)
            {
                var m = System.Text.RegularExpressions.Regex.Match(e.Message, @"[^\s:/]+\.so[.\d]*: cannot open shared object file[^\r\n]*");
                return m.Success ? m.Value.TrimEnd('.', ' ') : FirstLine(e.Message);
            }
        }
        return null;
    }

    /// <summary>The first non-empty line of a message, cut at 300 characters.</summary>
    public static string FirstLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? message;
        return line.Length > 300 ? line[..300] + "..." : line;
    }

    public InferenceSession Session => _session;


    /// <summary>Most examples of a length that may run together for memory (the evaluator sets it from its memory
    /// estimate); null: no limit besides the token and batch bounds.</summary>
    public Func<int, int>? MemoryBatchLimit { get; set; }

    /// <summary>Examples per sub-batch at a length, bounded by <see cref="RunnerOptions.BatchTokens"/>,
    /// <see cref="RunnerOptions.MaxBatch"/> and <see cref="MemoryBatchLimit"/> (and at least one).</summary>
    public int BatchSize(int length) =>
        Math.Max(1, Math.Min((int)Math.Clamp(Options.BatchTokens / Math.Max(1, length), 1, Math.Max(1, Options.MaxBatch)), MemoryBatchLimit?.Invoke(length) ?? int.MaxValue));

    /// <summary>Test hook, called with (batch, length) just before each session run; it may throw what ONNX
    /// Runtime throws (e.g. an allocation failure above some batch x length) to exercise the recovery.</summary>
    internal Action<int, int>? BeforeRun { get; set; }

    /// <summary>Test hook: the peak memory, in bytes, of running one example of a length; replaces the
    /// measurement of <see cref="PeakMeter"/>.</summary>
    internal Func<int, long>? PeakBytesOverride { get; set; }

    /// <summary>Substrings of ONNX Runtime error messages that mean an allocation failed (the CPU arena's
    /// "Failed to allocate memory", std::bad_alloc, CUDA and cuBLAS/cuDNN out-of-memory errors).</summary>
    public static readonly IReadOnlyList<string> AllocationFailureMarkers =
        ["Failed to allocate", "bad_alloc", "out of memory", "ALLOC_FAILED", "cudaErrorMemoryAllocation"];

    public static bool IsAllocationFailure(string message) =>
        AllocationFailureMarkers.Any(m => message.Contains(m, StringComparison.OrdinalIgnoreCase));

    /// <summary>Shortest length at which one example could not be allocated; longer lengths fail at once.</summary>
    public int? OutOfMemoryLength { get; private set; }

    /// <summary>The other models of an ensemble (<see cref="AddMember"/>); empty for a single model.</summary>
    public IReadOnlyList<OnnxRunner> Members => _members;

    /// <summary>Makes this runner an ensemble: its predictions become the argmax of the per-position softmax
    /// probabilities averaged over itself and every member (equal weights). A position where two tokens tie
    /// for the highest average, or where any member's logits are not finite, gets no prediction (-1, wrong):
    /// an ensemble of a right model and an equally confident wrong one does not guess between them. The
    /// member is disposed with this runner.</summary>
    public void AddMember(OnnxRunner member)
    {
        if (member.Vocab != Vocab)
            throw new ArgumentException($"ensemble: '{member._path}' has {member.Vocab} output classes, '{_path}' has {Vocab}");
        _members.Add(member);
    }

    /// <summary>Sub-batch caps learnt from allocation failures, per length.</summary>
    private readonly Dictionary<int, int> _batchCap = [];

    /// <summary>Predicted tokens (argmax over the vocabulary) for equal-length inputs. When ONNX Runtime
    /// cannot allocate the memory for a sub-batch, the sub-batch is halved and retried (and later calls at
    /// that length start from the smaller batch); when even one example cannot be allocated, throws
    /// <see cref="ModelOutOfMemoryException"/>. Other runtime failures are an <see cref="EvaluationException"/>.</summary>
    public int[][] Predict(IReadOnlyList<int[]> inputs, CancellationToken cancel = default)
    {
        var result = new int[inputs.Count][];
        if (inputs.Count == 0) return result;
        int length = inputs[0].Length;
        foreach (var x in inputs)
            if (x.Length != length) throw new ArgumentException("a batch must hold examples of one length");
        if (OutOfMemoryLength is { } oom && length >= oom)
            throw new ModelOutOfMemoryException($"model '{_path}' cannot run one example of length {length:N0}: it already ran out of memory at length {oom:N0} (batch 1)", length, 1);
        int batch = BatchSize(length);
        if (_batchCap.TryGetValue(length, out int cap)) batch = Math.Min(batch, cap);
        for (int start = 0; start < inputs.Count;)
        {
            cancel.ThrowIfCancellationRequested();
            int b = Math.Min(batch, inputs.Count - start);
            try
            {
                RunBatch(inputs, start, b, length, result);
                start += b;
            }
            catch (Exception e) when (e is OutOfMemoryException || (e is OnnxRuntimeException && IsAllocationFailure(e.Message)))
            {
                if (b == 1)
                {
                    OutOfMemoryLength = Math.Min(OutOfMemoryLength ?? int.MaxValue, length);
                    throw new ModelOutOfMemoryException($"model '{_path}' ran out of memory on one example of length {length:N0} (batch 1): {FirstLine(e.Message)}", length, 1, e);
                }
                batch = Math.Max(1, b / 2);
                _batchCap[length] = batch;
                Options.Log?.Invoke($"notice: out of memory on a batch of {b} x {length:N0} tokens ({FirstLine(e.Message)}); retrying with batches of {batch}");
            }
        }
        return result;
    }

    private void RunBatch(IReadOnlyList<int[]> inputs, int start, int b, int length, int[][] result)
    {
        long tokens = (long)b * length;
        if (_tokens.Length < tokens) _tokens = new long[tokens];
        for (int i = 0; i < b; i++)
        {
            var x = inputs[start + i];
            for (int j = 0; j < length; j++) _tokens[(long)i * length + j] = x[j];
        }
        // a single model predicts the argmax of its logits; an ensemble the unique argmax of the summed probabilities
        bool ensemble = _members.Count > 0;
        ReadOnlySpan<float> scores = ensemble ? EnsembleProbabilities(b, length) : Logits(_tokens, b, length);
        for (int i = 0; i < b; i++)
        {
            var pred = new int[length];
            for (int j = 0; j < length; j++)
            {
                var position = scores.Slice((i * length + j) * Vocab, Vocab);
                pred[j] = ensemble ? UniqueArgMax(position) : ArgMax(position);
            }
            result[start + i] = pred;
        }
        Batches++;
        Examples += b;
    }

    /// <summary>The ensemble's softmax probabilities [b, length, vocab], summed over the models (the argmax of the
    /// sum is the argmax of the mean).</summary>
    private Span<float> EnsembleProbabilities(int b, int length)
    {
        int positions = b * length;
        long size = checked((long)positions * Vocab);
        if (_probabilities.Length < size) _probabilities = new float[size];
        var sum = _probabilities.AsSpan(0, (int)size);
        sum.Clear();
        foreach (var model in _members.Prepend(this))
        {
            var logits = model.Logits(_tokens, b, length);
            for (int p = 0; p < positions; p++)
                AddSoftmax(logits.Slice(p * Vocab, Vocab), sum.Slice(p * Vocab, Vocab));
        }
        return sum;
    }

    /// <summary>Adds softmax(<paramref name="logits"/>) to <paramref name="sum"/>; NaN everywhere when a logit is
    /// not finite.</summary>
    public static void AddSoftmax(ReadOnlySpan<float> logits, Span<float> sum)
    {
        float max = float.NegativeInfinity;
        foreach (float x in logits)
        {
            if (!float.IsFinite(x)) { sum.Fill(float.NaN); return; }
            max = Math.Max(max, x);
        }
        double total = 0;
        foreach (float x in logits) total += Math.Exp(x - max);
        for (int v = 0; v < logits.Length; v++) sum[v] += (float)(Math.Exp(logits[v] - max) / total);
    }

    /// <summary>Index of the largest value, or -1 when it is not unique or a value is NaN.</summary>
    public static int UniqueArgMax(ReadOnlySpan<float> v)
    {
        int best = -1;
        bool tied = false;
        for (int i = 0; i < v.Length; i++)
        {
            if (float.IsNaN(v[i])) return -1;
            if (best < 0 || v[i] > v[best]) { best = i; tied = false; }
            else if (v[i] == v[best]) tied = true;
        }
        return tied ? -1 : best;
    }

    /// <summary>Runs this runner's session on <paramref name="source"/>'s first b x length tokens; the logits
    /// [b, length, vocab] stay valid until its next call.</summary>
    private Span<float> Logits(long[] source, int b, int length)
    {
        long tokens = (long)b * length;
        long logits = checked(tokens * Vocab);
        if (_logits.Length < logits) _logits = new float[logits];
        using (var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, source.AsMemory(0, (int)tokens), [b, length]))
        using (var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _logits.AsMemory(0, (int)logits), [b, length, Vocab]))
        {
            try
            {
                BeforeRun?.Invoke(b, length);
                if (Options.IoBinding) RunBound(input, output, logits);
                else _session.Run(_runOptions, InputNames, [input], OutputNames, [output]);
            }
            catch (OnnxRuntimeException e) when (!IsAllocationFailure(e.Message))
            {
                throw new EvaluationException($"model '{_path}' failed on a batch of {b} x {length} tokens: {FirstLine(e.Message)} " +
                    $"(contract 1 needs logits of shape [batch, length, {Vocab}] for any batch and length)", e);
            }
        }
        return _logits.AsSpan(0, (int)logits);
    }

    private OrtIoBinding? _binding;
    private OrtMemoryInfo? _pinned;

    /// <summary>One run through the IO binding (<see cref="RunnerOptions.IoBinding"/>); the logits end up in
    /// <see cref="_logits"/> either way.</summary>
    private void RunBound(OrtValue input, OrtValue output, long logits)
    {
        _binding ??= _session.CreateIoBinding();
        _binding.BindInput(InputNames[0], input);
        if (Provider == "cuda")
        {
            // ONNX Runtime allocates the output in pinned host memory, which the device writes without a staging copy
            _pinned ??= new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA_PINNED, OrtAllocatorType.DeviceAllocator, 0, OrtMemType.CpuOutput);
            _binding.BindOutputToDevice(OutputNames[0], _pinned);
            _session.RunWithBinding(_runOptions, _binding);
            _binding.SynchronizeBoundOutputs();
            using var values = _binding.GetOutputValues();
            values[0].GetTensorDataAsSpan<float>().CopyTo(_logits.AsSpan(0, (int)logits));
        }
        else
        {
            _binding.BindOutput(OutputNames[0], output);
            _session.RunWithBinding(_runOptions, _binding);
        }
        _binding.ClearBoundInputs();
        _binding.ClearBoundOutputs();
    }

    /// <summary>Index of the largest value (the first on ties); NaN never wins; -1 when all are NaN.</summary>
    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = -1;
        float max = float.NegativeInfinity;
        for (int i = 0; i < v.Length; i++)
        {
            float x = v[i];
            if (float.IsNaN(x)) continue;
            if (best < 0 || x > max) { best = i; max = x; }
        }
        return best;
    }

    private static string CpuName()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int c and > 0)
                    return $"CPU {line[(c + 1)..].Trim()} ({Environment.ProcessorCount} logical cores)";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"CPU {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} ({Environment.ProcessorCount} logical cores)";
    }

    public void Dispose()
    {
        foreach (var member in _members) member.Dispose();
        _binding?.Dispose();
        _pinned?.Dispose();
        _session.Dispose();
        _options.Dispose();
        _runOptions.Dispose();
    }

    internal static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
}
