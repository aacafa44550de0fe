using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Toolchain.Evaluate;
using Toolchain.Export;
using Toolchain.Export.Onnx;
using Toolchain.Suites;
using Toolchain.Train;
using YamlDotNet.RepresentationModel;

namespace Toolchain.Cli.Commands;

/// <summary>One zoo entry of zoo/zoo.yaml.</summary>
/// <param name="Note">Free text for the card: where training ran when not (only) on the grading machine, say.</param>
/// <param name="Parity">Multiples of the training size at which the export's parity is checked (`parity: "1,4"`), for
/// a model that is numerically chaotic at the default 16x; null: the exporter's default (1,4,16).</param>
/// <param name="Bar">A second suite the model is graded on after the standard one (`bar: FILE`, a path from the directory
/// the zoo runs in, or a built-in suite's name): a bar that asks for more examples per family than the standard suite
/// has. Its grading goes to models/NAME.bar/ and the card's `bar`; the standard grading (the one `toolchain report`
/// reuses) is unchanged. Null: none.</param>
/// <param name="BarGates">What meeting the bar means, when it is not "every example exact" (`bar_gates: FILE`, a gates
/// file as `toolchain compare --gate` reads, checked against the bar's results): a bar of per-symbol accuracy, say. The
/// bar is then met when every planned level was graded in full, every pinned case is exact and every rule passes.
/// Null: every example of the bar exact.</param>
/// <param name="Members">An ensemble entry (`members: [CKPT, ...]`, two or more checkpoint files, `steps: 0`): member i is
/// the entry's settings with init_from = the i-th checkpoint, made in runs/NAME/member-i; the members are exported
/// without states and joined into one ONNX model (<see cref="EnsembleWriter"/>), which is what is graded and published.
/// Null: one model.</param>
public sealed record ZooEntry(string Name, string Task, string Arch, string? Preset, int Steps, IReadOnlyList<string> Set, string? Note = null, double[]? Parity = null, string? Bar = null, string? BarGates = null,
    IReadOnlyList<string>? Members = null)
{
    /// <summary>Member <paramref name="i"/> of an ensemble entry: the entry's settings, warm-started from its checkpoint.</summary>
    public ZooEntry Member(int i) => this with { Set = [.. Set, "init_from=" + Members![i]], Members = null };

    /// <summary>The run folder of member <paramref name="i"/> (from 0) inside the entry's run folder.</summary>
    public static string MemberDir(string runDir, int i) => Path.Combine(runDir, $"member-{i + 1}");

    /// <summary>Where the bar's file was found (see <see cref="ZooCommand.Load"/>); the card names <see cref="Bar"/> as written.</summary>
    public string? BarPath { get; init; }

    /// <summary>The bar's gate rules, read once with the zoo file (null when the bar is "every example exact").</summary>
    public IReadOnlyList<GateRule>? BarRules { get; init; }

    /// <summary>The sha256 of the gates file's bytes that <see cref="BarRules"/> were parsed from.</summary>
    public string? BarGatesSha256 { get; init; }

    /// <summary>The entry's bar suite (null when it has none).</summary>
    public SuiteDefinition? BarSuite() => Bar is null ? null : SuiteFile.Resolve(BarPath ?? Bar);

    /// <summary>The export options the zoo publishes this entry with.</summary>
    public ExportOptions ExportOptions => Parity is null ? new ExportOptions { WithStates = true } : new ExportOptions { WithStates = true, ParityMultiples = Parity };
}

