using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Toolchain.Suites;
using Toolchain.Tests.Train;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;

namespace Toolchain.Tests.Robustness;

/// <summary>Issue #15: training and export under corrupt and crafted checkpoints, full and read-only disks, a
/// second process and divergence (items 3, 4, 5, 6, 7, 9, 10, 16, 17).</summary>
[Collection("torch")]
public class TrainFaultTests : IDisposable, IClassFixture<TrainFaultTests.TrainedRun>
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-faults-" + Guid.NewGuid().ToString("N"));
    private readonly TrainedRun _trained;

    public TrainFaultTests(TrainedRun trained) => _trained = trained;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The smallest run: tiny dngpu on copy at size 3, two steps, checkpoints at 0 and 2.</summary>
    private static RunConfig Tiny => RunConfig.Preset("tiny", "dngpu", "copy") with { TrainLength = 3, Steps = 2, CheckpointEvery = 2 };

    private static string[] Train(string output, params string[] more) =>
        ["train", "--task", "copy", "--arch", "dngpu", "--preset", "tiny", "--train-length", "3", "--set", "checkpoint_every=2", "--out", output,
            .. more.Contains("--steps") ? more : [.. more, "--steps", "2"]];

    /// <summary>One trained run shared by the tests (each works on its own copy).</summary>
    public sealed class TrainedRun : IDisposable
    {
        public string Dir { get; } = Path.Combine(Path.GetTempPath(), "toolchain-faults-run-" + Guid.NewGuid().ToString("N"));

        public TrainedRun()
        {
            using var t = new Trainer(Tiny, Dir);
            t.Run();
        }

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    private string Trained()
    {
        string run = Path.Combine(_dir, "run");
        Directory.CreateDirectory(run);
        foreach (var file in Directory.GetFiles(_trained.Dir).Where(f => !f.EndsWith(FolderLock.FileName, StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(run, Path.GetFileName(file)));
        return run;
    }

    [Fact]
    public void Resume_with_every_checkpoint_corrupt_is_refused_and_touches_nothing()
    {
        string run = Trained();
        foreach (var file in Checkpoint.InDirectory(run))
        {
            var bytes = File.ReadAllBytes(file);
            bytes[bytes.Length / 2] ^= 0x55;
            File.WriteAllBytes(file, bytes);
        }
        var before = Expect.Snapshot(run);
        var r = CliRunner.InProcess(Train(run, "--resume", "--steps", "6"));
        r.OneError(2, "cannot resume", "checksum");
        Expect.Snapshot(run).Should().Equal(before);
    }

    [Fact]
    public void Resume_with_a_different_configuration_names_the_differing_fields_in_one_line()
    {
        string run = Trained();
        var r = CliRunner.InProcess(Train(run, "--resume", "--set", "maps=10", "--set", "dropout=0.25"));
        r.OneError(2, "maps 8 in the checkpoint, 10 now", "dropout 0 in the checkpoint, 0.25 now");
        r.Err.Length.Should().BeLessThan(1_000);
        r.Err.Should().NotContain("\"task\"", "only the differing fields are named");
    }

    [Fact]
    public void A_resume_error_about_a_tensor_names_the_checkpoint_path_not_its_hash()
    {
        string run = Trained();
        string newest = Checkpoint.InDirectory(run)[0];
        var ckpt = Checkpoint.Load(newest);
        var tensors = ckpt.Tensors.Where(t => t.Key != "model/out_weight").ToDictionary();
        new Checkpoint { Config = ckpt.Config, State = ckpt.State, Tensors = tensors }.Save(newest);
        using var trainer = new Trainer(Tiny, run);
        FluentActions.Invoking(() => trainer.TryResume()).Should().Throw<CheckpointException>()
            .WithMessage($"{newest}: parameter 'out_weight'*missing*");
    }

    [Fact]
    public void A_second_training_process_into_one_folder_is_refused_naming_the_holder()
    {
        string run = Path.Combine(_dir, "busy");
        using (FolderLock.Take(run, "training run"))
        {
            var r = CliRunner.InProcess(Train(run));
            r.Code.Should().Be(3);
            r.Err.Should().StartWith("error: ").And.Contain($"process {Environment.ProcessId}").And.Contain("training run");
            Checkpoint.InDirectory(run).Should().BeEmpty();
        }
        CliRunner.InProcess(Train(run)).Code.Should().Be(0, "the lock is released with its holder");
    }

    [Fact]
    public void A_full_disk_while_saving_a_checkpoint_keeps_the_last_complete_one()
    {
        string run = Path.Combine(_dir, "full");
        string third = Path.GetFullPath(Path.Combine(run, Checkpoint.FileName(4)));
        string[] fourSteps = ["--steps", "4"];
        (int Code, string Out, string Err) r;
        using (AtomicFile.InjectFault(path => path == third ? AtomicFile.DiskFull(path) : null))
            r = CliRunner.InProcess(Train(run, fourSteps));
        r.OneError(3, third, "disk is full");
        Expect.NoTempFiles(run);
        Checkpoint.InDirectory(run).Select(Path.GetFileName).Should().Equal(Checkpoint.FileName(2), Checkpoint.FileName(0));
        TrainerState.FromJson(Checkpoint.Load(Checkpoint.InDirectory(run)[0]).State).Step.Should().Be(2);
        CliRunner.InProcess(Train(run, [.. fourSteps, "--resume"])).Code.Should().Be(0, "the run resumes from the last complete checkpoint");
    }

    [SkippableFact]
    public void A_really_full_disk_during_training_exits_3_with_the_checkpoints_complete()
    {
        Directory.CreateDirectory(_dir);
        using var tiny = BrokenFolder.Tiny(_dir, 96);
        string run = Path.Combine(tiny.Path, "run");
        var r = CliRunner.InProcess(Train(run, "--steps", "400", "--set", "checkpoint_every=1", "--set", "keep_checkpoints=1000"));
        r.OneError(3, tiny.Path);
        Expect.NoTempFiles(tiny.Path);
        Checkpoint.InDirectory(run).Should().NotBeEmpty();
        foreach (var file in Checkpoint.InDirectory(run)) Checkpoint.Load(file); // every file left is complete
    }

    [SkippableFact]
    public void Read_only_folders_give_exit_3_for_train_and_export_and_a_folder_is_no_model_file()
    {
        string run = Trained();
        using var readOnly = BrokenFolder.ReadOnly(_dir);
        CliRunner.InProcess(Train(Path.Combine(readOnly.Path, "run"))).OneError(3, readOnly.Path);
        CliRunner.InProcess("export", run, "--out", Path.Combine(readOnly.Path, "m.onnx")).Code.Should().Be(3);
        Directory.GetFileSystemEntries(readOnly.Path).Should().BeEmpty();
        CliRunner.InProcess("export", run, "--out", run).OneError(2, "is a folder");
        CliRunner.InProcess(Train("/dev/null")).OneError(2, "is a file");
        CliRunner.InProcess("export", run, "--out", "/dev/null").OneError(2, "/dev/null");
        Expect.NoTempFiles(run);
    }

    [Fact]
    public void A_diverging_run_ends_with_one_line_and_keeps_its_last_good_checkpoint()
    {
        string run = Path.Combine(_dir, "diverge");
        var r = CliRunner.InProcess(Train(run, "--steps", "50", "--set", "learning_rate=1e30"));
        r.OneError(2, "NaN/inf", "is kept");
        var kept = Checkpoint.LoadLatest(run);
        foreach (var (_, t) in kept.Tensors) float.IsFinite(t.abs().sum().item<float>()).Should().BeTrue();
    }

    [Fact]
    public void A_configuration_too_large_for_memory_is_refused_with_the_estimate()
    {
        foreach (var dry in new[] { true, false })
        {
            string run = Path.Combine(_dir, "huge");
            var r = CliRunner.InProcess(Train(run, ["--set", "maps=100000", .. dry ? new[] { "--dry-run" } : []]));
            r.OneError(2, "needs about", "parameters", "available");
            Directory.Exists(run).Should().BeFalse();
        }
    }

    [Fact]
    public void A_crafted_checkpoint_with_a_valid_checksum_and_an_impossible_header_is_refused()
    {
        string run = Trained();
        var ckpt = Checkpoint.Load(Checkpoint.InDirectory(run)[0]);
        string crafted = Path.Combine(_dir, "crafted.tckpt");
        new Checkpoint { Config = ckpt.Config with { Maps = -5 }, State = ckpt.State, Tensors = ckpt.Tensors }.Save(crafted);
        CliRunner.InProcess("export", crafted, "--out", Path.Combine(_dir, "m.onnx")).OneError(2, crafted, "configuration is invalid", "maps");
        new Checkpoint { Config = ckpt.Config with { Maps = 100_000 }, State = ckpt.State, Tensors = ckpt.Tensors }.Save(crafted);
        CliRunner.InProcess("export", crafted, "--out", Path.Combine(_dir, "m.onnx")).OneError(2, crafted, "describes about", "parameters but the file holds");

        // a negative dimension in a tensor header, checksum recomputed
        var bytes = File.ReadAllBytes(Checkpoint.InDirectory(run)[0]);
        var name = Encoding.UTF8.GetBytes("model/out_bias");
        int at = bytes.AsSpan().IndexOf(name) + name.Length + 4; // after the name: int32 rank, then int64 dims
        BitConverter.GetBytes(-3L).CopyTo(bytes, at);
        SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).CopyTo(bytes, bytes.Length - 32);
        File.WriteAllBytes(crafted, bytes);
        CliRunner.InProcess("export", crafted, "--out", Path.Combine(_dir, "m.onnx")).OneError(2, crafted, "impossible shape");
        File.Exists(Path.Combine(_dir, "m.onnx")).Should().BeFalse();
    }

    [Fact]
    public void Export_refuses_a_checkpoint_whose_logits_are_not_finite()
    {
        string run = Trained();
        var ckpt = Checkpoint.Load(Checkpoint.InDirectory(run)[0]);
        var tensors = ckpt.Tensors.ToDictionary();
        tensors["model/out_weight"] = torch.full_like(tensors["model/out_weight"], float.NaN);
        string nan = Path.Combine(_dir, "nan.tckpt");
        new Checkpoint { Config = ckpt.Config, State = ckpt.State, Tensors = tensors }.Save(nan);
        string onnx = Path.Combine(_dir, "nan.onnx");
        var r = CliRunner.InProcess("export", nan, "--out", onnx);
        r.OneError(2, "non-finite logits");
        File.Exists(onnx).Should().BeFalse();
    }
}
