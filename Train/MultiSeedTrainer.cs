using System.Globalization;
using Toolchain.Train.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Toolchain.Train;

/// <summary>
/// Trains S independent dngpu models of one configuration, differing only in their seed, in one process: each seed
/// is a complete <see cref="Trainer"/> with its own folder (OUT/seed-N: config.json, checkpoints, metrics), optimizer
/// state, schedules, plateau decay and NaN recovery, so each is resumable and exportable alone, like a single run.
/// What is shared is the arithmetic: every step, the seeds' models run packed as one
/// (<see cref="ImprovedNeuralGpu.RunPacked"/>: a seed axis in front, batched matrix products), their losses are
/// summed into one backward pass (their parameters are disjoint, so each gets its own gradient), and each seed then
/// applies its own update. Each seed draws its dropout masks and gradient noise from its own generator, seeded as a
/// single run seeds torch at that step, so a seed's losses are those of its single run up to float32 rounding.
/// Seeds may stand at different steps (after a NaN recovery, or resumed from different checkpoints): each step packs
/// the seeds that have steps left. Packing needs every seed to train the same bins every step: dngpu with all_bins.
/// </summary>
public sealed class MultiSeedTrainer : IDisposable
{
    private readonly Trainer[] _trainers;

    public MultiSeedTrainer(RunConfig config, IReadOnlyList<ulong> seeds, string outDir, TextWriter? log = null)
        : this(config, seeds.Select(seed => (seed, SeedDirectory(outDir, seed))).ToList(), log)
    {
    }

    /// <summary>Seeds with a run folder each (the zoo's entries that differ only in their seed).</summary>
    public MultiSeedTrainer(RunConfig config, IReadOnlyList<(ulong Seed, string Directory)> runs, TextWriter? log = null)
    {
        HeapSettings.KeepFreedMemoryForTraining();
        var seeds = runs.Select(r => r.Seed).ToList();
        if (!CanPack(config))
            throw new ArgumentException($"--seeds packs dngpu models that train every bin each step (all_bins=true); this run is arch {config.Arch}, all_bins={config.AllBins.ToString().ToLowerInvariant()}: train one seed per process instead");
        if (seeds.Count == 0) throw new ArgumentException("--seeds: give at least one seed, e.g. --seeds 1,2,3,4");
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException($"--seeds: {string.Join(',', seeds)} repeats a seed; each seed trains once");
        var trainers = new List<Trainer>();
        try
        {
            foreach (var (seed, dir) in runs)
                trainers.Add(new Trainer(config with { Seed = seed }, dir, new PrefixedWriter(log ?? TextWriter.Null, $"seed {seed}: ")));
        }
        catch
        {
            foreach (var t in trainers) t.Dispose();
            throw;
        }
        _trainers = [.. trainers];
    }

    /// <summary>Whether seeds of this configuration can train packed: dngpu with all_bins.</summary>
    public static bool CanPack(RunConfig config) => config.Arch == "dngpu" && config.AllBins;

    /// <summary>The folder of one seed's run: OUT/seed-N.</summary>
    public static string SeedDirectory(string outDir, ulong seed) => Path.Combine(outDir, "seed-" + seed.ToString(CultureInfo.InvariantCulture));