/// <summary>
/// `toolchain zoo [--only NAME,...] [--no-train] [--threads N] [--eval-minutes M]`: trains (resuming), exports,
/// grades and describes every zoo model. Each stage is skipped when its output is newer than its input.
/// A model that cannot be exported (parity) or graded is reported in one line and the zoo goes on to the
/// next; the exit code is 1 when any model failed.
/// </summary>
public static class ZooCommand
{
    public static Command Create()
    {
        var file = new Option<string>("--zoo") { Description = "zoo definition", DefaultValueFactory = _ => "zoo/zoo.yaml" };
        var only = new Option<string?>("--only") { Description = "comma-separated model names (default: all)" };
        var noTrain = new Option<bool>("--no-train") { Description = "export and grade the runs as they are, without training further" };
        var threads = new Option<int>("--threads") { Description = "torch threads for training", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "training device: cpu or cuda (a run may move between them; see tools/gpu-train.sh)", DefaultValueFactory = _ => "cpu" };
        var evalMinutes = new Option<double>("--eval-minutes") { Description = "grading budget per model (standard suite)", DefaultValueFactory = _ => 3 };
        var barMinutes = new Option<double?>("--bar-minutes") { Description = "grading budget of an entry's bar suite (zoo.yaml bar:); default: --eval-minutes" }.MustBePositive();
        var models = new Option<string>("--models") { Description = "where models, cards and reports go", DefaultValueFactory = _ => "models" };
        var regrade = new Option<bool>("--regrade") { Description = "grade the published models/NAME.onnx again (no training, no export) and update the measured part of its card" };
        var compact = new Option<bool>("--compact") { Description = "drop the optimizer state from the newest checkpoint of each finished run (weights, settings and trainer state kept): a third of the size to commit; such a run exports and grades but cannot train on" };
        var packed = new Option<bool>("--packed") { Description = "train the selected entries that differ only in their seed together, packed in one process (as train --seeds); the others one by one" };
        var cmd = new Command("zoo", "train, export, grade and describe the zoo models of zoo/zoo.yaml (resumable)") { file, only, noTrain, threads, evalMinutes, barMinutes, models, regrade, packed, device, compact };
        cmd.SetAction((r, token) =>
        {
            // a signal stops training after its step, with a checkpoint, and ends the zoo run there
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
            using var signals = Cli.CancelOnSignals(stop, out _);
            var cancel = stop.Token;
            var w = r.InvocationConfiguration.Output;
            string zooFile = r.GetValue(file)!;
            string dev = r.GetValue(device)!;
            if (dev is not ("cpu" or "cuda")) throw new UserError($"--device must be cpu or cuda, not '{dev}'");
            var entries = Load(zooFile);
            var wanted = r.GetValue(only)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (wanted is not null)
            {
                var unknown = wanted.Except(entries.Select(e => e.Name)).ToList();
                if (unknown.Count > 0) throw new UserError($"{zooFile}: no zoo model named {string.Join(", ", unknown)}");
                entries = entries.Where(e => wanted.Contains(e.Name)).ToList();
            }
            string runs = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(zooFile))!, "runs");
            string outDir = r.GetValue(models)!;
            Directory.CreateDirectory(outDir);
            var failed = new List<string>();
            var trained = new HashSet<string>();
            var budgets = new GradingBudgets(r.GetValue(evalMinutes), r.GetValue(barMinutes) ?? r.GetValue(evalMinutes), cancel);
            if (r.GetValue(compact) && (r.GetValue(regrade) || r.GetValue(packed)))
                throw new UserError("--compact only compacts checkpoints; run it without --regrade and --packed");
            if (r.GetValue(packed) && !r.GetValue(noTrain) && !r.GetValue(regrade) && !r.GetValue(compact))
                foreach (var group in SeedGroups(entries, r.GetValue(threads), dev))
                {
                    if (cancel.IsCancellationRequested) break;
                    TrainPacked(group, runs, r.GetValue(threads), dev, w, cancel);
                    trained.UnionWith(group.Select(g => g.Name));
                }
            foreach (var e in entries)
            {
                if (cancel.IsCancellationRequested) break;
                string runDir = Path.Combine(runs, e.Name);
                if (e.Members is not null && !r.GetValue(regrade))
                {
                    if (r.GetValue(compact))
                    {
                        Cli.Line(w, $"== {e.Name}: nothing to compact: an ensemble's members are made from checkpoints kept elsewhere");
                        continue;
                    }
                    if (!r.GetValue(noTrain))
                        for (int i = 0; i < e.Members.Count && !cancel.IsCancellationRequested; i++)
                            Train(e.Member(i), ZooEntry.MemberDir(runDir, i), r.GetValue(threads), dev, w, cancel);
                    if (cancel.IsCancellationRequested || Enumerable.Range(0, e.Members.Count).Any(i => Checkpoint.InDirectory(ZooEntry.MemberDir(runDir, i)).Count == 0)) continue;
                    if (!Publishing(e, outDir, w, () => PublishEnsemble(e, runDir, outDir, budgets, w), runDir)) failed.Add(e.Name);
                    continue;
                }
                if (r.GetValue(compact))
                {
                    if (!Compact(e, runDir, w)) failed.Add(e.Name);
                    continue;
                }
                if (r.GetValue(regrade))
                {
                    if (!Regrade(e, outDir, budgets, w)) failed.Add(e.Name);
                    continue;
                }
                if (!r.GetValue(noTrain) && !trained.Contains(e.Name)) Train(e, runDir, r.GetValue(threads), dev, w, cancel);
                if (cancel.IsCancellationRequested || Checkpoint.InDirectory(runDir).Count == 0) continue;
                if (!Publishing(e, outDir, w, () => Publish(e, runDir, outDir, budgets, w), runDir)) failed.Add(e.Name);
            }
            if (cancel.IsCancellationRequested) Cli.Line(w, "== interrupted: training stopped with a checkpoint saved; run the same command to continue");
            if (failed.Count == 0) return Task.FromResult(0);
            Cli.Line(w, $"== {failed.Count} zoo model{(failed.Count == 1 ? "" : "s")} failed: {string.Join(", ", failed)}");
            return Task.FromResult(Cli.CheckFailed);
        });
        return cmd;
    }

    public static List<ZooEntry> Load(string path)
    {
        if (!File.Exists(path)) throw new UserError($"{path}: no zoo definition; run from the repository root or pass --zoo FILE");
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(path)));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var list = new List<ZooEntry>();
        foreach (YamlMappingNode m in ((YamlSequenceNode)root.Children[new YamlScalarNode("models")]).Children.Cast<YamlMappingNode>())
        {
            string Get(string key) => m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value! : throw new UserError($"{path}:{m.Start.Line}: zoo entry without '{key}'");
            string? Opt(string key) => m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;
            var set = m.Children.TryGetValue(new YamlScalarNode("set"), out var s) ? ((YamlSequenceNode)s).Children.Select(x => ((YamlScalarNode)x).Value!).ToList() : [];
            List<string>? members = null;
            if (m.Children.TryGetValue(new YamlScalarNode("members"), out var ms))
                members = ms is YamlSequenceNode seq && seq.Children.All(x => x is YamlScalarNode { Value.Length: > 0 })
                    ? seq.Children.Select(x => ((YamlScalarNode)x).Value!).ToList()
                    : throw new UserError($"{path}:{ms.Start.Line}: members must be a list of checkpoint files, e.g. members: [zoo/runs/A/ckpt-00020000.tckpt, zoo/runs/B/ckpt-00020000.tckpt]");
            double[]? parity;
            try { parity = Opt("parity") is string text ? ExportOptions.ParseMultiples(text, "parity") : null; }
            catch (ArgumentException x) { throw new UserError($"{path}:{m.Start.Line}: {x.Message}"); }
            // a misspelt field (say `bar_gate:`) would otherwise be dropped without a word
            foreach (var key in m.Children.Keys)
                if (key is not YamlScalarNode { Value: { } k } || !EntryFields.Contains(k))
                    throw new UserError($"{path}:{key.Start.Line}: unknown field '{(key as YamlScalarNode)?.Value}' in a zoo entry; the fields are: {string.Join(", ", EntryFields)}");
            var entry = new ZooEntry(Get("name"), Get("task"), Get("arch"), Opt("preset"), int.Parse(Get("steps"), CultureInfo.InvariantCulture), set, Opt("note"), parity, Opt("bar"), Opt("bar_gates"), members);
            if (members is not null)
            {
                if (members.Count < 2) throw new UserError($"{path}:{m.Start.Line}: {entry.Name} has {members.Count} member; an ensemble needs at least two checkpoints");
                if (entry.Steps != 0) throw new UserError($"{path}:{m.Start.Line}: {entry.Name} is an ensemble with steps: {entry.Steps}; its members are made from their checkpoints without training (steps: 0)");
                if (set.Any(x => x.StartsWith("init_from=", StringComparison.Ordinal))) throw new UserError($"{path}:{m.Start.Line}: {entry.Name} sets init_from and has members; each member's init_from is its checkpoint in members");
            }
            if (entry.BarGates is not null && entry.Bar is null)
                throw new UserError($"{path}:{m.Start.Line}: {entry.Name} has bar_gates but no bar; bar_gates says what meeting the bar suite means, so give the suite as bar: FILE");
            // a relative bar is a path from the directory the zoo runs in, or else from the zoo file's folder or the
            // one above it (zoo/zoo.yaml's: the repository root), so the zoo reads the same from anywhere
            if (entry.Bar is { } bar && !SuiteFile.BuiltInNames.Contains(bar) && Beside(path, bar) is { } foundBar) entry = entry with { BarPath = foundBar };
            // a bar suite or gates file that cannot be read is found before any training, not after hours of it
            try { entry.BarSuite(); }
            catch (Exception x) when (x is FileNotFoundException or SuiteFormatException or FormatException or ArgumentException or NotSupportedException or IOException or UnauthorizedAccessException)
            { throw new UserError($"{path}:{m.Start.Line}: bar '{entry.Bar}' of {entry.Name}: {Cli.OneLine(x)}; give a suite file's path from the directory the zoo runs in, or one of: {string.Join(", ", SuiteFile.BuiltInNames)}"); }
            if (entry.BarGates is { } gates)
            {
                // read once: the rules checked and the hash on the card come from the same bytes
                List<GateRule> rules;
                string sha256;
                try { (rules, sha256) = Gates.LoadHashed(Beside(path, gates) ?? gates); }
                catch (Exception x) when (x is EvaluationException or SuiteFormatException or IOException or UnauthorizedAccessException)
                { throw new UserError($"{path}:{m.Start.Line}: bar_gates '{gates}' of {entry.Name}: {Cli.OneLine(x)}; give a gates file's path (a YAML list of rules, as `toolchain compare --gate` reads)"); }
                if (rules.Count == 0) throw new UserError($"{path}:{m.Start.Line}: bar_gates '{gates}' of {entry.Name} has no rules; a bar with no rule would be met by anything");
                entry = entry with { BarRules = rules, BarGatesSha256 = sha256 };
            }
            list.Add(entry);
        }
        return list;
    }

    private static readonly string[] EntryFields = ["name", "task", "arch", "preset", "steps", "set", "note", "parity", "bar", "bar_gates", "members"];

    /// <summary>A relative file of an entry that is not found from the working directory, looked for beside the zoo
    /// file and in the folder above it; null when it is found where written (or nowhere: the reader says so).</summary>
    private static string? Beside(string zooFile, string file)
    {
        if (Path.IsPathRooted(file) || File.Exists(file)) return null;
        string folder = Path.GetDirectoryName(Path.GetFullPath(zooFile))!;
        return new[] { folder, Path.GetDirectoryName(folder) }.OfType<string>().Select(d => Path.Combine(d, file)).FirstOrDefault(File.Exists);
    }

    /// <summary>The entry's run configuration; an ensemble entry's is its first member's (the card's config).</summary>
    public static RunConfig Config(ZooEntry e, int threads, string device = "cpu") => e.Members is not null ? Config(e.Member(0), threads, device) :
        (RunConfig.Preset(e.Preset ?? RunConfig.DefaultPreset(e.Arch), e.Arch, e.Task) with { Steps = e.Steps, Threads = threads, KeepCheckpoints = 1, Device = device })
            .With(e.Set).Validate();

    private static void Train(ZooEntry e, string runDir, int threads, string device, TextWriter w, CancellationToken cancel)
    {
        var config = Config(e, threads, device);
        using var trainer = new Trainer(config, runDir, w);
        trainer.TryResume();
        Cli.Line(w, $"== {e.Name}: training {e.Arch} on {e.Task} to step {e.Steps}");
        trainer.Run(cancel);
    }

    /// <summary>The entries that differ only in their seed and can train packed (dngpu, all_bins), in groups of two or more.</summary>
    public static List<List<ZooEntry>> SeedGroups(IReadOnlyList<ZooEntry> entries, int threads, string device = "cpu") =>
        entries.Where(e => e.Members is null).Select(e => (Entry: e, Config: Config(e, threads, device)))
            .Where(x => MultiSeedTrainer.CanPack(x.Config))
            .GroupBy(x => x.Config with { Seed = 0 })
            .Where(g => g.Count() > 1 && g.Select(x => x.Config.Seed).Distinct().Count() == g.Count())
            .Select(g => g.Select(x => x.Entry).ToList())
            .ToList();

    private static void TrainPacked(List<ZooEntry> group, string runs, int threads, string device, TextWriter w, CancellationToken cancel)
    {
        var config = Config(group[0], threads, device);
        var members = group.Select(e => (Config(e, threads, device).Seed, Path.Combine(runs, e.Name))).ToList();
        using var trainer = new MultiSeedTrainer(config, members, w);
        trainer.TryResume();
        Cli.Line(w, $"== {string.Join(", ", group.Select(e => e.Name))}: training {config.Arch} on {config.Task} to step {config.Steps}, {group.Count} seeds packed in one process");
        trainer.Run(cancel);
    }

    /// <summary>Runs one publish (export, grade, card) under the lock of the entry's run folder, so that a second zoo
    /// process (or a training run) cannot write the same model, report or run at once: a busy folder is one line and a
    /// failed entry. A signal stops the grading: the new model, which has no card, is withdrawn (as when grading fails)
    /// and the zoo ends there. False when the entry failed.</summary>
    private static bool Publishing(ZooEntry e, string outDir, TextWriter w, Func<bool> publish, string runDir)
    {
        try
        {
            Directory.CreateDirectory(runDir);
            using var folderLock = FolderLock.Take(runDir, "zoo publishing");
            return publish();
        }
        catch (FolderBusyException x)
        {
            Cli.Line(w, $"== {e.Name}: not published: {x.Message}");
            return false;
        }
        catch (OperationCanceledException)
        {
            Withdraw(outDir, e.Name);
            Cli.Line(w, $"== {e.Name}: grading interrupted; its new model, not yet described by a card, was withdrawn");
            return true;
        }
    }

    /// <summary>Exports, grades and describes one model; false (after one line saying why) when it could not be
    /// exported or graded.</summary>
    private static bool Publish(ZooEntry e, string runDir, string outDir, GradingBudgets budgets, TextWriter w)
    {
        string onnx = Path.Combine(outDir, e.Name + ".onnx");
        var (model, ckpt) = ModelExporter.LoadModel(runDir);
        var state = TrainerState.FromJson(ckpt.State);
        using (model)
        {
            ExportResult export;
            try { export = ModelExporter.Export(model, ckpt.FileHash ?? "", e.ExportOptions); }
            catch (ParityException x)
            {
                Cli.Line(w, $"== {e.Name}: not published: {x.Message}");
                return false;
            }
            ModelWriter.Save(export.Model, onnx);
            Cli.Line(w, $"== {e.Name}: exported at step {state.Step} (parity {export.Parity.Max(p => p.MaxAbsDifference):E1})");
        }
        try
        {
            Grade(e, ckpt, state, onnx, outDir, budgets, w);
            return true;
        }
        catch (Exception x) when (x is not OperationCanceledException)
        {
            // the new model has no card: withdraw it with whatever an earlier run published under its name,
            // so every models/NAME.onnx keeps a card and report that describe it
            Withdraw(outDir, e.Name);
            Cli.Line(w, $"== {e.Name}: not graded: {Cli.OneLine(x)}");
            return false;
        }
    }

    /// <summary>Exports every member of an ensemble entry (without states, parity checked), joins them into one model,
    /// checks the joined model against its members, grades it and writes its card, which lists the members; false
    /// (after one line saying why) when it could not be published.</summary>
    private static bool PublishEnsemble(ZooEntry e, string runDir, string outDir, GradingBudgets budgets, TextWriter w)
    {
        string onnx = Path.Combine(outDir, e.Name + ".onnx");
        var members = new List<MemberModel>();
        var described = new JsonArray();
        Checkpoint? first = null;
        TrainerState? firstState = null;
        for (int i = 0; i < e.Members!.Count; i++)
        {
            var (model, ckpt) = ModelExporter.LoadModel(ZooEntry.MemberDir(runDir, i));
            var state = TrainerState.FromJson(ckpt.State);
            using (model)
            {
                ExportResult export;
                try { export = ModelExporter.Export(model, ckpt.FileHash ?? "", e.ExportOptions with { WithStates = false }); }
                catch (ParityException x)
                {
                    Cli.Line(w, $"== {e.Name}: not published: member {i + 1} ({e.Members[i]}): {x.Message}");
                    return false;
                }
                var member = new MemberModel(export.Model, e.Members[i]);
                members.Add(member);
                var json = new JsonObject
                {
                    ["init_from"] = state.InitFrom is null ? null : WarmStartStageJson(WarmStartChain.Resolve(ckpt).Stages[0], ckpt.Config),
                    ["checkpoint_sha256"] = ckpt.FileHash,
                    ["model_sha256"] = member.Sha256,
                    ["export_parity_max_abs_difference"] = export.Parity.Max(p => p.MaxAbsDifference),
                };
                described.Add(json);
            }
            if (i == 0) (first, firstState) = (ckpt, state);
        }
        Toolchain.Export.Onnx.Proto.ModelProto joined;
        IReadOnlyList<EnsembleParityPoint> parity;
        try
        {
            joined = EnsembleWriter.Join(members);
            parity = EnsembleWriter.CheckParity(joined, members, EnsembleWriter.ParitySizes(members[0], e.ExportOptions.ParityMultiples));
        }
        catch (Exception x) when (x is ArgumentException or ParityException)
        {
            Cli.Line(w, $"== {e.Name}: not published: {x.Message}");
            return false;
        }
        ModelWriter.Save(joined, onnx);
        Cli.Line(w, $"== {e.Name}: the ensemble of {members.Count} exported (parity against the members {parity.Max(p => p.MaxAbsDifference):E1})");
        try
        {
            Grade(e, first!, firstState!, onnx, outDir, budgets, w, described);
            return true;
        }
        catch (Exception x) when (x is not OperationCanceledException)
        {
            Withdraw(outDir, e.Name);
            Cli.Line(w, $"== {e.Name}: not graded: {Cli.OneLine(x)}");
            return false;
        }
    }

    /// <summary>Removes models/NAME.onnx, its card and its report.</summary>
    private static void Withdraw(string outDir, string name)
    {
        foreach (var f in new[] { name + ".onnx", name + ".card.json" })
            File.Delete(Path.Combine(outDir, f));
        foreach (var dir in new[] { name + ".report", name + ".bar" })
            if (Directory.Exists(Path.Combine(outDir, dir))) Directory.Delete(Path.Combine(outDir, dir), recursive: true);
    }

    /// <summary>Compacts the newest checkpoint of a finished run (<see cref="Checkpoint.WithoutOptimizerState"/>) under the run
    /// folder's lock; false (after one line saying why) when it cannot.</summary>
    private static bool Compact(ZooEntry e, string runDir, TextWriter w)
    {
        var files = Checkpoint.InDirectory(runDir);
        if (files.Count == 0)
        {
            Cli.Line(w, $"== {e.Name}: nothing to compact: no checkpoint in {runDir}");
            return true;
        }
        try
        {
            using var folderLock = FolderLock.Take(runDir, "training run");
            var ckpt = Checkpoint.Load(files[0]);
            long step = TrainerState.FromJson(ckpt.State).Step;
            if (!ckpt.HasOptimizerState)
            {
                Cli.Line(w, $"== {e.Name}: {Path.GetFileName(files[0])} is already compacted");
                return true;
            }
            if (step < e.Steps)
            {
                Cli.Line(w, $"== {e.Name}: not compacted: at step {step:N0} of {e.Steps:N0}, it still trains");
                return true;
            }
            long before = new FileInfo(files[0]).Length;
            ckpt.WithoutOptimizerState().Save(files[0]);
            long after = new FileInfo(files[0]).Length;
            Cli.Line(w, $"== {e.Name}: compacted {Path.GetFileName(files[0])}: {before:N0} -> {after:N0} bytes (optimizer state dropped; the full checkpoint's sha256 {ckpt.FileHash} is kept in its header)");
            return true;
        }
        catch (FolderBusyException x)
        {
            // a run that is training now has not finished: nothing to do, not a failure
            Cli.Line(w, $"== {e.Name}: not compacted: it is training now ({x.Message})");
            return true;
        }
        catch (Exception x) when (x is not OperationCanceledException && !StorageException.IsStorageFailure(x))
        {
            // a full or read-only disk ends the command with the environment's exit code (README); the file is untouched
            Cli.Line(w, $"== {e.Name}: not compacted: {Cli.OneLine(x)}");
            return false;
        }
    }

    /// <summary>Grades a published model again (a larger budget, a newer evaluator) and rewrites the measured
    /// fields of its card (model hash, claim, levels, break point, summary), keeping what it says about training.</summary>
    private static bool Regrade(ZooEntry e, string outDir, GradingBudgets budgets, TextWriter w)
    {
        string onnx = Path.Combine(outDir, e.Name + ".onnx"), cardPath = Path.Combine(outDir, e.Name + ".card.json");
        if (!File.Exists(onnx) || !File.Exists(cardPath))
        {
            Cli.Line(w, $"== {e.Name}: not regraded: {onnx} or its card is missing; publish it first (toolchain zoo --only {e.Name})");
            return false;
        }
        try
        {
            var card = (JsonObject)JsonNode.Parse(File.ReadAllText(cardPath))!;
            var results = Evaluate(e, onnx, outDir, budgets, w);
            foreach (var (key, value) in Measured(onnx, results))
                card[key] = value?.DeepClone();
            if (e.Bar is not null) card["bar"] = GradeBar(e, onnx, outDir, budgets, w);
            else card.Remove("bar");
            AtomicFile.Write(cardPath, card.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            Cli.Line(w, $"== {e.Name}: regraded: {card["summary"]}");
            return true;
        }
        catch (Exception x) when (x is not OperationCanceledException)
        {
            Cli.Line(w, $"== {e.Name}: not regraded: {Cli.OneLine(x)}");
            return false;
        }
    }

    /// <summary>Minutes of grading per model: the standard suite's (its break-point search gets half as many again) and the
    /// bar's; and the zoo's signal token, which stops a grading as it stops training.</summary>
    private sealed record GradingBudgets(double Standard, double Bar, CancellationToken Cancel = default);

    private static void Grade(ZooEntry e, Checkpoint ckpt, TrainerState state, string onnx, string outDir, GradingBudgets budgets, TextWriter w, JsonArray? ensemble = null)
    {
        var results = Evaluate(e, onnx, outDir, budgets, w);
        var card = Card(e, ckpt, state, onnx, results);
        // an ensemble's card: the fields above are its first member's; every member is listed here
        if (ensemble is not null) card["ensemble"] = ensemble;
        if (e.Bar is not null) card["bar"] = GradeBar(e, onnx, outDir, budgets, w);
        AtomicFile.Write(Path.Combine(outDir, e.Name + ".card.json"), card.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        Cli.Line(w, $"== {e.Name}: {card["summary"]}");
    }

    /// <summary>Grades on the standard suite with a break-point search into models/NAME.report/.</summary>
    private static Results Evaluate(ZooEntry e, string onnx, string outDir, GradingBudgets budgets, TextWriter w) =>
        GradeOn(SuiteFile.LoadBuiltIn("standard"), onnx, Path.Combine(outDir, e.Name + ".report"), budgets.Standard, breakPoint: true, w, budgets.Cancel);

    /// <summary>Grades a model on a suite into a fresh folder (the standard report or the bar) within the budget, with
    /// or without a break-point search (half the budget again).</summary>
    private static Results GradeOn(SuiteDefinition suite, string onnx, string dir, double minutes, bool breakPoint, TextWriter w, CancellationToken cancel)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var (info, runner) = ModelIntake.Open(onnx, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu, Log = line => Cli.Line(w, "   " + line) });
        Results results;
        using (runner)
        {
            results = Evaluator.Run(info, runner, new EvalOptions
            {
                Suite = suite,
                OutDir = dir,
                BudgetMinutes = minutes,
                BreakPoint = breakPoint,
                BreakPointOptions = new BreakPointOptions { Seconds = minutes * 30 },
                Log = line => Cli.Line(w, "   " + line),
                Cancel = cancel,
            });
        }
        foreach (var f in new[] { Evaluator.PlanFile, Evaluator.UnitsFile, Evaluator.BreakPointFile, FolderLock.FileName })
            File.Delete(Path.Combine(dir, f)); // resume bookkeeping; the card and results.json carry the outcome
        return results;
    }

    /// <summary>The model card: what was trained, how long, where, and what the graded report measured.
    /// The claim is the 95% Wilson lower bound of the 1x random sequence accuracy, rounded down: a fresh run
    /// of the same examples must reach it.</summary>
    private static JsonObject Card(ZooEntry e, Checkpoint ckpt, TrainerState state, string onnx, Results results)
    {
        var card = new JsonObject
        {
            ["name"] = e.Name,
            ["task"] = e.Task,
            ["arch"] = e.Arch,
            ["preset"] = e.Preset ?? RunConfig.DefaultPreset(e.Arch),
            ["seed"] = ckpt.Config.Seed,
            ["train_length"] = ckpt.Config.TrainLength,
            ["steps"] = state.Step,
            ["planned_steps"] = e.Steps,
            ["wall_time_seconds"] = Math.Round(state.WallSeconds),
            ["machine"] = Machine(),
            ["note"] = e.Note,
            ["export_parity_multiples"] = string.Join(",", e.ExportOptions.ParityMultiples.Select(m => m.ToString(CultureInfo.InvariantCulture))),
            ["model"] = Path.GetFileName(onnx),
            ["checkpoint_sha256"] = ckpt.FileHash,
            ["config"] = JsonNode.Parse(ckpt.Config.ToJson()),
        };
        // a compacted checkpoint (zoo --compact) names the full one that earlier cards and exports name
        if (ckpt.CompactedFrom is not null) card["checkpoint_compacted_from"] = ckpt.CompactedFrom;
        // a warm-started run (init_from) says what it started from, and what that started from, back to a fresh
        // start: steps and wall time above are this run's own part only; all_stages counts the whole training
        if (state.InitFrom is not null)
        {
            var chain = WarmStartChain.Resolve(ckpt);
            var init = WarmStartStageJson(chain.Stages[0], ckpt.Config);
            var earlier = new JsonArray();
            foreach (var stage in chain.Stages.Skip(1)) earlier.Add(WarmStartStageJson(stage, ckpt.Config));
            init["earlier"] = earlier;
            init["chain_end"] = chain.End;
            init["all_stages"] = new JsonObject
            {
                ["stages"] = chain.Stages.Count + 1,
                ["steps"] = state.Step + chain.Stages.Sum(st => st.Origin.Step),
                ["wall_time_seconds"] = Math.Round(state.WallSeconds + chain.Stages.Sum(st => st.Origin.WallSeconds)),
                ["complete"] = chain.Complete,
            };
            card["init_from"] = init;
        }
        foreach (var (key, value) in Measured(onnx, results)) card[key] = value?.DeepClone();
        return card;
    }

    /// <summary>One stage of a warm-start chain on a card: the checkpoint, its run's task, size, seed, steps and wall
    /// time, and (when its file was read) the settings in which its run differed from the published run's, with that
    /// stage's values (init_from and the planned steps left out: the chain and the steps say those).</summary>
    private static JsonObject WarmStartStageJson(WarmStartStage stage, RunConfig published)
    {
        var o = stage.Origin;
        var json = new JsonObject
        {
            ["path"] = stage.Path,
            ["sha256"] = o.Sha256,
            ["task"] = o.Task,
            ["train_length"] = o.TrainLength,
            ["seed"] = o.Seed,
            ["steps"] = o.Step,
            ["wall_time_seconds"] = Math.Round(o.WallSeconds),
        };
        if (stage.Config is null)
        {
            json["settings"] = "not read: the file is not here with the recorded hash (the origin above was recorded by the later stage)";
            return json;
        }
        json["settings_differing"] = RunConfigDifference.Values(stage.Config, published, "init_from", "steps");
        return json;
    }

    /// <summary>The card's measured fields: the graded model's hash, the claim, the levels (each with its families'
    /// exact counts), the break point.</summary>
    private static JsonObject Measured(string onnx, Results results)
    {
        var oneX = results.Levels.FirstOrDefault(l => l.Name == "1x");
        var random = oneX?.Families.FirstOrDefault(f => f.Family == AlgorithmicTask.Random);
        double claim = random is null ? 0 : Math.Floor(random.WilsonLower95 * 100) / 100;
        string summary = LevelsSummary(results) + (results.BreakPoint is { } bp ? "; " + bp.Verdict : "");
        return new JsonObject
        {
            ["model_sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(onnx))),
            ["claim"] = new JsonObject { ["level"] = "1x", ["family"] = "random", ["samples"] = random?.Samples ?? 0, ["min_sequence_accuracy"] = claim },
            ["levels"] = Levels(results),
            ["break_point"] = results.BreakPoint?.Verdict,
            ["summary"] = summary,
        };
    }

    private static string LevelsSummary(Results results) =>
        string.Join(", ", results.Levels.Where(l => l.Total is { Samples: > 0 }).Select(l => $"{l.Name} {ReportWriter.Pct(l.Total!.SequenceAccuracy)}"));

    /// <summary>The graded levels of a card: accuracies, samples, status and each family's exact count.</summary>
    private static JsonObject Levels(Results results)
    {
        var levels = new JsonObject();
        foreach (var l in results.Levels.Where(l => l.Total is { Samples: > 0 }))
            levels[l.Name] = new JsonObject
            {
                ["size"] = l.Size,
                ["sequence_accuracy"] = Math.Round(l.Total!.SequenceAccuracy, 4),
                ["symbol_accuracy"] = Math.Round(l.Total.SymbolAccuracy, 4),
                ["samples"] = l.Total.Samples,
                ["random_sequence_accuracy"] = l.Families.FirstOrDefault(f => f.Family == "random") is { } fr ? Math.Round(fr.SequenceAccuracy, 4) : null,
                ["status"] = l.Status,
                ["families"] = Families(l),
            };
        return levels;
    }

    /// <summary>Grades the entry's bar suite into models/NAME.bar/ (no break-point search; the standard grading has
    /// one) and describes it for the card: the suite (source, name, seed, hash), its levels with every family's exact
    /// count, and `met`: every planned example of every level graded and sequence-exact, or, for an entry with
    /// `bar_gates`, every planned example graded and every rule passing (the card's `bar.gates` lists each rule with
    /// its value). A level the budget trimmed or skipped leaves the bar unmet, and the card says which, apart from
    /// the examples graded and wrong (or the rules that failed).</summary>
    private static JsonObject GradeBar(ZooEntry e, string onnx, string outDir, GradingBudgets budgets, TextWriter w)
    {
        var suite = e.BarSuite()!;
        Cli.Line(w, $"== {e.Name}: grading its bar, {e.Bar} ({suite.Name}, seed {suite.Seed})");
        var results = GradeOn(suite, onnx, Path.Combine(outDir, e.Name + ".bar"), budgets.Bar, breakPoint: false, w, budgets.Cancel);
        var rules = e.BarRules;
        var shortfalls = new List<string>();
        foreach (var l in results.Levels)
        {
            if (l.Status != "complete") shortfalls.Add($"{l.Name} {l.Status}" + (l.Note is null ? "" : $" ({l.Note})"));
            if (rules is null)
                foreach (var f in l.Families.Where(f => f.Exact < f.Samples))
                    shortfalls.Add($"{l.Name} {f.Family} {f.Exact} of {f.Samples} exact");
        }
        foreach (var c in results.Cases.Where(c => !c.Exact)) shortfalls.Add($"case {c.Name} {c.Status}");
        var outcomes = rules is null ? null : Gates.Check(rules, [results]);
        if (outcomes is not null)
            foreach (var o in outcomes.Where(o => !o.Passed)) shortfalls.Add($"{o.Rule.Describe()}: {o.Message}");
        string met = outcomes is null ? "every example exact"
            : "every rule passes (" + string.Join("; ", outcomes.Select(o => $"{o.Rule.Describe()}: {o.Value?.ToString("0.####", CultureInfo.InvariantCulture)}")) + ")";
        string verdict = shortfalls.Count == 0 ? "met: " + met : "not met: " + string.Join("; ", shortfalls);
        Cli.Line(w, $"== {e.Name}: bar {verdict}");
        var bar = new JsonObject
        {
            ["suite"] = new JsonObject { ["source"] = e.Bar, ["name"] = suite.Name, ["seed"] = suite.Seed, ["sha256"] = suite.Hash },
            ["met"] = shortfalls.Count == 0,
            ["verdict"] = verdict,
            ["levels"] = Levels(results),
            ["summary"] = LevelsSummary(results),
        };
        if (outcomes is not null)
            bar["gates"] = new JsonObject
            {
                ["source"] = e.BarGates,
                ["sha256"] = e.BarGatesSha256,
                // a value that was not measured (a level the budget skipped) is null, never 0
                ["rules"] = new JsonArray(outcomes.Select(o => (JsonNode)new JsonObject
                {
                    ["rule"] = o.Rule.Describe(),
                    ["value"] = o.Value is { } v ? Math.Round(v, 6) : null,
                    ["passed"] = o.Passed,
                    ["message"] = o.Message,
                }).ToArray()),
            };
        return bar;
    }

    /// <summary>Each graded family of a level: examples graded and exact ones (sequence-exact), so that a bar "every
    /// family exact, at least N examples each" can be read off the card.</summary>
    private static JsonObject Families(LevelResult level)
    {
        var families = new JsonObject();
        foreach (var f in level.Families.Where(f => f.Samples > 0))
            families[f.Family] = new JsonObject { ["samples"] = f.Samples, ["exact"] = f.Exact };
        return families;
    }

    public static string Machine()
    {
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
            : "unknown CPU";
        return $"{cpu}, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    }
}
