using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Toolchain.Train;

/// <summary>
/// Everything that defines one training run. Resolved from a preset plus overrides, saved with every
/// checkpoint, and written into exported models as `toolchain.config`. Names on disk are snake_case.
/// </summary>
public sealed record RunConfig
{
    // ---- what is learned ----
    /// <summary>Registered task name (see `toolchain tasks`).</summary>
    public string Task { get; init; } = "badd";
    /// <summary>Registered architecture: ngpu, dngpu, gru, lstm, cnn, transformer.</summary>
    public string Arch { get; init; } = "dngpu";
    /// <summary>Training size k (digits per operand / input symbols). Inputs up to k = 20 (length 41), like the papers.</summary>
    public int TrainLength { get; init; } = 20;
    public ulong Seed { get; init; } = 1;
    public int Steps { get; init; } = 2000;
    /// <summary>Examples per length bin per step.</summary>
    public int BatchSize { get; init; } = 32;

    // ---- model ----
    /// <summary>Channels m of the state (Neural GPU maps, RNN hidden size, transformer width).</summary>
    public int Maps { get; init; } = 48;
    /// <summary>Neural GPU mental-image width w.</summary>
    public int Width { get; init; } = 4;
    /// <summary>CGRU layers per step (ngpu), or depth of the baselines (layers of cnn/transformer/rnn).</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Convolution kernel width (across the mental image) and height (along positions).</summary>
    public int KernelWidth { get; init; } = 3;
    public int KernelHeight { get; init; } = 3;
    /// <summary>Transformer attention heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Transformer positional encoding: sinusoidal or learned (learned ones stop at max_positions).</summary>
    public string Positions { get; init; } = "sinusoidal";
    public int MaxPositions { get; init; } = 64;
    /// <summary>Neural GPU gate cutoff: sigma'(x) = clamp(cutoff*sigmoid(x) - (cutoff-1)/2, 0, 1).</summary>
    public double GateCutoff { get; init; } = 1.2;

