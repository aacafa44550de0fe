using System.CommandLine;
using Toolchain.Train;
using Toolchain.Train.Models;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain train --task T --arch A [--preset P] ... --out DIR [--resume]`.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "task to learn (see `toolchain tasks`)", Required = true };
        var arch = new Option<string>("--arch") { Description = $"architecture: {string.Join(", ", ModelRegistry.Names)}", Required = true };
        var preset = new Option<string?>("--preset") { Description = $"named defaults: {string.Join(", ", RunConfig.PresetDescriptions.Keys)} (default: the architecture's paper preset, or baseline)" };
        var trainLength = new Option<int?>("--train-length") { Description = "training size k (digits per operand / input symbols)" };
        var steps = new Option<int?>("--steps") { Description = "optimizer steps in total (a resumed run continues up to this)" };
        var seed = new Option<ulong?>("--seed") { Description = "seed of data, initialisation and dropout" };
        var device = new Option<string?>("--device") { Description = "cpu or cuda" };
        var threads = new Option<int?>("--threads") { Description = "torch intra-op threads" };
        var set = new Option<string[]>("--set") { Description = "override any setting: --set maps=24 --set dropout=0.1 (snake_case names, see --dry-run)", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string>("--out") { Description = "run directory: checkpoints, config.json, metrics.jsonl", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue from the newest checkpoint in --out" };
        var dryRun = new Option<bool>("--dry-run") { Description = "print the resolved configuration and exit" };
        var seeds = new Option<string?>("--seeds") { Description = "train several seeds of this configuration in one process, packed into one model (dngpu): --seeds 1,2,3,4 or 1-4; each seed's run is OUT/seed-N, resumable and exportable alone" };
        var minutes = new Option<double?>("--minutes") { Description = "stop after this much wall time with a checkpoint saved (continue later with --resume)" }.MustBePositive();
        var cmd = new Command("train", "train a model on a task (TorchSharp)") { task, arch, preset, trainLength, steps, seed, device, threads, set, output, resume, dryRun, minutes, seeds };
        cmd.SetAction((r, cancel) =>
        {
            string a = r.GetValue(arch)!, t = r.GetValue(task)!;
            if (!ModelRegistry.Names.Contains(a)) throw new UserError($"unknown architecture '{a}'; architectures: {string.Join(", ", ModelRegistry.Names)}");
            var config = RunConfig.Preset(r.GetValue(preset) ?? RunConfig.DefaultPreset(a), a, t);
            config = config with
            {
                TrainLength = r.GetValue(trainLength) ?? config.TrainLength,
                Steps = r.GetValue(steps) ?? config.Steps,
                Seed = r.GetValue(seed) ?? config.Seed,
                Device = r.GetValue(device) ?? config.Device,
                Threads = r.GetValue(threads) ?? config.Threads,
            };
            config = config.With(r.GetValue(set) ?? []).Validate();
            var w = r.InvocationConfiguration.Output;
            List<ulong>? seedList = null;
            if (r.GetValue(seeds) is string seedText)
            {
                if (r.GetValue(seed) is not null) throw new UserError("give --seed (one run) or --seeds (several packed runs), not both");
                try { seedList = MultiSeedTrainer.ParseSeeds(seedText); }
                catch (ArgumentException e) { throw new UserError(e.Message); }
            }
            // refused with numbers before any tensor is allocated (CPU memory; a CUDA device reports its own)
            var memory = MemoryEstimate.For(config, Toolchain.Suites.TaskRegistry.Get(config.Task));
            if (seedList is not null) memory = memory with { ParameterBytes = memory.ParameterBytes * seedList.Count, ActivationBytes = memory.ActivationBytes * seedList.Count };
            if (config.Device == "cpu") memory.Check(MemoryEstimate.AvailableBytes());
            if (r.GetValue(dryRun))
            {
                Cli.Line(w, config.ToJson().ReplaceLineEndings("\n"));
                Cli.Line(r.InvocationConfiguration.Error, $"memory: about {memory.Describe()}");
                return Task.FromResult(0);
            }
            double? limit = r.GetValue(minutes);
            if (limit is <= 0 or > 7 * 24 * 60) throw new UserError($"--minutes must be between 0 and {7 * 24 * 60} (a week), not {limit}");
            string dir = Cli.RequireFolder(r.GetValue(output)!);
            if (seedList is not null) return Task.FromResult(TrainSeeds(config, seedList, dir, r.GetValue(resume), limit, w, cancel));
            bool hasCheckpoints = Checkpoint.InDirectory(dir).Count > 0;
            if (hasCheckpoints && !r.GetValue(resume))
                throw new UserError($"{dir} already holds checkpoints; pass --resume to continue that run, or choose another --out");
            using var trainer = new Trainer(config, dir, w);
            if (r.GetValue(resume) && !trainer.TryResume()) Cli.Line(w, $"--resume: no checkpoint in {dir} yet; starting from step 0");
            Cli.Line(w, $"training {config.Arch} on {config.Task}, train length {config.TrainLength}, {config.Steps} steps, device {config.Device}, run dir {dir}");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            if (limit is double m) stop.CancelAfter(TimeSpan.FromMinutes(m));
            using var signals = Cli.CancelOnSignals(stop, out var signalled);
            trainer.Run(stop.Token);
            Cli.Line(w, signalled() || cancel.IsCancellationRequested ? $"interrupted; checkpoint saved at step {trainer.Step}; continue with --resume"
                : stop.IsCancellationRequested ? $"time limit of {limit} min reached; checkpoint saved at step {trainer.Step}; continue with --resume"
                : $"done: {dir}");
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>`train --seeds`: every seed of the list in one packed process, each into OUT/seed-N.</summary>
    private static int TrainSeeds(RunConfig config, List<ulong> seeds, string dir, bool resume, double? limit, TextWriter w, CancellationToken cancel)
    {
        var existing = seeds.Where(s => Checkpoint.InDirectory(MultiSeedTrainer.SeedDirectory(dir, s)).Count > 0).ToList();
        if (existing.Count > 0 && !resume)
            throw new UserError($"{MultiSeedTrainer.SeedDirectory(dir, existing[0])} already holds checkpoints; pass --resume to continue those runs, or choose another --out");
        MultiSeedTrainer trainer;
        try { trainer = new MultiSeedTrainer(config, seeds, dir, w); }
        catch (ArgumentException e) when (e.Message.StartsWith("--seeds", StringComparison.Ordinal)) { throw new UserError(e.Message); }
        using (trainer)
        {
            if (resume) Cli.Line(w, $"--resume: {trainer.TryResume()} of {seeds.Count} seeds continue from a checkpoint");
            Cli.Line(w, $"training {seeds.Count} seeds ({string.Join(',', seeds)}) of {config.Arch} on {config.Task} packed in one process, train length {config.TrainLength}, {config.Steps} steps, device {config.Device}, runs in {dir}/seed-N");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            if (limit is double m) stop.CancelAfter(TimeSpan.FromMinutes(m));
            using var signals = Cli.CancelOnSignals(stop, out var signalled);
            trainer.Run(stop.Token);
            string steps = string.Join(", ", trainer.Trainers.Select((t, i) => $"seed {seeds[i]} at step {t.Step}"));
            Cli.Line(w, signalled() || cancel.IsCancellationRequested ? $"interrupted; checkpoints saved ({steps}); continue with --resume"
                : stop.IsCancellationRequested ? $"time limit of {limit} min reached; checkpoints saved ({steps}); continue with --resume"
                : $"done: {string.Join(", ", seeds.Select(s => MultiSeedTrainer.SeedDirectory(dir, s)))}");
        }
        return 0;
    }
}