    /// <summary>Parses "1,2,3,4" (or ranges "1-4") into seeds.</summary>
    public static List<ulong> ParseSeeds(string text)
    {
        var seeds = new List<ulong>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-', StringSplitOptions.TrimEntries);
            bool Parse(string t, out ulong v) => ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out v);
            if (range.Length == 1 && Parse(range[0], out ulong one)) seeds.Add(one);
            else if (range.Length == 2 && Parse(range[0], out ulong lo) && Parse(range[1], out ulong hi) && lo <= hi)
            {
                if (hi - lo >= 1024) throw new ArgumentException($"--seeds: '{part}' is {hi - lo + 1} seeds; one process packs at most 1024");
                for (ulong s = lo; s <= hi; s++) seeds.Add(s);
            }
            else throw new ArgumentException($"--seeds: '{part}' is not a seed or a range of seeds; write e.g. --seeds 1,2,3,4 or --seeds 1-8");
        }
        return seeds; // an empty or repeating list is refused where every list is checked: the constructor
    }

    public IReadOnlyList<Trainer> Trainers => _trainers;

    /// <summary>Each seed continues from its newest checkpoint; returns how many had one.</summary>
    public int TryResume() => _trainers.Count(t => t.TryResume());

    /// <summary>Trains every seed to its last step (or until cancelled: then each seed saves a checkpoint).</summary>
    public TrainResult[] Run(CancellationToken cancel = default)
    {
        var sessions = new List<Trainer.Session>();
        try
        {
            foreach (var t in _trainers) sessions.Add(t.Start());
            while (!cancel.IsCancellationRequested && Step(sessions)) { }
            return sessions.Select(s => s.Stop(cancel.IsCancellationRequested)).ToArray();
        }
        finally
        {
            foreach (var s in sessions) s.Dispose();
        }
    }

    /// <summary>Bench hook: one packed step of every seed that has steps left, with no logging, schedules or checkpoints.</summary>
    public void BenchStep() => Step(null);

    /// <summary>One packed step of the seeds with steps left; false when none has. Without sessions (the bench) the
    /// step is applied and counted, nothing else.</summary>
    private bool Step(List<Trainer.Session>? sessions)
    {
        var active = Enumerable.Range(0, _trainers.Length).Where(i => !_trainers[i].Finished).ToList();
        if (active.Count == 0) return false;
        using var scope = torch.NewDisposeScope();
        var trainers = active.Select(i => _trainers[i]).ToList();
        var works = trainers.Select(t => t.Prepare()).ToList();
        var device = trainers[0].Model.Device; // dropout and noise are drawn on the device, from a generator of that device
        var generators = works.Select(w => new Generator((ulong)w.TorchSeed, device)).ToList();
        try
        {
            var models = trainers.Select(t => (ImprovedNeuralGpu)t.Model).ToList();
            foreach (var m in models) m.train();
            // bin by bin, every seed's batch of that bin through the packed model
            var outputs = trainers.Select(_ => new List<ModelOutput>()).ToList();
            for (int b = 0; b < works[0].Bins.Length; b++)
            {
                var packed = ImprovedNeuralGpu.RunPacked(models, works.Select(w => w.Batches[b].Tokens).ToList(), generators.Cast<Generator?>().ToList());
                for (int i = 0; i < packed.Length; i++) outputs[i].Add(packed[i]);
            }
            var losses = trainers.Select((t, i) => t.LossOf(works[i], outputs[i])).ToList();
            var good = Enumerable.Range(0, trainers.Count).Where(i => losses[i].Finite).ToList();
            if (good.Count > 0) Trainer.Backward(good.Select(i => trainers[i]).ToList(), good.Select(i => losses[i]).ToList());
            for (int i = 0; i < trainers.Count; i++)
            {
                if (!losses[i].Finite)
                {
                    if (sessions is null) throw new TrainingDivergedException($"bench: the loss of seed {trainers[i].Config.Seed} turned NaN/inf");
                    trainers[i].Recover(sessions[active[i]], works[i].Step);
                    continue;
                }
                trainers[i].Apply(works[i], losses[i], generators[i]);
                if (sessions is null) trainers[i].CountBenchStep();
                else trainers[i].Advance(sessions[active[i]], works[i], losses[i]);
            }
        }
        finally
        {
            foreach (var g in generators) g.Dispose();
        }
        return true;
    }

    public void Dispose()
    {
        foreach (var t in _trainers) t.Dispose();
    }

    /// <summary>Prefixes every line a seed's trainer writes with its seed.</summary>
    private sealed class PrefixedWriter(TextWriter inner, string prefix) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;
        public override void WriteLine(string? value) => inner.WriteLine(prefix + value);
        public override void Write(char value) => inner.Write(value);
    }
}
