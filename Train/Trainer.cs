using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Toolchain.Suites;
using Toolchain.Train.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Toolchain.Train;

/// <summary>One line of the metrics log (metrics.jsonl) and of the progress display.</summary>
public sealed record StepMetrics(long Step, int Size, double Loss, double SymbolAccuracy, double SequenceAccuracy,
    double ExamplesPerSecond, double ElapsedSeconds, double LearningRate);

/// <summary>Where one training step's time went, in seconds: making the examples (and their tensors), the forward
/// pass with the loss, the backward pass with gradient noise and clipping, and the optimizer update.</summary>
public readonly record struct StepPhases(double Data, double Forward, double Backward, double Optimizer)
{
    public double Total => Data + Forward + Backward + Optimizer;
}

/// <summary>What a run did: per-step losses (for exact-resume checks) and events such as NaN recoveries.</summary>
public sealed class TrainResult
{
    public List<(long Step, double Loss)> Losses { get; } = [];
    public List<string> Events { get; } = [];
    public StepMetrics? Last { get; set; }
    public required string RunDirectory { get; init; }
}

/// <summary>
/// Trains one model on one task. Every step's data and random draws are a pure function of (seed, step),
/// and the whole mutable state (parameters, optimizer moments, curriculum and schedules) is in the
/// checkpoint, so a run killed at any moment resumes exactly where its last checkpoint left it.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly RunConfig _config;
    private readonly AlgorithmicTask _task;
    private readonly Bin[] _bins; // the run's bins, fixed by its configuration
    private readonly IReadOnlyList<string> _hardFamilies; // the hard fraction's draw table (hard_families), built once
    private readonly string _dir;
    private readonly TextWriter _log;
    private readonly Device _device;
    private AlgorithmicModel _model;
    private readonly Optimizer _optimizer;
    private TrainerState _state = new();

    /// <summary>Test hook: return true to make the loss of that step NaN (exercises the recovery path).</summary>
    public Func<long, bool>? PoisonLoss { get; set; }

    /// <summary>Called after every completed step with the number of steps done.</summary>
    public Action<long>? AfterStep { get; set; }

    /// <summary>Where the last step's time went (the bench's profile).</summary>
    public StepPhases LastPhases { get; private set; }

    public Trainer(RunConfig config, string runDirectory, TextWriter? log = null)
    {
        HeapSettings.KeepFreedMemoryForTraining();
        _config = config.Validate();
        _task = TaskRegistry.Get(config.Task);
        CheckBinPadding(_config, _task);
        _bins = TrainingBins(_config, _task);
        _hardFamilies = HardFamilyTable(_config, _task);
        _dir = runDirectory;
        _log = log ?? TextWriter.Null;
        _device = ResolveDevice(config.Device);
        if (config.Threads > 0) torch.set_num_threads(config.Threads);
        torch.manual_seed((long)(Rng.StableHash(config.Seed, "init") >> 1));
        _model = ModelRegistry.Create(config, _task.Vocab.Count);
        _model.to(_device);
        _optimizer = new Optimizer(config.Optimizer);
    }

    public AlgorithmicModel Model => _model;

    /// <summary>Steps completed so far (after a resume, counted from the start of the run).</summary>
    public long Step => _state.Step;

    public static Device ResolveDevice(string device)
    {
        if (device == "cpu") return torch.CPU;
        if (device != "cuda") throw new ArgumentException($"device must be cpu or cuda, not '{device}'");
        if (!torch.cuda.is_available())
            throw new ArgumentException("--device cuda: TorchSharp has no usable CUDA backend in this build (it references TorchSharp-cpu, or no CUDA driver/GPU is present); " +
                "build with -p:TorchBackend=cuda on a machine with CUDA, or put a CUDA libtorch first on LD_LIBRARY_PATH (PyTorch's torch/lib works: README, 'Training on a GPU'), or use --device cpu");
        return torch.CUDA;
    }

    /// <summary>Size bins trained at once (DNGPU) or the curriculum's range: up to the training size.</summary>
    public static int[] Bins(AlgorithmicTask task, int trainLength)
    {
        var bins = new SortedSet<int>();
        for (int i = 2; i <= 10; i++) bins.Add(Math.Max(task.MinSize, (int)Math.Ceiling(trainLength * i / 10.0)));
        return [.. bins];
    }

    /// <summary>One training bin: examples of sizes in (<c>Below</c>, <c>Size</c>] (bin_padding), or exactly
    /// <c>Size</c> (no <c>Below</c>), padded with PAD to <c>Length</c> tokens, so the model runs <c>Length</c> steps.</summary>
    public readonly record struct Bin(int Length, int Size, int? Below);

    /// <summary>The DNGPU reference's bin lengths (DNGPU_trainer.py), for inputs of up to 41 tokens.</summary>
    public static readonly int[] ReferenceBinLengths = [8, 12, 16, 20, 25, 28, 31, 36, 41];

    /// <summary>The bins a step trains on. Default: one bin per size of <see cref="Bins(AlgorithmicTask, int)"/>, each of
    /// its own length (with bin_padding, each also holds the sizes above the bin before it). With bin_lengths, the
    /// listed lengths (or "dngpu": the reference's lengths below the training length, then the training length):
    /// a bin holds every size whose input fits in it and not in the bin before it.</summary>
    public static Bin[] TrainingBins(RunConfig config, AlgorithmicTask task)
    {
        if (config.BinLengths == "")
        {
            var sizes = Bins(task, config.TrainLength);
            return [.. sizes.Select((s, i) => new Bin(task.LengthForSize(s), s,
                !config.BinPadding ? null : i > 0 ? sizes[i - 1] : task.MinSize - 1))];
        }
        int top = task.LengthForSize(config.TrainLength);
        int[] lengths = config.BinLengths == "dngpu"
            ? [.. ReferenceBinLengths.Where(l => l < top), top]
            : [.. config.BinLengths.Split(',', StringSplitOptions.TrimEntries).Select(t =>
                int.TryParse(t, System.Globalization.NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= 1 ? v
                : throw new ArgumentException($"bin_lengths: '{t}' is not a length (a positive whole number); write e.g. bin_lengths=8,12,16,21 or bin_lengths=dngpu"))];
        var bins = new List<Bin>();
        int below = task.MinSize - 1;
        foreach (int length in lengths)
        {
            if (bins.Count > 0 && length <= bins[^1].Length)
                throw new ArgumentException($"bin_lengths: {config.BinLengths} must increase");
            int size = Math.Min(task.SizeForLength(length), config.TrainLength);
            if (size <= below)
                throw new ArgumentException($"bin_lengths: the bin of length {length} holds no size of task '{task.Name}' that the bins before it do not; remove it");
            bins.Add(new Bin(length, size, below));
            below = size;
        }
        if (bins[^1].Size != config.TrainLength || bins[^1].Length > top)
            throw new ArgumentException($"bin_lengths: the last bin must be the training length {top} (size {config.TrainLength}); write e.g. bin_lengths={string.Join(',', lengths.Where(l => l < top))},{top}");
        return [.. bins];
    }

    /// <summary>Bench hook: one training step at the current step (examples, forward, backward, optimizer) with no
    /// logging, schedules or checkpoint; returns its loss. Nothing is written.</summary>
    public double BenchStep()
    {
        using var scope = torch.NewDisposeScope();
        var work = Prepare();
        torch.manual_seed(work.TorchSeed);
        _model.train();
        var loss = LossOf(work, work.Batches.Select(batch => _model.Run(batch.Tokens, keepStates: false)).ToList());
        if (!loss.Finite) throw new TrainingDivergedException($"bench: the loss turned NaN/inf at step {_state.Step}");
        Backward([this], [loss]);
        Apply(work, loss, generator: null);
        CountBenchStep();
        return loss.CrossEntropy;
    }

    /// <summary>Bench: counts an applied step without the schedules, log or checkpoints of <see cref="Advance"/>.</summary>
    internal void CountBenchStep() => _state.Step++;

    public RunConfig Config => _config;

    /// <summary>Continues from the newest checkpoint in the run directory, if there is one.</summary>
    public bool TryResume()
    {
        var refused = new List<string>();
        foreach (var file in Checkpoint.InDirectory(_dir))
        {
            Checkpoint ckpt;
            try { ckpt = Checkpoint.Load(file); }
            catch (CheckpointException e)
            {
                _log.WriteLine($"resume: refusing {e.Message}; trying the previous checkpoint");
                refused.Add(e.Message);
                continue;
            }
            var saved = ckpt.Config with { Steps = _config.Steps, LogEvery = _config.LogEvery, CheckpointEvery = _config.CheckpointEvery, KeepCheckpoints = _config.KeepCheckpoints, Threads = _config.Threads, Device = _config.Device,
                LrDecay = _config.LrDecay, LrDecayEvery = _config.LrDecayEvery, LrMinFactor = _config.LrMinFactor, GradNoise = _config.GradNoise,
                ProbeEvery = _config.ProbeEvery, ProbeSizes = _config.ProbeSizes, ProbeSamples = _config.ProbeSamples,
                InferenceStepFactor = _config.InferenceStepFactor };
            if (saved != _config)
                throw new ArgumentException($"{file}: the checkpoint was trained with a different configuration ({RunConfigDifference.Describe(saved, _config)}); resume with the same settings (only steps, logging, checkpointing, probing, threads, device, the learning-rate decay, the gradient noise and the inference step factor may change)");
            long savedStep = TrainerState.FromJson(ckpt.State).Step;
            if (!ckpt.HasOptimizerState && savedStep < _config.Steps)
                throw new CheckpointException($"{file}: holds the weights only (compacted when its run finished at step {savedStep}: its optimizer state was dropped to keep the committed zoo small), " +
                    $"so it cannot train on to step {_config.Steps}; it still exports and grades. To train further, start a new run in another --out");
            Restore(ckpt);
            if (ckpt.Config.GradNoise != _config.GradNoise)
                _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resume: gradient noise changes from {ckpt.Config.GradNoise} to {_config.GradNoise} at step {_state.Step}"));
            if (ckpt.Config.InferenceStepFactor != _config.InferenceStepFactor)
                _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resume: inference step factor changes from {ckpt.Config.InferenceStepFactor} to {_config.InferenceStepFactor} at step {_state.Step} (probes and exports from here run ceil({_config.InferenceStepFactor} n) steps; training runs ceil({_config.TrainStepFactor} n))"));
            _log.WriteLine($"resumed from {Path.GetFileName(file)} at step {_state.Step}");
            if (_config.Relaxation > 1 && _model.ParameterSets == 1 && !_state.CurriculumAtFullLength(_config) && _state.Step < _config.Steps)
                _log.WriteLine($"resume: warning: {Path.GetFileName(file)} holds the relaxation sets averaged at the end of its run (step {_state.Step}), not at full curriculum length; " +
                    "training goes on with that one averaged set. To continue with the sets, move this checkpoint aside and resume from the one before it.");
            return true;
        }
        if (refused.Count > 0)
            throw new CheckpointException($"{_dir}: --resume cannot resume: none of its {refused.Count} checkpoint(s) can be used (newest: {refused[0]}); " +
                "nothing was changed: restore a good checkpoint there, or start a new run in another --out");
        return false;
    }

    /// <summary>init_from: a new run takes another run's weights, optimizer moments and optimizer step count (so
    /// AdaMax's normalizer and beta2 schedule go on where they were, not from zero); its own step starts at 0.</summary>
    private void WarmStart(string file)
    {
        if (!File.Exists(file))
            throw new CheckpointException($"{file}: init_from names no checkpoint file; give the path of a .tckpt file (a run folder's ckpt-NNNNNNNN.tckpt), or leave init_from empty");
        var source = Checkpoint.Load(file);
        if (source.Config.Arch != _config.Arch)
            throw new CheckpointException($"{file}: init_from holds a '{source.Config.Arch}' model, but this run trains '{_config.Arch}'; warm-start from a checkpoint of the same architecture");
        LoadCheckpoint(_model, source, file);
        if (_config.InitUpdateScale != 1)
        {
            ((Models.ImprovedNeuralGpu)_model).ScaleUpdateGate(_config.InitUpdateScale);
            _log.WriteLine($"init_from: the update gate's pre-activation scaled by {_config.InitUpdateScale.ToString(CultureInfo.InvariantCulture)} (init_update_scale)");
        }
        var sourceState = TrainerState.FromJson(source.State);
        // the whole chain behind the source goes into this run's state, so a card can name every stage even if the
        // files of earlier stages are gone (stages an older checkpoint did not record are read from their files here)
        _state.InitFrom = new WarmStartOrigin(source.FileHash ?? "", source.Config.Task, source.Config.TrainLength, source.Config.Seed, sourceState.Step, sourceState.WallSeconds)
        {
            SourceInitFrom = source.Config.InitFrom,
            From = WarmStartChain.Embed(WarmStartChain.Resolve(source)),
        };
        // the saturation cost's weight is re-balanced to the loss every saturation_rebalance steps: a warm start goes on
        // with the source's weight (a converged model's is far below the cap it starts at), not from the cap; starting
        // at the cap made every warm start before 2026-11-29 lose most of its 10x accuracy by step 200 (docs/train.md)
        if (source.Config.SaturationWeight > 0 && _config.SaturationWeight > 0 && source.Config.SaturationMode == _config.SaturationMode)
        {
            double weight = source.Config.SaturationWeight * sourceState.SaturationScale;
            _state.SaturationScale = _config.SaturationMode == "dngpu"
                ? Math.Min(weight, _config.SaturationWeight) / _config.SaturationWeight
                : weight / _config.SaturationWeight;
            _log.WriteLine($"init_from: the saturation cost's weight goes on from the source's, {_state.SaturationWeight(_config).ToString("G4", CultureInfo.InvariantCulture)}");
        }
        if (source.HasOptimizerState)
        {
            _optimizer.LoadState(source.Section("optim/"), _device);
            _optimizer.StepCount = sourceState.OptimizerSteps;
        }
        _log.WriteLine($"init_from: starting from {file} (task {source.Config.Task}, train length {source.Config.TrainLength}, step {sourceState.Step}, seed {source.Config.Seed}; " +
            (source.HasOptimizerState ? $"weights and optimizer state, {sourceState.OptimizerSteps} optimizer steps)" : "weights only: it was compacted, the optimizer starts fresh)"));
    }

    private void Restore(Checkpoint ckpt)
    {
        _state = TrainerState.FromJson(ckpt.State);
        LoadCheckpoint(_model, ckpt, ckpt.Source ?? "checkpoint");
        _optimizer.LoadState(ckpt.Section("optim/"), _device);
        _optimizer.StepCount = _state.OptimizerSteps;
        _unsaved = false;
    }

    /// <summary>Loads a checkpoint's model parameters, first averaging the model's relaxation sets when the
    /// checkpoint was saved after they had been averaged into one.</summary>
    public static void LoadCheckpoint(AlgorithmicModel model, Checkpoint ckpt, string source)
    {
        var parameters = ckpt.Section("model/");
        if (model.ParameterSets > 1 && parameters.TryGetValue("gate_weight", out var gw) && gw.shape[0] < model.ParameterSets)
            model.AverageParameterSets();
        LoadParameters(model, parameters, source);
    }

    /// <summary>Copies named tensors into a model's parameters; every parameter must be present with its shape.</summary>
    public static void LoadParameters(AlgorithmicModel model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        using var _ = torch.no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!tensors.TryGetValue(name, out var t))
                throw new CheckpointException($"{source}: parameter '{name}' of architecture '{model.Config.Arch}' is missing from the checkpoint");
            if (!t.shape.SequenceEqual(p.shape))
                throw new CheckpointException($"{source}: parameter '{name}' has shape [{string.Join(",", t.shape)}] in the checkpoint but [{string.Join(",", p.shape)}] in the model");
            p.copy_(t);
        }
    }

    /// <summary>Whether the model, optimizer or trainer state differ from the newest checkpoint: true after a step or a
    /// NaN recovery, false after a save or a restore. A stop saves only then, so a run resumed and stopped at once
    /// rewrites nothing (nor a compacted checkpoint, which would come back with fresh optimizer moments).</summary>
    private bool _unsaved = true;

    private void SaveCheckpoint()
    {
        using var scope = torch.NewDisposeScope();
        Directory.CreateDirectory(_dir);
        _state.OptimizerSteps = _optimizer.StepCount;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in _model.named_parameters()) tensors["model/" + name] = p;
        foreach (var (name, t) in _optimizer.StateTensors()) tensors["optim/" + name] = t;
        var ckpt = new Checkpoint { Config = _config, State = _state.ToJson(), Tensors = tensors };
        ckpt.Save(Path.Combine(_dir, Checkpoint.FileName(_state.Step)));
        foreach (var old in Checkpoint.InDirectory(_dir).Skip(_config.KeepCheckpoints)) File.Delete(old);
        _unsaved = false;
    }

    public TrainResult Run(CancellationToken cancel = default)
    {
        using var session = Start();
        while (!Finished && !cancel.IsCancellationRequested)
        {
            using var scope = torch.NewDisposeScope();
            var work = Prepare();
            torch.manual_seed(work.TorchSeed);
            _model.train();
            var outputs = work.Batches.Select(batch => _model.Run(batch.Tokens, keepStates: false)).ToList();
            var loss = LossOf(work, outputs);
            if (!loss.Finite)
            {
                Recover(session, work.Step);
                continue;
            }
            Backward([this], [loss]);
            Apply(work, loss, generator: null);
            Advance(session, work, loss);
        }
        return session.Stop(cancel.IsCancellationRequested);
    }

    /// <summary>The progress line's time to go as hours:minutes:seconds, the hours not wrapped at a day
    /// ("27:01:28" for 27 h; a TimeSpan's hh would print 03).</summary>
    public static string Eta(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Round(Math.Clamp(seconds, 0, 1e8)));
        return string.Create(CultureInfo.InvariantCulture, $"{(long)t.TotalHours:00}:{t.Minutes:00}:{t.Seconds:00}");
    }

    /// <summary>Whether the run has reached its last step.</summary>
    public bool Finished => _state.Step >= _config.Steps;

    /// <summary>A run in progress: its folder lock, metrics file, clocks and the running sums of the progress line.</summary>
    internal sealed class Session : IDisposable
    {
        private readonly Trainer _trainer;
        private readonly FolderLock _folderLock;
        private StreamWriter _metrics;

        public Session(Trainer trainer, FolderLock folderLock, string why)
        {
            (_trainer, _folderLock) = (trainer, folderLock);
            Result = new() { RunDirectory = trainer._dir };
            StartStep = trainer._state.Step;
            _metrics = OpenMetrics(why);
        }

        public TrainResult Result { get; }
        public StreamWriter Metrics => _metrics;
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public Stopwatch LogClock { get; } = Stopwatch.StartNew();
        public long StartStep { get; }
        public long ExamplesSinceLog, LogCount;
        public double LossSum, SymSum, SeqSum;

        /// <summary>The trainer went back to a checkpoint (a NaN recovery): the metrics log drops what it logged past
        /// it, as at a resume, so the steps trained again are logged once.</summary>
        public void Rewound(string why)
        {
            _metrics.Dispose();
            _metrics = OpenMetrics(why);
        }

        private StreamWriter OpenMetrics(string why)
        {
            string path = Path.Combine(_trainer._dir, "metrics.jsonl");
            long step = _trainer._state.Step;
            int dropped = TrimMetrics(path, step);
            if (dropped > 0)
                _trainer._log.WriteLine($"{why}: {dropped} line(s) of metrics.jsonl past step {step} dropped (logged after the checkpoint that training went back to; those steps train again)");
            return new StreamWriter(path, append: true) { AutoFlush = true, NewLine = "\n" };
        }

        /// <summary>Ends the run: a checkpoint when it was stopped with work not yet saved.</summary>
        public TrainResult Stop(bool cancelled)
        {
            if (cancelled && _trainer._unsaved) _trainer.SaveCheckpoint();
            return Result;
        }

        public void Dispose()
        {
            _metrics.Dispose();
            _folderLock.Dispose();
        }
    }

    /// <summary>Takes the run folder (a second process into it is refused), writes config.json and, for a new run, the
    /// step-0 checkpoint (so NaN recovery always has a place to return to), and opens the metrics log.</summary>
    internal Session Start()
    {
        var folderLock = FolderLock.Take(_dir, "training run");
        try
        {
            Directory.CreateDirectory(_dir);
            AtomicFile.Write(Path.Combine(_dir, "config.json"), _config.ToJson());
            if (Checkpoint.InDirectory(_dir).Count == 0)
            {
                if (_config.InitFrom != "") WarmStart(_config.InitFrom);
                SaveCheckpoint();
            }
            return new Session(this, folderLock, "resume");
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }
    }

    /// <summary>One step's inputs: its bins and their batches (a pure function of the seed and the step), the seed of
    /// its torch draws (dropout, gradient noise), and when it started.</summary>
    internal sealed record StepWork(long Step, Bin[] Bins, List<(Tensor Tokens, Tensor Targets)> Batches, int TrackedSize, long TorchSeed,
        long StartTimestamp, long DataTicks);

    /// <summary>What a step's forward pass gave: the loss to differentiate and what the log and schedules need.</summary>
    internal sealed record StepLoss(Tensor Loss, double CrossEntropy, bool Finite, double Sym, double Seq, double WrongFraction, int Size, int Examples,
        long BackwardTimestamp);

    /// <summary>A run that goes back to a checkpoint (a resume after a kill, a NaN recovery) has logged steps that it
    /// trains again: the metrics log keeps only the lines up to <paramref name="step"/> (and drops a last line cut off
    /// mid-write), so every step is in it once. Rewritten atomically, and only when something is dropped; returns how many lines were.</summary>
    public static int TrimMetrics(string path, long step)
    {
        if (!File.Exists(path)) return 0;
        string text = File.ReadAllText(path);
        var lines = text.Split('\n').ToList();
        bool cut = text.Length > 0 && !text.EndsWith('\n');
        if (lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        var kept = new List<string>();
        for (int i = 0; i < lines.Count; i++)
        {
            long? lineStep;
            try { lineStep = System.Text.Json.Nodes.JsonNode.Parse(lines[i])?["step"]?.GetValue<long>(); }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
            {
                if (cut && i == lines.Count - 1) continue; // the half-written last line
                lineStep = null;                            // not ours to judge: kept as it is
            }
            if (lineStep > step) continue;
            kept.Add(lines[i]);
        }
        int dropped = lines.Count - kept.Count;
        if (dropped > 0) AtomicFile.Write(path, string.Concat(kept.Select(l => l + "\n")));
        return dropped;
    }

    /// <summary>The bins and batches of the current step.</summary>
    internal StepWork Prepare()
    {
        long step = _state.Step, start = Stopwatch.GetTimestamp();
        var rng = Rng.For(_config.Seed, "data", (long)step);
        long torchSeed = (long)(Rng.StableHash(_config.Seed, "torch", (long)step) >> 1);
        Bin[] stepBins;
        if (_config.AllBins) stepBins = _bins;
        else if (_config.Curriculum)
        {
            int current = _state.CurriculumSize(_config);
            int size = rng.NextDouble() < _config.CurriculumRandomFraction ? rng.NextInt(_task.MinSize, _config.TrainLength) : current;
            stepBins = [new Bin(_task.LengthForSize(size), size, null)];
        }
        else stepBins = [_bins[rng.NextInt(_bins.Length)]];
        var batches = stepBins.Select(bin => Batch(bin, rng, _config.BatchSize, _config.TrainSetSize)).ToList();
        return new StepWork(step, stepBins, batches, stepBins[^1].Size, torchSeed, start, Stopwatch.GetTimestamp() - start);
    }

    /// <summary>The step's loss from the model's outputs (one per bin): cross-entropy, the saturation cost with its
    /// running re-balancing sums, the relaxation pull; <c>Finite</c> is false for a NaN/inf loss (nothing to apply).</summary>
    internal StepLoss LossOf(StepWork work, IReadOnlyList<ModelOutput> outputs)
    {
        var loss = torch.zeros(1, device: _device).squeeze();
        Tensor? saturation = null;
        double trackedSym = 0, trackedSeq = 0, wrongFraction = 0;
        int examples = 0;
        for (int i = 0; i < work.Bins.Length; i++)
        {
            var (tokens, targets) = work.Batches[i];
            var output = outputs[i];
            var logits = output.Logits;
            var (binLoss, counted) = Loss(logits, tokens, targets, _config.LossMask);
            loss = loss + binLoss;
            if (output.Saturation is not null) saturation = saturation is null ? output.Saturation : saturation + output.Saturation;
            using (torch.no_grad())
            {
                var (sym, seq) = Accuracy(logits, targets, counted);
                wrongFraction += (1 - seq) / work.Bins.Length;
                if (work.Bins[i].Size == work.TrackedSize) { trackedSym = sym; trackedSeq = seq; }
            }
            examples += _config.BatchSize;
        }
        if (_config.BinLoss == "mean") loss = loss / work.Bins.Length;
        // the reference averages its bins' saturation costs; this project's first port summed them
        if (saturation is not null && _config.SaturationMode == "dngpu") saturation = saturation / work.Bins.Length;
        double ceLoss = loss.item<float>();
        if (saturation is not null && _config.SaturationWeight > 0)
        {
            _state.SaturationSum += saturation.item<float>();
            _state.LossSum += ceLoss;
            _state.SaturationCount++;
            loss = loss + saturation * _state.SaturationWeight(_config);
        }
        if (_model.ParameterSets > 1) loss = loss + _model.RelaxationDistance() * _state.Pull(_config);
        if (PoisonLoss?.Invoke(work.Step) == true) loss = loss * double.NaN;
        double total = loss.item<float>();
        return new StepLoss(loss, ceLoss, double.IsFinite(total), trackedSym, trackedSeq, wrongFraction, work.TrackedSize, examples, Stopwatch.GetTimestamp());
    }

    /// <summary>Zeroes the trainers' gradients and differentiates the sum of their (finite) losses in one backward
    /// pass: the trainers' parameters are disjoint, so each gets the gradient of its own loss.</summary>
    internal static void Backward(IReadOnlyList<Trainer> trainers, IReadOnlyList<StepLoss> losses)
    {
        foreach (var t in trainers)
            foreach (var p in t._model.parameters()) p.grad?.zero_();
        var total = losses[0].Loss;
        for (int i = 1; i < losses.Count; i++) total = total + losses[i].Loss;
        total.backward();
    }

    /// <summary>Gradient noise, clipping and the optimizer update of the current step (gradients computed). The noise
    /// is drawn from <paramref name="generator"/>, or torch's global generator when it is null.</summary>
    internal void Apply(StepWork work, StepLoss loss, Generator? generator)
    {
        long step = work.Step;
        var named = _model.named_parameters().ToList();
        using (torch.no_grad())
        {
            if (_config.GradNoiseLr > 0)
            {
                // the reference: truncated_normal(shape) * learning_rate * 1e-4 on every gradient, whatever the loss
                double scale = CurrentLearningRate(step) * _config.GradNoiseLr;
                foreach (var (_, p) in named)
                    if (p.grad is not null) p.grad.add_(TruncatedNormal(p.grad, generator) * scale);
            }
            if (_config.GradNoise > 0)
            {
                double std = Math.Sqrt(_config.GradNoise / Math.Sqrt(step + 1) * loss.WrongFraction);
                if (std > 0)
                    foreach (var (_, p) in named) p.grad?.add_(Normal(p.grad!, generator) * std);
            }
            if (_config.GradClip > 0) nn.utils.clip_grad_norm_(named.Select(n => n.parameter), _config.GradClip);
        }
        long optimizerStart = Stopwatch.GetTimestamp();
        _optimizer.Step(named, CurrentLearningRate(step), _config.Beta1, Beta2(step), _config.Epsilon);
        double Seconds(long ticks) => ticks / (double)Stopwatch.Frequency;
        LastPhases = new StepPhases(Seconds(work.DataTicks), Seconds(loss.BackwardTimestamp - work.StartTimestamp - work.DataTicks),
            Seconds(optimizerStart - loss.BackwardTimestamp), Seconds(Stopwatch.GetTimestamp() - optimizerStart));
    }

    /// <summary>Completes an applied step: counts it, advances the schedules, and logs, probes and checkpoints on their
    /// periods.</summary>
    internal void Advance(Session session, StepWork work, StepLoss l)
    {
        long step = work.Step;
        var result = session.Result;
        _state.WallSeconds += Stopwatch.GetElapsedTime(work.StartTimestamp).TotalSeconds;
        result.Losses.Add((step, l.CrossEntropy));
        _state.Step = step + 1;
        _unsaved = true;
        session.ExamplesSinceLog += l.Examples;
        session.LossSum += l.CrossEntropy; session.SymSum += l.Sym; session.SeqSum += l.Seq; session.LogCount++;
        AdvanceSchedules(l.Size, l.Seq, l.CrossEntropy);
        AdvanceLearningRateDecay(step, l.CrossEntropy);

        bool last = _state.Step == _config.Steps;
        if (_state.Step % _config.LogEvery == 0 || last)
        {
            double rate = session.ExamplesSinceLog / Math.Max(1e-9, session.LogClock.Elapsed.TotalSeconds);
            var m = new StepMetrics(_state.Step, _state.CurriculumSize(_config), session.LossSum / session.LogCount, session.SymSum / session.LogCount,
                session.SeqSum / session.LogCount, rate, session.Clock.Elapsed.TotalSeconds, CurrentLearningRate(step));
            result.Last = m;
            session.Metrics.WriteLine(System.Text.Json.JsonSerializer.Serialize(m, RunConfig.Json).ReplaceLineEndings("").Replace("  ", ""));
            double perStep = session.Clock.Elapsed.TotalSeconds / Math.Max(1, _state.Step - session.StartStep);
            string eta = Eta(perStep * (_config.Steps - _state.Step));
            _log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {_state.Step,6}/{_config.Steps}  k={m.Size,-4} loss {m.Loss,8:F4}  sym {m.SymbolAccuracy * 100,6:F2}%  seq {m.SequenceAccuracy * 100,6:F2}%  {rate,7:F1} ex/s  ETA {eta}"));
            session.LossSum = session.SymSum = session.SeqSum = 0; session.LogCount = 0; session.ExamplesSinceLog = 0;
            session.LogClock.Restart();
        }
        if (last && _model.ParameterSets > 1)
        {
            _model.AverageParameterSets();
            result.Events.Add($"step {_state.Step}: relaxation parameter sets averaged into one");
            _log.WriteLine(result.Events[^1]);
        }
        if (_config.ProbeEvery > 0 && (_state.Step % _config.ProbeEvery == 0 || last))
        {
            var probe = Probe();
            session.Metrics.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { step = _state.Step, probe = probe.ToDictionary(p => p.Size.ToString(CultureInfo.InvariantCulture), ProbeRecord) }));
            _log.WriteLine($"probe  {_state.Step,6}  " + string.Join("  ", probe.Select(p => string.Create(CultureInfo.InvariantCulture,
                $"size {p.Size} (x{p.Size / (double)_config.TrainLength:0.#}) seq {p.Seq * 100:F1}% sym {p.Sym * 100:F2}%") +
                (p.Dropout is { } d ? string.Create(CultureInfo.InvariantCulture, $" (dropout on: seq {d.Seq * 100:F1}%)") : ""))));
        }
        if (_state.Step % _config.CheckpointEvery == 0 || last) SaveCheckpoint();
        AfterStep?.Invoke(_state.Step);
    }

    /// <summary>A NaN/inf loss: nothing was applied; go back to the last good checkpoint with a lower learning rate.</summary>
    internal void Recover(Session session, long step)
    {
        string msg = RecoverFromNaN(step);
        session.Result.Events.Add(msg);
        _log.WriteLine(msg);
        session.Rewound("NaN recovery");
    }

    /// <summary>One probe size's result. <c>Seq</c>/<c>Sym</c> are the inference model's (dropout off), as exported and
    /// graded; <c>Dropout</c> is the same examples run as in training (dropout on, no gradient, one seeded draw),
    /// measured only for a model that trains with dropout and at sizes up to twice the training size (where training
    /// accuracy is comparable; longer ones would double the probe's time): a wide gap between the two means the
    /// weights work only under the training noise.</summary>
    public sealed record ProbeResult(int Size, double Seq, double Sym, (double Seq, double Sym)? Dropout);

    /// <summary>A probe size's metrics.jsonl record; the dropout-on fields appear only where they were measured.</summary>
    private Dictionary<string, object> ProbeRecord(ProbeResult p)
    {
        var record = new Dictionary<string, object> { ["sequence_accuracy"] = p.Seq, ["symbol_accuracy"] = p.Sym, ["samples"] = _config.ProbeSamples };
        if (p.Dropout is var (seq, sym))
        {
            record["dropout_sequence_accuracy"] = seq;
            record["dropout_symbol_accuracy"] = sym;
        }
        return record;
    }

    /// <summary>Sequence and symbol accuracy on <c>probe_samples</c> random examples at each probe size. The examples
    /// depend on (seed, size) only, so every probe of a run sees the same ones. Torch's global generator is reseeded
    /// for the dropout-on pass; every training step reseeds it before drawing.</summary>
    public List<ProbeResult> Probe()
    {
        var result = new List<ProbeResult>();
        bool wasTraining = _model.training;
        bool dropout = _config.Dropout > 0 || _config.EmbedDropout > 0;
        try
        {
            foreach (int size in _config.ParseProbeSizes())
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var (tokens, targets) = Batch(size, Rng.For(_config.Seed, "probe", size), _config.ProbeSamples);
                _model.eval();
                var (sym, seq) = Accuracy(_model.Run(tokens, keepStates: false).Logits, targets);
                (double Seq, double Sym)? withDropout = null;
                if (dropout && size <= 2 * _config.TrainLength)
                {
                    _model.train();
                    torch.manual_seed((long)(Rng.StableHash(_config.Seed, "probe-dropout", size) >> 1));
                    var (dropoutSym, dropoutSeq) = Accuracy(_model.Run(tokens, keepStates: false).Logits, targets);
                    withDropout = (dropoutSeq, dropoutSym);
                }
                result.Add(new ProbeResult(size, seq, sym, withDropout));
            }
        }
        finally { _model.train(wasTraining); }
        return result;
    }

    private double CurrentLearningRate(long step) => _config.LearningRate * _state.LearningRateScale;

    private double Beta2(long step) =>
        _config.Beta2Schedule ? 1 - Math.Max(5e-4, 0.01 * Math.Pow(0.5, step / 2000.0)) : _config.Beta2;

    /// <summary>Standard normal values cut at two standard deviations (values outside are drawn again), the shape
    /// of <paramref name="like"/>: TensorFlow's truncated_normal, which the DNGPU reference's gradient noise uses.</summary>
    public static Tensor TruncatedNormal(Tensor like, Generator? generator = null)
    {
        var x = Normal(like, generator);
        for (int i = 0; i < 100; i++)
        {
            var outside = x.abs().gt(2);
            if (!outside.any().item<bool>()) break;
            x = torch.where(outside, Normal(like, generator), x);
        }
        return x.clamp(-2, 2);
    }

    /// <summary>Standard normal values of <paramref name="like"/>'s shape from <paramref name="generator"/> (null: torch's
    /// global generator, as randn_like draws them).</summary>
    public static Tensor Normal(Tensor like, Generator? generator) =>
        generator is null ? torch.randn_like(like) : torch.randn(like.shape, dtype: like.dtype, device: like.device, generator: generator);

    /// <summary>A batch of <paramref name="count"/> random examples of one size: tokens and targets [count, length],
    /// int64, on the device.</summary>
    private (Tensor Tokens, Tensor Targets) Batch(int size, Rng rng, int count) =>
        Batch(new Bin(_task.LengthForSize(size), size, null), rng, count, 0);

    /// <summary>A batch of one bin: examples of sizes in (below, size] (5% any smaller size), padded with PAD to the
    /// bin's length, as the DNGPU reference fills its bins. With <paramref name="poolSize"/> &gt; 0 each example is
    /// one of a fixed pool of that many examples per size (train_set_size), picked uniformly.</summary>
    private (Tensor Tokens, Tensor Targets) Batch(Bin bin, Rng rng, int count, int poolSize)
    {
        int length = bin.Length;
        var tokens = new long[count * length];
        var targets = new long[count * length];
        for (int b = 0; b < count; b++)
        {
            var ex = DrawExample(_task, _config.Seed, bin, poolSize, rng, _config.HardFraction, _hardFamilies);
            for (int i = 0; i < ex.Length; i++)  // the tail past a shorter example stays PAD (0)
            {
                tokens[b * length + i] = ex.Input[i];
                targets[b * length + i] = ex.Target[i];
            }
        }
        return (torch.tensor(tokens, [count, length], device: _device), torch.tensor(targets, [count, length], device: _device));
    }

    /// <summary>Cross-entropy of logits [B, n, V] against targets [B, n], the mean over every position, or with
    /// <paramref name="lossMask"/> over the positions whose input or target is not PAD (returned as
    /// <c>Counted</c>, [B, n] bool). The DNGPU reference masks only its state; its loss is the plain mean.</summary>
    public static (Tensor Loss, Tensor? Counted) Loss(Tensor logits, Tensor tokens, Tensor targets, bool lossMask)
    {
        var flat = logits.reshape(-1, logits.shape[^1]);
        if (!lossMask) return (F.cross_entropy(flat, targets.reshape(-1)), null);
        var counted = tokens.ne(AlgorithmicTask.Pad).logical_or(targets.ne(AlgorithmicTask.Pad));
        var perPosition = F.cross_entropy(flat, targets.reshape(-1), reduction: nn.Reduction.None);
        var weights = counted.reshape(-1).to(perPosition.dtype);
        return ((perPosition * weights).sum() / weights.sum().clamp_min(1), counted);
    }

    /// <summary>Symbol and sequence accuracy of logits [B, n, V] against targets [B, n]; with
    /// <paramref name="counted"/> [B, n] (loss_mask) only those positions count.</summary>
    public static (double Sym, double Seq) Accuracy(Tensor logits, Tensor targets, Tensor? counted = null)
    {
        var correct = logits.argmax(-1).eq(targets);
        if (counted is null)
            return (correct.to(ScalarType.Float32).mean().item<float>(), correct.all(1).to(ScalarType.Float32).mean().item<float>());
        double sym = correct.logical_and(counted).sum().item<long>() / (double)Math.Max(1, counted.sum().item<long>());
        return (sym, correct.logical_or(counted.logical_not()).all(1).to(ScalarType.Float32).mean().item<float>());
    }

    /// <summary>One random training example of a bin: its size from <see cref="PaddedExampleSize"/> (bin_padding) or
    /// the bin's size; with <paramref name="poolSize"/> &gt; 0 one of that many fixed examples of its size (a pure
    /// function of the seed, the size and its index in the pool), as the reference draws from its training set.
    /// With <paramref name="hardFraction"/> &gt; 0 (hard_fraction) the example is, with that probability, of a family
    /// drawn from the table <paramref name="hardFamilies"/> (<see cref="HardFamilyTable"/>, which a trainer builds once); without
    /// one, from <see cref="DefaultHardFamilies"/>. At 0 the draws are exactly as without it.</summary>
    public static Example DrawExample(AlgorithmicTask task, ulong seed, Bin bin, int poolSize, Rng rng, double hardFraction = 0,
        IReadOnlyList<string>? hardFamilies = null)
    {
        int size = bin.Below is int below ? PaddedExampleSize(task, bin.Size, below, rng) : bin.Size;
        var exampleRng = poolSize > 0 ? Rng.For(seed, "train-set", size, rng.NextInt(0, poolSize - 1)) : rng;
        string family = AlgorithmicTask.Random;
        if (hardFraction > 0 && exampleRng.NextDouble() < hardFraction
            && (hardFamilies is { Count: > 0 } ? hardFamilies : DefaultHardFamilies(task)) is { Count: > 0 } pool)
            family = pool[exampleRng.NextInt(pool.Count)];
        return task.Generate(size, family, exampleRng);
    }

    /// <summary>The families an empty hard_families draws from: every one but random and the task's opt-in families
    /// (which a run names in hard_families to train on), in the task's order.</summary>
    public static IReadOnlyList<string> DefaultHardFamilies(AlgorithmicTask task) =>
        task.Families.Where(f => f != AlgorithmicTask.Random && !task.OptInFamilies.Contains(f)).ToList();

    /// <summary>hard_families as a draw table: each named family repeated by its weight, so that one uniform index
    /// draws them in proportion; an empty setting gives <see cref="DefaultHardFamilies"/> (every other family, equally,
    /// the same draws as before the setting existed). A name the task does not have, a repeated name, or a weight
    /// that is not a whole number from 1 to 100 is refused.</summary>
    public static IReadOnlyList<string> HardFamilyTable(RunConfig config, AlgorithmicTask task)
    {
        if (string.IsNullOrWhiteSpace(config.HardFamilies)) return DefaultHardFamilies(task);
        var table = new List<string>();
        var seen = new HashSet<string>();
        foreach (var part in config.HardFamilies.Split(',', StringSplitOptions.TrimEntries))
        {
            var fields = part.Split(':', StringSplitOptions.TrimEntries);
            string name = fields[0];
            int weight = 1;
            if (fields.Length > 2 || name == "" || (fields.Length == 2 && !(int.TryParse(fields[1], out weight) && weight is >= 1 and <= 100)))
                throw new ArgumentException($"hard_families: '{part}' is not a family name with an optional weight from 1 to 100 (e.g. powers_of_two:5,carry)");
            if (!task.Families.Contains(name))
                throw new ArgumentException($"hard_families: {task.Name} has no family '{name}' (it has {string.Join(", ", task.Families)})");
            if (!seen.Add(name))
                throw new ArgumentException($"hard_families: '{name}' is named twice; give it one weight");
            table.AddRange(Enumerable.Repeat(name, weight));
        }
        return table;
    }

    /// <summary>The saturation weight's scale (weight = saturation_weight x scale) after a re-balancing window whose
    /// mean cross-entropy was <paramref name="avgLoss"/> and mean unweighted saturation cost <paramref name="avgSat"/>.
    /// mean: avgLoss / avgSat (the current scale when avgSat is 0). dngpu (the reference's set_saturation_weight):
    /// the weight becomes min(lr x avgLoss / avgSat, saturation_weight), at least 1e-20.</summary>
    public static double RebalancedSaturationScale(RunConfig config, double learningRate, double avgLoss, double avgSat, double current) =>
        config.SaturationMode == "dngpu"
            ? Math.Clamp(learningRate * avgLoss / (avgSat + 1e-20), 1e-20, config.SaturationWeight) / config.SaturationWeight
            : avgSat > 1e-12 ? avgLoss / avgSat : current;

    /// <summary>bin_padding: the size of one example in the bin of <paramref name="size"/> whose next smaller bin
    /// is <paramref name="below"/>: uniform in (below, size], or with probability 5% uniform over every smaller size.</summary>
    public static int PaddedExampleSize(AlgorithmicTask task, int size, int below, Rng rng) =>
        rng.NextDouble() < 0.05 || below < task.MinSize ? rng.NextInt(task.MinSize, size) : rng.NextInt(below + 1, size);

    /// <summary>bin_padding masks PAD positions, so it is refused for a task whose own inputs hold PAD.</summary>
    private static void CheckBinPadding(RunConfig config, AlgorithmicTask task)
    {
        if (!config.BinPadding) return;
        var rng = Rng.For(config.Seed, "bin-padding-check", 0);
        foreach (var bin in TrainingBins(config, task))
            for (int i = 0; i < 8; i++)
                if (task.Generate(bin.Size, AlgorithmicTask.Random, rng).Input.Contains(AlgorithmicTask.Pad))
                    throw new ArgumentException($"bin_padding: task '{task.Name}' puts PAD inside its inputs (size {bin.Size}), which the state mask would erase; train it with bin_padding=false");
    }

    private void AdvanceSchedules(int size, double seqAccuracy, double loss)
    {
        // curriculum: move up when the sequence error at the current size falls under the threshold
        if (_config.Curriculum && !_config.AllBins && size == _state.CurriculumSize(_config) && _state.Curriculum < _config.TrainLength)
        {
            _state.CurriculumError = 0.9 * _state.CurriculumError + 0.1 * (1 - seqAccuracy);
            if (_state.CurriculumError < _config.CurriculumThreshold)
            {
                _state.Curriculum = _state.CurriculumSize(_config) + 1;
                _state.CurriculumError = 1.0;
                _state.PullScale *= _config.RelaxationPullGrowth;
                _log.WriteLine($"step {_state.Step}: curriculum moves to size {_state.Curriculum}");
                if (_state.CurriculumAtFullLength(_config) && _model.ParameterSets > 1)
                {
                    _model.AverageParameterSets();
                    _log.WriteLine($"step {_state.Step}: full length reached; relaxation parameter sets averaged into one");
                }
            }
        }
        // saturation cost: every N steps re-balance its weight to keep it a fixed fraction of the loss
        if (_config.SaturationWeight > 0 && _state.SaturationCount >= _config.SaturationRebalance)
        {
            double avgSat = _state.SaturationSum / _state.SaturationCount, avgLoss = _state.LossSum / _state.SaturationCount;
            _state.SaturationScale = RebalancedSaturationScale(_config, CurrentLearningRate(_state.Step), avgLoss, avgSat, _state.SaturationScale);
            _state.SaturationSum = _state.LossSum = 0;
            _state.SaturationCount = 0;
        }
    }

    /// <summary>Plateau rule of the DNGPU reference: no progress when the oldest of the last three window losses is
    /// lower than both later ones.</summary>
    public static bool NoProgress(IReadOnlyList<double> windows) =>
        windows.Count >= 3 && Math.Min(windows[^1], windows[^2]) > windows[^3];

    private void AdvanceLearningRateDecay(long step, double loss)
    {
        if (_config.LrDecay <= 0) return;
        _state.DecayLossSum += loss;
        _state.DecayCount++;
        if (_state.DecayCount < _config.LrDecayEvery) return;
        _state.DecayWindows.Add(_state.DecayLossSum / _state.DecayCount);
        if (_state.DecayWindows.Count > 3) _state.DecayWindows.RemoveAt(0);
        _state.DecayLossSum = 0;
        _state.DecayCount = 0;
        if (!NoProgress(_state.DecayWindows)) return;
        double before = _state.LearningRateScale, decayed = before * _config.LrDecay;
        _state.LearningRateScale = decayed >= _config.LrMinFactor ? decayed : Math.Min(before, _config.LrMinFactor);
        if (_state.LearningRateScale != before)
            _log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {step + 1}: no loss progress over {2 * _config.LrDecayEvery} steps; learning rate {_config.LearningRate * before:G3} -> {CurrentLearningRate(step):G3}"));
    }

    private string RecoverFromNaN(long step)
    {
        _state.NanRecoveries++;
        if (_state.NanRecoveries > 8)
            throw new TrainingDivergedException($"{_dir}: the loss turned NaN/inf {_state.NanRecoveries} times; training stopped at step {step} and its last good checkpoint " +
                $"({Checkpoint.InDirectory(_dir).Select(Path.GetFileName).FirstOrDefault()}) is kept. Lower learning_rate or enable grad_clip and start again in another --out.");
        var latest = Checkpoint.InDirectory(_dir).FirstOrDefault()
            ?? throw new TrainingDivergedException($"{_dir}: the loss turned NaN/inf and there is no checkpoint to return to; lower learning_rate or enable grad_clip and start again");
        var ckpt = Checkpoint.Load(latest);
        int recoveries = _state.NanRecoveries;
        double scale = _state.LearningRateScale * _config.NanLearningRateFactor;
        Restore(ckpt);
        _state.NanRecoveries = recoveries;
        _state.LearningRateScale = scale;
        _unsaved = true;
        return string.Create(CultureInfo.InvariantCulture,
            $"step {step}: loss is NaN/inf; restored {Path.GetFileName(latest)} (step {_state.Step}) and lowered the learning rate to {CurrentLearningRate(step):G4}");
    }

    public void Dispose() => _model.Dispose();
}

