using Toolchain.Train;
using TorchSharp;

namespace Toolchain.Tests.Train;

/// <summary>`train --seeds`: S seeds packed into one model must train exactly as S separate runs (up to float32
/// rounding), each seed's folder must be a complete single run, and a killed packed run must resume exactly.</summary>
[Collection("torch")]
public class MultiSeedTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-seeds-" + Guid.NewGuid().ToString("N"));
    private static readonly ulong[] Seeds = [1, 2, 3, 4];

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The reference recipe, small, with every random draw on: input and candidate dropout, gradient noise
    /// (at a size where it moves the losses), padded bins, saturation re-balancing and plateau decay inside 20 steps.</summary>
    private static RunConfig Small => RunConfig.Preset("dngpu-ref", "dngpu", "badd") with
    {
        Maps = 12, TrainLength = 6, BatchSize = 8, Steps = 20, CheckpointEvery = 100, LogEvery = 5, TrainSetSize = 0,
        SaturationRebalance = 4, LrDecayEvery = 3, GradNoiseLr = 10,
    };

    /// <summary>Seed 3's loss turns NaN once, at step 5: it goes back to its step-0 checkpoint and trains on.</summary>
    private static Func<long, bool> PoisonOnce(ulong seed)
    {
        bool done = false;
        return step => seed == 3 && step == 5 && !done && (done = true);
    }

    [Fact]
    public void Four_packed_seeds_give_the_losses_of_four_separate_runs()
    {
        var single = new Dictionary<ulong, List<(long Step, double Loss)>>();
        foreach (var seed in Seeds)
        {
            using var t = new Trainer(Small with { Seed = seed }, Path.Combine(_dir, "single", seed.ToString()));
            t.PoisonLoss = PoisonOnce(seed);
            single[seed] = t.Run().Losses;
        }
        TrainResult[] packed;
        using (var multi = new MultiSeedTrainer(Small, Seeds, Path.Combine(_dir, "packed")))
        {
            for (int i = 0; i < Seeds.Length; i++)
            {
                multi.Trainers[i].PoisonLoss = PoisonOnce(Seeds[i]);
            }
            packed = multi.Run();
            multi.Trainers.Should().OnlyContain(t => t.Step == 20);
        }
        for (int i = 0; i < Seeds.Length; i++)
        {
            var expected = single[Seeds[i]];
            var actual = packed[i].Losses;
            actual.Select(l => l.Step).Should().Equal(expected.Select(l => l.Step), $"seed {Seeds[i]} takes the same steps");
            for (int j = 0; j < expected.Count; j++)
                actual[j].Loss.Should().BeApproximately(expected[j].Loss, 1e-4 * Math.Abs(expected[j].Loss), $"seed {Seeds[i]}, step {expected[j].Step}");
        }
        // the seeds differ from each other, and the poisoned seed recovered while the others went on
        packed.Select(r => r.Losses[^1].Loss).Distinct().Should().HaveCount(4);
        packed[2].Events.Should().ContainSingle(e => e.Contains("NaN")).And.HaveCount(1);
        packed[0].Events.Should().BeEmpty();
        // each seed's folder is a complete run of its own seed
        foreach (var seed in Seeds)
        {
            string dir = MultiSeedTrainer.SeedDirectory(Path.Combine(_dir, "packed"), seed);
            Checkpoint.InDirectory(dir).Should().NotBeEmpty();
            Checkpoint.Load(Checkpoint.InDirectory(dir)[0]).Config.Seed.Should().Be(seed);
            File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Should().HaveCountGreaterThan(3);
        }
    }

    [Fact]
    public void A_killed_packed_run_resumes_exactly()
    {
        TrainResult[] whole;
        using (var multi = new MultiSeedTrainer(Small, Seeds, Path.Combine(_dir, "whole")))
            whole = multi.Run();

        string dir = Path.Combine(_dir, "killed");
        using (var cancel = new CancellationTokenSource())
        using (var multi = new MultiSeedTrainer(Small, Seeds, dir))
        {
            multi.Trainers[^1].AfterStep = step => { if (step == 9) cancel.Cancel(); };
            multi.Run(cancel.Token);
            multi.Trainers.Select(t => t.Step).Should().Equal(9, 9, 9, 9);
        }
        TrainResult[] resumed;
        using (var multi = new MultiSeedTrainer(Small, Seeds, dir))
        {
            multi.TryResume().Should().Be(4);
            resumed = multi.Run();
        }
        for (int i = 0; i < Seeds.Length; i++)
            resumed[i].Losses.Should().Equal(whole[i].Losses.Where(l => l.Step >= 9), $"seed {Seeds[i]} resumes bit for bit");

        // and one seed's folder resumes alone as a single run
        using var alone = new Trainer(Small with { Seed = 2, Steps = 22 }, MultiSeedTrainer.SeedDirectory(dir, 2));
        alone.TryResume().Should().BeTrue();
        alone.Run().Losses.Select(l => l.Step).Should().Equal(20, 21);
    }

    [Fact]
    public void The_command_line_trains_seeds_into_their_folders_and_refuses_bad_input()
    {
        string dir = Path.Combine(_dir, "cli");
        var (code, stdout, stderr) = CliRunner.InProcess("train", "--task", "badd", "--arch", "dngpu", "--seeds", "5,6", "--steps", "3",
            "--set", "maps=6", "--set", "train_length=4", "--set", "batch_size=4", "--out", dir);
        code.Should().Be(0, stderr);
        stdout.Should().Contain("seed 5: step").And.Contain("seed 6: step");
        foreach (var seed in new ulong[] { 5, 6 })
            Checkpoint.InDirectory(MultiSeedTrainer.SeedDirectory(dir, seed)).Should().NotBeEmpty();
        var export = CliRunner.InProcess("export", MultiSeedTrainer.SeedDirectory(dir, 6), "--out", Path.Combine(_dir, "seed6.onnx"));
        export.Code.Should().Be(0, export.Err);

        void Refused(string because, params string[] args)
        {
            var r = CliRunner.InProcess(["train", "--task", "badd", "--steps", "2", "--out", Path.Combine(_dir, "refused"), .. args]);
            r.Code.Should().Be(2, because);
            r.Err.Should().StartWith("error:", because).And.NotContain("   at ", because);
        }
        Refused("not a seed list", "--arch", "dngpu", "--seeds", "1,x");
        Refused("a repeated seed", "--arch", "dngpu", "--seeds", "1,2,1");
        Refused("--seed and --seeds", "--arch", "dngpu", "--seed", "3", "--seeds", "1,2");
        Refused("not packable", "--arch", "gru", "--seeds", "1,2");
        Refused("checkpoints without --resume", "--arch", "dngpu", "--seeds", "5", "--out", dir);
        MultiSeedTrainer.ParseSeeds("1-4, 9").Should().Equal(1UL, 2UL, 3UL, 4UL, 9UL);
    }
}