    // ---- optimizer ----
    /// <summary>adamax (default) or adam.</summary>
    public string Optimizer { get; init; } = "adamax";
    public double LearningRate { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    /// <summary>DNGPU schedule beta2 = 1 - max(5e-4, 0.01 * 0.5^(step/2000)) instead of the fixed beta2.</summary>
    public bool Beta2Schedule { get; init; }
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Clip the global gradient norm to this value; 0 disables clipping.</summary>
    public double GradClip { get; init; }
    /// <summary>Plateau decay (DNGPU): every lr_decay_every steps the mean loss of that window is kept; when the last two
    /// windows are both worse than the one before them, the learning rate is multiplied by lr_decay (0 = off),
    /// never below learning_rate * lr_min_factor. May change when a run is resumed.</summary>
    public double LrDecay { get; init; }
    public int LrDecayEvery { get; init; } = 200;
    public double LrMinFactor { get; init; } = 1.0 / 60;
    /// <summary>Multiply the learning rate by this when the loss turned NaN/inf and the last checkpoint was restored.</summary>
    public double NanLearningRateFactor { get; init; } = 0.5;

    // ---- the Neural GPU training tricks ----
    /// <summary>Curriculum on size: start at curriculum_start, move up when the sequence error falls under the threshold.</summary>
    public bool Curriculum { get; init; }
    public int CurriculumStart { get; init; } = 3;
    public double CurriculumThreshold { get; init; } = 0.15;
    /// <summary>Fraction of curriculum minibatches whose size is drawn uniformly over the whole range.</summary>
    public double CurriculumRandomFraction { get; init; } = 0.2;
    /// <summary>All length bins at once every step (DNGPU); the bins are sizes up to train_length.</summary>
    public bool AllBins { get; init; }
    /// <summary>DNGPU reference data layout: a bin of size s also holds shorter examples (sizes above the bin
    /// below, and 5% of any smaller size), padded with PAD to the bin's length; the model holds the state at PAD
    /// positions at zero, so it learns to run more steps than its input needs. dngpu only; the task's inputs
    /// must hold no PAD of their own.</summary>
    public bool BinPadding { get; init; }
    /// <summary>The training bins as input lengths in tokens, comma-separated (needs bin_padding): a bin of length L
    /// holds every example longer than the bin before it and at most L tokens long, padded to L, and runs L steps.
    /// "dngpu" is the DNGPU reference's 8,12,16,20,25,28,31,36,41 below the training length, then the training
    /// length itself (exactly the reference's bins at train_length 20). Empty: one bin per size of
    /// the default sizes (see Trainer.Bins), each of its own length.</summary>
    public string BinLengths { get; init; } = "";
    /// <summary>How the bins' cross-entropies make the loss: sum (this project's first port) or mean (the DNGPU
    /// reference, which averages its bins).</summary>
    public string BinLoss { get; init; } = "sum";
    /// <summary>Training examples come from a fixed pool of this many examples per size, drawn uniformly with
    /// replacement (the DNGPU reference generates 10,000 per length once and cycles through them); 0 = a fresh
    /// random example every draw.</summary>
    public int TrainSetSize { get; init; }
    /// <summary>A departure from every paper recipe (which train on random operands only): the fraction of training
    /// examples drawn from the task's other case families (carry chains, all zeros, powers of two, one operand the
    /// identity, ...; each equally likely, or as hard_families weighs them), at the training sizes. 0: random
    /// examples only.</summary>
    public double HardFraction { get; init; }
    /// <summary>Which of the task's families the hard fraction draws from, and how often: comma-separated names,
    /// each optionally with a whole-number weight (name:weight, default 1), e.g. "powers_of_two:5,carry,identity_a".
    /// Empty: every family other than random and the opt-in ones (far_powers_of_two, tape_ends), each equally likely.</summary>
    public string HardFamilies { get; init; } = "";
    /// <summary>Warm start (a departure from every paper recipe, named on the card): the path of a checkpoint of the same
    /// architecture and shapes whose weights, optimizer moments and optimizer step count this run starts from, for a
    /// curriculum across runs (train short, then continue longer). Everything else is this run's own: its task data,
    /// training length, step counter, schedules and seed. Read once, when the run writes its first checkpoint;
    /// a resume continues from the run's own checkpoints. Empty: a fresh initialization.</summary>
    public string InitFrom { get; init; } = "";
    /// <summary>A departure from every paper recipe (dngpu, with init_from): multiplies the update gate's pre-activation
    /// (its weights and bias) of the loaded weights by this factor, once, when the warm start loads them. hard_sigmoid
    /// saturates, so gates near 0 or 1 become exactly 0 or 1 and what the model carries along its tape stops leaking
    /// with distance (docs/train.md). 1: the weights as loaded.</summary>
    public double InitUpdateScale { get; init; } = 1;
    /// <summary>A departure from the references (ngpu, dngpu), made at inference only: the recurrence runs
    /// ceil(factor n) steps on an input of length n instead of n, wherever the model runs in eval mode (probes,
    /// parity, `toolchain export`'s models, so every grading). Training runs n steps on every bin, as the references
    /// do, and both references also test with n steps (1). Given in hundredths (1.5, 1.25; at most 8), so that the
    /// exported graph computes the same whole number of steps as TorchSharp. The reference recipe's bmul models get
    /// most of their random misses from running out of steps, not from length (docs/train.md).</summary>
    public double InferenceStepFactor { get; init; } = 1;

    /// <summary>Steps the recurrence runs at inference on an input of length n: ceil(inference_step_factor n).</summary>
    public long InferenceSteps(long n) => CeilPercent(n, InferenceStepPercent());

    /// <summary>inference_step_factor in hundredths (150 for 1.5): the exported Loop's trip count is (n p + 99) / 100.</summary>
    public long InferenceStepPercent() => Percent(InferenceStepFactor);

    /// <summary>A step factor in hundredths (150 for 1.5).</summary>
    private static long Percent(double factor) => (long)Math.Round(factor * 100);

    /// <summary>ceil(n p / 100) in whole numbers: the one rounding of both step factors, and the exported
    /// Loop's.</summary>
    private static long CeilPercent(long n, long percent) => (n * percent + 99) / 100;

    /// <summary>A departure from the references (ngpu, dngpu), made in training: the recurrence runs ceil(factor n)
    /// steps on a training bin of length n instead of n, so that the model learns to hold a finished answer through
    /// the extra steps that inference_step_factor gives it. Hundredths, 1 to 8, as inference_step_factor; 1 (the
    /// references) by default. It changes what is learned, so a resume cannot change it.</summary>
    public double TrainStepFactor { get; init; } = 1;

    /// <summary>Steps the recurrence runs in training on a bin of length n: ceil(train_step_factor n).</summary>
    public long TrainSteps(long n) => CeilPercent(n, Percent(TrainStepFactor));

    /// <summary>The loss (and the training accuracy) counts only positions where the input or the target is not
    /// PAD, averaged over those positions, as the ANCHORS' first port did. Off (as in the DNGPU reference, which
    /// masks the state but not the loss): every position of the bin counts, including the PAD tail of a shorter
    /// example padded into it (bin_padding), where the state is zero and only the output bias is trained.</summary>
    public bool LossMask { get; init; }
    /// <summary>dngpu: the DNGPU reference's input layer: hard_tanh on the embedded input (its pre-activation in
    /// the saturation cost), then dropout with probability embed_dropout while training. Off: the embedding feeds
    /// the first step as it is.</summary>
    public bool EmbedClip { get; init; }
    public double EmbedDropout { get; init; }
    /// <summary>dngpu initial weights: default = uniform +-1/sqrt(fan_in); glorot = uniform +-sqrt(6/(fan_in +
    /// fan_out)) with the kernel width in both fans, TensorFlow's default that the DNGPU reference used.</summary>
    public string Init { get; init; } = "default";
    /// <summary>Parameter-sharing relaxation: number of parameter sets (1 = off).</summary>
    public int Relaxation { get; init; } = 1;
    public double RelaxationPull { get; init; } = 0.0005;
    public double RelaxationPullGrowth { get; init; } = 1.2;
    /// <summary>Dropout probability on the recurrent state (ngpu) or the candidate (dngpu).</summary>
    public double Dropout { get; init; }
    /// <summary>Gradient noise: variance grad_noise / sqrt(step+1), scaled by the fraction of wrong outputs; 0 = off.</summary>
    public double GradNoise { get; init; }
    /// <summary>Gradient noise of the DNGPU reference: truncated-normal noise (cut at 2 standard deviations) times the
    /// current learning rate times this, added to every gradient element (the reference: 1e-4); 0 = off.</summary>
    public double GradNoiseLr { get; init; }
    /// <summary>DNGPU saturation cost weight (0 = off). saturation_mode=mean: the mean of relu(|x| - 0.9) per
    /// pre-activation, summed over steps / n and over bins, its weight re-balanced every saturation_rebalance steps
    /// to saturation_weight x avgLoss / avgSat (this project's first port). saturation_mode=dngpu (the reference):
    /// the sum over maps, positions and steps / (n^2 B) per bin (the input layer's counted n times), averaged over
    /// the bins; the weight starts at saturation_weight and is re-balanced to min(lr x avgLoss / avgSat,
    /// saturation_weight), lr being the current learning rate.</summary>
    public double SaturationWeight { get; init; }
    public string SaturationMode { get; init; } = "mean";
    public int SaturationRebalance { get; init; } = 200;

    // ---- bookkeeping ----
    public int LogEvery { get; init; } = 25;
    public int CheckpointEvery { get; init; } = 100;
    public int KeepCheckpoints { get; init; } = 3;
    /// <summary>Length-generalization probe while training: every probe_every steps (0 = off) grade probe_samples
    /// random examples at each of probe_sizes (comma-separated sizes, e.g. "40,200": 2x and 10x of 20) with the
    /// model in inference mode, as the DNGPU reference checks length 401 every 200 steps. Logged and written to
    /// metrics.jsonl; it changes nothing in training, so a resume may change it.</summary>
    public int ProbeEvery { get; init; }
    public string ProbeSizes { get; init; } = "";
    public int ProbeSamples { get; init; } = 32;
    /// <summary>cpu or cuda.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Torch intra-op threads; 0 keeps the library default.</summary>
    public int Threads { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static RunConfig FromJson(string json) =>
        JsonSerializer.Deserialize<RunConfig>(json, Json) ?? throw new InvalidDataException("empty run configuration");

    /// <summary>probe_sizes as numbers; a malformed or non-positive entry is an error naming it.</summary>
    public int[] ParseProbeSizes() =>
        [.. ProbeSizes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t =>
            int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= 1 ? v
            : throw new ArgumentException($"probe_sizes: '{t}' is not a size (a positive whole number); write e.g. probe_sizes=40,200"))];

    /// <summary>Named presets. Every value stays overridable.</summary>
    public static IReadOnlyDictionary<string, string> PresetDescriptions { get; } = new Dictionary<string, string>
    {
        ["ngpu-paper"] = "Kaiser & Sutskever: m=24, w=4, l=2, 3x3 kernels, Adam with clipping 1, curriculum, relaxation r=6, dropout 0.06, gate biases 1, no gradient noise (a no-op in the released code)",
        ["dngpu-ref"] = "the DNGPU reference (LUMII-Syslab/DNGPU) in every setting it has: m=48 (96 for bmul and bmul_zeros), its AdaMax with clipping, glorot, its bins with padding, 10,000 examples per size, input layer with hard_tanh and dropout, capped saturation cost, lr-scaled gradient noise, plateau decay, 20,000 steps (README: where it still differs)",
        ["dngpu-port"] = "this project's first DNGPU port from the paper's text (was called dngpu-paper): m=48 (96 for bmul and bmul_zeros), all bins at once, AdaMax lr 0.01*48/m with the beta2 schedule, saturation cost, gradient noise 1e-3",
        ["baseline"] = "defaults for gru, lstm, cnn, transformer: m=64, 2 layers, Adam lr 1e-3, all bins at once",
        ["tiny"] = "a very small model for tests: m=8, short runs",
    };

    public static RunConfig Preset(string name, string arch, string task)
    {
        var c = new RunConfig { Arch = arch, Task = task };
        return name switch
        {
            "ngpu-paper" => c with
            {
                Maps = 24, Width = 4, Layers = 2, KernelWidth = 3, KernelHeight = 3, Optimizer = "adam", LearningRate = 1e-3,
                Epsilon = 1e-4, GradClip = 1.0, Curriculum = true, Relaxation = 6, Dropout = 0.06, BatchSize = 32,
                // no gradient noise: the released code's noise is a no-op, and ours (std ~5e-3 per weight early on) swamped
                // the clipped gradient: 3-bit addition stalled at loss 1.0 after 400 steps with it, 0.46 without
                GradNoise = 0,
            },
            "dngpu-ref" => c with
            {
                Maps = IsBinaryMul(task) ? 96 : 48, LearningRate = 0.01 * 48 / (IsBinaryMul(task) ? 96 : 48), Beta1 = 0.9, Beta2Schedule = true,
                Epsilon = 1e-8, Optimizer = "adamax-dngpu", Init = "glorot", Steps = 20000, BatchSize = 32,
                AllBins = true, BinPadding = true, BinLengths = "dngpu", BinLoss = "mean", TrainSetSize = 10000,
                Dropout = task == "badd" ? 0.5 : 0.1, EmbedClip = true, EmbedDropout = task == "badd" ? 0.5 : 0.1,
                SaturationMode = "dngpu", SaturationWeight = 1e-3, SaturationRebalance = 200,
                GradNoise = 0, GradNoiseLr = 1e-4, LrDecay = 0.7, LrDecayEvery = 200, LrMinFactor = 1.0 / 60,
            },
            "dngpu-paper" => throw new ArgumentException("preset 'dngpu-paper' is now called dngpu-port (this project's first port, which differs from the reference); the DNGPU reference's recipe is dngpu-ref"),
            "dngpu-port" => c with
            {
                Maps = IsBinaryMul(task) ? 96 : 48, LearningRate = 0.01 * 48 / (IsBinaryMul(task) ? 96 : 48), Beta2Schedule = true,
                AllBins = true, Dropout = task == "badd" ? 0.5 : 0.1, SaturationWeight = 1e-3, GradNoise = 1e-3, BatchSize = 32,
                LrDecay = 0.7, LrDecayEvery = 200, LrMinFactor = 1.0 / 60,
            },
            "baseline" => c with { Maps = 64, Layers = 2, Optimizer = "adam", LearningRate = 1e-3, GradClip = 1.0, AllBins = true, BatchSize = 32 },
            "tiny" => c with { Maps = 8, Width = 2, Layers = 1, Heads = 2, TrainLength = 6, BatchSize = 8, Steps = 20, LogEvery = 5, CheckpointEvery = 10, AllBins = true },
            _ => throw new ArgumentException($"unknown preset '{name}'; presets: {string.Join(", ", PresetDescriptions.Keys)}"),
        };
    }

    /// <summary>Binary multiplication in any target format (bmul, bmul_zeros): the references' bmul settings (m = 96)
    /// apply to every one.</summary>
    private static bool IsBinaryMul(string task) =>
        Toolchain.Suites.TaskRegistry.TryGet(task) is Toolchain.Suites.Tasks.ArithmeticTask { Radix: 2, Operator: '*' };

    /// <summary>The preset an architecture uses when none is named.</summary>
    public static string DefaultPreset(string arch) => arch switch
    {
        "ngpu" => "ngpu-paper",
        "dngpu" => "dngpu-ref",
        _ => "baseline",
    };

    /// <summary>Applies `name=value` overrides (snake_case names). Unknown names and mistyped values are errors.</summary>
    public RunConfig With(IEnumerable<string> overrides)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(ToJson())!.AsObject();
        foreach (var o in overrides)
        {
            int eq = o.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"override '{o}' is not name=value");
            string key = o[..eq].Trim(), value = o[(eq + 1)..].Trim();
            var prop = Properties.FirstOrDefault(p => p.Name == key);
            if (prop.Name is null)
                throw new ArgumentException($"unknown setting '{key}'; settings: {string.Join(", ", Properties.Select(p => p.Name))}");
            node[key] = Parse(prop, value);
        }
        return FromJson(node.ToJsonString());
    }

    private static System.Text.Json.Nodes.JsonNode Parse((string Name, Type Type) prop, string value)
    {
        var inv = CultureInfo.InvariantCulture;
        string bad = $"setting '{prop.Name}' expects {TypeName(prop.Type)}, got '{value}'";
        if (prop.Type == typeof(int)) return int.TryParse(value, NumberStyles.Integer, inv, out int i) ? i : throw new ArgumentException(bad);
        if (prop.Type == typeof(ulong)) return ulong.TryParse(value, NumberStyles.None, inv, out ulong u) ? u : throw new ArgumentException(bad);
        if (prop.Type == typeof(double)) return double.TryParse(value, NumberStyles.Float, inv, out double d) && double.IsFinite(d) ? d : throw new ArgumentException(bad);
        if (prop.Type == typeof(bool)) return bool.TryParse(value, out bool b) ? b : throw new ArgumentException(bad);
        return value;
    }

    private static string TypeName(Type t) =>
        t == typeof(int) || t == typeof(ulong) ? "a whole number" : t == typeof(double) ? "a number" : t == typeof(bool) ? "true or false" : "text";

    private static readonly (string Name, Type Type)[] Properties = typeof(RunConfig)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite && p.Name != "EqualityContract")
        .Select(p => (JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), p.PropertyType)).ToArray();

    /// <summary>Checks values that would otherwise fail deep inside a run.</summary>
    public RunConfig Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException(message); }
        void RequireStepFactor(string name, double factor, string example, string one, string what)
        {
            Require(double.IsFinite(factor) && factor is >= 1 and <= 8 && Math.Abs(factor * 100 - Math.Round(factor * 100)) < 1e-9,
                $"{name} must be a number from 1 to 8 in hundredths, such as {example} (1 = {one}, as the references)");
            Require(factor == 1 || Arch is "ngpu" or "dngpu", $"{name} {what}: it needs arch ngpu or dngpu");
        }
        Require(Toolchain.Suites.TaskRegistry.TryGet(Task) is not null,
            $"unknown task '{Task}'; known tasks: {string.Join(", ", Toolchain.Suites.TaskRegistry.All.Select(t => t.Name))}");
        Require(Models.ModelRegistry.Names.Contains(Arch), $"unknown architecture '{Arch}'; architectures: {string.Join(", ", Models.ModelRegistry.Names)}");
        Require(TrainLength >= 1, "train_length must be at least 1");
        Require(Steps >= 0, "steps must be at least 0");
        Require(BatchSize >= 1, "batch_size must be at least 1");
        Require(Maps >= 1 && Width >= 1 && Layers >= 1, "maps, width and layers must be at least 1");
        Require(KernelWidth % 2 == 1 && KernelHeight % 2 == 1, "kernel_width and kernel_height must be odd");
        Require(Relaxation >= 1, "relaxation must be at least 1 (1 = off)");
        Require(Dropout is >= 0 and < 1, "dropout must be in [0, 1)");
        Require(Optimizer is "adamax" or "adam" or "adamax-dngpu", $"optimizer must be adamax, adam or adamax-dngpu, not '{Optimizer}'");
        Require(Init is "default" or "glorot", $"init must be default or glorot, not '{Init}'");
        Require(Init == "default" || Arch == "dngpu", "init=glorot is a dngpu setting");
        Require(Device is "cpu" or "cuda", $"device must be cpu or cuda, not '{Device}'");
        Require(Positions is "sinusoidal" or "learned", $"positions must be sinusoidal or learned, not '{Positions}'");
        Require(Arch != "transformer" || Maps % Heads == 0, "maps must be divisible by heads");
        Require(!BinPadding || (Arch == "dngpu" && AllBins), "bin_padding needs arch dngpu with all_bins=true");
        Require(EmbedDropout is >= 0 and < 1, "embed_dropout must be in [0, 1)");
        Require(BinLengths == "" || BinPadding, "bin_lengths needs bin_padding=true (shorter examples are padded into each bin)");
        // a malformed or impossible bin_lengths is refused here (and in --dry-run), not when training starts
        if (BinLengths != "" && Toolchain.Suites.TaskRegistry.TryGet(Task) is { } binTask) Trainer.TrainingBins(this, binTask);
        Require(BinLoss is "sum" or "mean", $"bin_loss must be sum or mean, not '{BinLoss}'");
        Require(SaturationMode is "mean" or "dngpu", $"saturation_mode must be mean or dngpu, not '{SaturationMode}'");
        Require(SaturationMode == "mean" || Arch == "dngpu", "saturation_mode=dngpu is a dngpu setting");
        Require(TrainSetSize >= 0, "train_set_size must be at least 0 (0 = fresh examples)");
        Require(HardFraction is >= 0 and <= 1, "hard_fraction must be in [0, 1] (the fraction of training examples from the task's hard families)");
        Require(HardFamilies == "" || HardFraction > 0, "hard_families needs hard_fraction above 0 (it says which families the hard fraction draws from)");
        // a malformed hard_families, or one naming a family the task does not have, is refused here (and in --dry-run)
        if (HardFamilies != "" && Toolchain.Suites.TaskRegistry.TryGet(Task) is { } familyTask) Trainer.HardFamilyTable(this, familyTask);
        Require(double.IsFinite(InitUpdateScale) && InitUpdateScale > 0, "init_update_scale must be a positive number (1 = the loaded weights as they are)");
        Require(InitUpdateScale == 1 || (InitFrom != "" && Arch == "dngpu"), "init_update_scale scales the update gate of the weights a dngpu warm start loads: it needs arch dngpu and init_from");
        RequireStepFactor("inference_step_factor", InferenceStepFactor, "1.5", "n steps on length n", "sets the steps of a Neural GPU's recurrence");
        RequireStepFactor("train_step_factor", TrainStepFactor, "1.25", "n steps on a bin of length n",
            "sets the steps of a Neural GPU's recurrence in training");
        Require(GradNoiseLr >= 0, "grad_noise_lr must be at least 0 (0 = off)");
        Require((!EmbedClip && EmbedDropout == 0) || Arch == "dngpu", "embed_clip and embed_dropout are dngpu settings");
        Require(LrDecay is >= 0 and < 1, "lr_decay must be in [0, 1) (0 = off)");
        Require(LrDecayEvery >= 1, "lr_decay_every must be at least 1");
        Require(LrMinFactor is > 0 and <= 1, "lr_min_factor must be in (0, 1]");
        Require(ProbeEvery >= 0 && ProbeSamples >= 1, "probe_every must be at least 0 (0 = off) and probe_samples at least 1");
        Require(ParseProbeSizes().Length > 0 || ProbeEvery == 0, "probe_every needs probe_sizes, e.g. probe_sizes=40,200");
        Require(KeepCheckpoints >= 1 && CheckpointEvery >= 1 && LogEvery >= 1, "keep_checkpoints, checkpoint_every and log_every must be at least 1");
        return this;
    }
}