/// <summary>Where a warm-started run came from: the source checkpoint's hash, and its run's task, training length,
/// seed, steps and wall time (so a card can count the whole training, not only this run's part).</summary>
public sealed record WarmStartOrigin(string Sha256, string Task, int TrainLength, ulong Seed, long Step, double WallSeconds)
{
    /// <summary>The source run's own init_from: "" when it started from a fresh initialization, null when not
    /// recorded (checkpoints written before 2026-11-29 kept only the nearest source).</summary>
    public string? SourceInitFrom { get; init; }

    /// <summary>The source run's own origin, and so on back: a chain of warm starts (null at a fresh start, or
    /// where it was not recorded).</summary>
    public WarmStartOrigin? From { get; init; }
}

/// <summary>The trainer's mutable state besides tensors, saved in every checkpoint.</summary>
public sealed class TrainerState
{
    public long Step { get; set; }
    public long OptimizerSteps { get; set; }
    /// <summary>Curriculum size reached (0 = not started: curriculum_start).</summary>
    public int Curriculum { get; set; }
    public double CurriculumError { get; set; } = 1.0;
    public double PullScale { get; set; } = 1.0;
    public double LearningRateScale { get; set; } = 1.0;
    public double SaturationScale { get; set; } = 1.0;
    public double SaturationSum { get; set; }
    public double LossSum { get; set; }
    public int SaturationCount { get; set; }
    public int NanRecoveries { get; set; }
    /// <summary>Plateau decay: the running window and the mean losses of the last three windows.</summary>
    public double DecayLossSum { get; set; }
    public int DecayCount { get; set; }
    public List<double> DecayWindows { get; set; } = [];
    /// <summary>Training wall time summed over every process that worked on this run.</summary>
    public double WallSeconds { get; set; }
    /// <summary>init_from: the checkpoint this run started from, as it was read (null: a fresh initialization).</summary>
    public WarmStartOrigin? InitFrom { get; set; }

    public int CurriculumSize(RunConfig c) =>
        !c.Curriculum || c.AllBins ? c.TrainLength : Math.Clamp(Curriculum == 0 ? c.CurriculumStart : Curriculum, 1, c.TrainLength);

    /// <summary>A curriculum run has climbed to the training size: where relaxation sets are averaged by the paper's rule.</summary>
    public bool CurriculumAtFullLength(RunConfig c) => c.Curriculum && !c.AllBins && Curriculum >= c.TrainLength;

    public double Pull(RunConfig c) => c.RelaxationPull * PullScale;
    public double SaturationWeight(RunConfig c) => c.SaturationWeight * SaturationScale;

    public JsonObject ToJson() => JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(this, RunConfig.Json))!.AsObject();
    public static TrainerState FromJson(JsonObject o) =>
        System.Text.Json.JsonSerializer.Deserialize<TrainerState>(o.ToJsonString(), RunConfig.Json) ?? new TrainerState();
}
