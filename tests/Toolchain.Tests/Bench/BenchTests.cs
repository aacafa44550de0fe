using System.Text.Json;
using Toolchain.Cli.Bench;
using Toolchain.Train;
using TorchSharp;

namespace Toolchain.Tests.Bench;

[Collection("torch")]
public class BenchTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-bench-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Smoke_bench_writes_the_schema_with_finite_positive_ratios()
    {
        var (code, stdout, stderr) = CliRunner.InProcess("bench", "--smoke", "--out", _dir);
        code.Should().Be(0, stderr);
        stdout.Should().Contain("## Targets").And.MatchRegex("(PASS|MISS)  ort_vs_torch|(PASS|MISS)  loop_vs_unrolled");
        File.Exists(Path.Combine(_dir, "bench.md")).Should().BeTrue();
        Directory.GetFiles(_dir, "*.tmp").Should().BeEmpty("the files are written atomically");

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "bench.json")));
        var root = doc.RootElement;
        foreach (var key in new[] { "mode", "machine", "peak", "inference", "loop_vs_unrolled", "ort_settings", "growth", "training", "targets" })
            root.TryGetProperty(key, out _).Should().BeTrue($"bench.json has '{key}'");
        root.GetProperty("mode").GetString().Should().Be("smoke");
        foreach (var key in new[] { "cpu", "logical_cores", "os", "onnx_runtime", "torch_sharp" })
            root.GetProperty("machine").TryGetProperty(key, out _).Should().BeTrue($"machine has '{key}'");
        Positive(root.GetProperty("peak").GetProperty("peak_gflops"));

        var inference = root.GetProperty("inference").EnumerateArray().ToList();
        inference.Should().HaveCount(4);
        foreach (var row in inference)
            foreach (var key in new[] { "ratio", "ort_seconds", "torch_seconds", "ort_tokens_per_second", "ort_gflops", "ort_fraction_of_peak", "conv_gflop_per_run" })
                Positive(row.GetProperty(key));
        foreach (var row in root.GetProperty("loop_vs_unrolled").EnumerateArray())
        {
            Positive(row.GetProperty("ratio"));
            row.GetProperty("loop_bytes").GetInt64().Should().BePositive();
            row.GetProperty("unrolled_nodes").GetInt32().Should().BeGreaterThan(row.GetProperty("loop_nodes").GetInt32());
        }
        foreach (var row in root.GetProperty("ort_settings").EnumerateArray()) Positive(row.GetProperty("relative_to_default"));
        var growth = root.GetProperty("growth");
        growth.GetProperty("points").GetArrayLength().Should().Be(3);
        double.IsFinite(growth.GetProperty("time_exponent").GetDouble()).Should().BeTrue();
        foreach (var row in root.GetProperty("training").EnumerateArray())
        {
            Positive(row.GetProperty("examples_per_second"));
            row.GetProperty("working_set_long_bytes").GetInt64().Should().BePositive();
            if (OperatingSystem.IsLinux()) row.GetProperty("in_use_long_bytes").GetInt64().Should().BePositive("glibc's mallinfo2 is read on Linux");
        }
        root.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("name").GetString())
            .Should().Contain(["loop_vs_unrolled", "fraction_of_peak", "memory_linear", "training_fraction_of_peak", "training_memory_dngpu", "training_memory_ngpu"]);
        TrainingSpeedIsMeasured(root);
    }

    /// <summary>dngpu: the reference step and one bin, each as the current and the baseline path; ngpu: one row.</summary>
    private static void TrainingSpeedIsMeasured(JsonElement root)
    {
        var speed = root.GetProperty("training_speed").EnumerateArray().ToList();
        speed.Select(r => (r.GetProperty("model").GetString(), r.GetProperty("step").GetString()!.Split(' ')[0], r.GetProperty("path").GetString()!.Split(' ')[0]))
            .Should().Equal(("dngpu m=6", "reference", "fused"), ("dngpu m=6", "reference", "channels-last"), ("dngpu m=6", "one", "fused"),
                ("dngpu m=6", "one", "channels-last"), ("ngpu m=4", "one", "current"));
        foreach (var row in speed)
            foreach (var key in new[] { "seconds_per_step", "examples_per_second", "gflop_per_step", "gflops", "fraction_of_peak" })
                Positive(row.GetProperty(key));
        speed[0].GetProperty("bins").GetInt32().Should().Be(2, "size 4 of badd: the reference's length 8, then the training length 9");
        var profile = root.GetProperty("training_profile");
        var parts = profile.GetProperty("rows").EnumerateArray().ToList();
        parts.Should().HaveCount(6);
        foreach (var part in parts.Where(p => !p.GetProperty("part").GetString()!.StartsWith("elementwise", StringComparison.Ordinal))) Positive(part.GetProperty("milliseconds"));
        parts[^1].GetProperty("milliseconds").GetDouble().Should().BeApproximately(profile.GetProperty("total_milliseconds").GetDouble(), 1e-9);
        var seeds = root.GetProperty("seed_scaling").EnumerateArray().ToList();
        seeds.Select(r => r.GetProperty("seeds").GetInt32()).Should().Equal(1, 2);
        foreach (var row in seeds)
            foreach (var key in new[] { "packed_seconds_per_step", "separate_seconds_per_step", "packed_over_separate", "packed_over_one_seed" })
                Positive(row.GetProperty(key));
        root.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("name").GetString()).Should().Contain("seed_packing_cpu");
    }

    [Fact]
    public void The_training_section_runs_alone_into_its_own_files()
    {
        var (code, stdout, stderr) = CliRunner.InProcess("bench", "--smoke", "--section", "training", "--out", _dir);
        code.Should().Be(0, stderr);
        stdout.Should().Contain("training_fraction_of_peak").And.Contain("## Where a training step's time goes");
        File.Exists(Path.Combine(_dir, "bench.json")).Should().BeFalse("a section does not replace the whole bench's report");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "bench-training.json")));
        doc.RootElement.GetProperty("inference").GetArrayLength().Should().Be(0);
        doc.RootElement.GetProperty("section").GetString().Should().Be("training");
        TrainingSpeedIsMeasured(doc.RootElement);
        doc.RootElement.GetProperty("training").GetArrayLength().Should().Be(2, "the section has training's memory rows");
        CliRunner.InProcess("bench", "--smoke", "--section", "inference", "--out", _dir).Code.Should().Be(2);
    }

    private static void Positive(JsonElement e)
    {
        e.ValueKind.Should().Be(JsonValueKind.Number, "a ratio is a finite number (NaN/inf are written as strings)");
        double v = e.GetDouble();
        double.IsFinite(v).Should().BeTrue();
        v.Should().BePositive();
    }

    [Theory]
    [InlineData("ngpu", 24, 100)]
    [InlineData("dngpu", 48, 200)]
    public void Bench_models_keep_their_state_off_subnormal_floats(string arch, int maps, int size)
    {
        // an untrained model's state decays into subnormals over a long input, which some CPUs compute ~30x slower
        var task = Toolchain.Suites.TaskRegistry.Get("badd");
        (long Subnormal, float SmallestNonZero) States(bool hold)
        {
            using var model = Toolchain.Cli.Bench.Bench.CreateModel(new BenchModel(arch, maps), BenchOptions.Full, task);
            using var _ = torch.no_grad();
            // the same model as initialized: both architectures start their candidate biases at 0
            if (!hold) model.named_parameters().Single(p => p.name == "cand_bias").parameter.zero_();
            var ex = task.Generate(size, "random", new Toolchain.Suites.Rng(3));
            using var tokens = torch.tensor(ex.Input.Select(x => (long)x).ToArray(), [1, ex.Input.Length]);
            var values = model.Run(tokens, keepStates: true).States!.contiguous().data<float>().ToArray();
            return (values.LongCount(float.IsSubnormal), values.Where(x => x != 0).Min(Math.Abs));
        }
        var untrained = States(hold: false);
        var held = States(hold: true);
        // on the way there (ngpu m=24 at n = 401: 37% of the state values subnormal; dngpu m=48: 1e-25)
        untrained.SmallestNonZero.Should().BeLessThan(1e-20f);
        held.Subnormal.Should().Be(0);
        held.SmallestNonZero.Should().BeGreaterThan(1e-12f);
    }

    [Fact]
    public void Memory_in_use_counts_a_kept_tensor_and_not_a_freed_one()
    {
        if (!OperatingSystem.IsLinux()) return;
        // process-wide, and other test classes run beside this one: a tensor far larger than what they hold
        const long size = 512L << 20;
        long? before = HeapSettings.NativeBytesInUse();
        before.Should().BePositive();
        var kept = torch.ones(size / 4, dtype: torch.float32);
        long? held = HeapSettings.NativeBytesInUse();
        kept.Dispose();
        long? after = HeapSettings.NativeBytesInUse();
        (held - before).Should().BeInRange(size - (64L << 20), size + (64L << 20), "the tensor's storage is in use while it lives");
        (after - before).Should().BeInRange(-(64L << 20), 64L << 20, "and not after it is freed");
    }

    [Fact]
    public void Training_memory_is_judged_by_memory_in_use_not_the_working_set()
    {
        TrainRow Row(long wsShort, long wsLong, long liveShort, long liveLong, long? useShort, long? useLong) =>
            new("ngpu m=24", "ngpu", 24, 20, 41, 32, 20, 200, 57, 0.56, wsShort, wsLong, (double)wsLong / wsShort, liveShort, liveLong, useShort, useLong);
        const long MiB = 1 << 20;
        // the ngpu row of 2026-11-30: the heap settling (working set 1.28x), nothing more in use: no leak
        var settling = Toolchain.Cli.Bench.Bench.TrainingMemoryTarget(Row(1745 * MiB, 2234 * MiB, 2359, 2359, 900 * MiB, 900 * MiB));
        settling.Pass.Should().BeTrue();
        settling.Detail.Should().Contain("1.28x").And.Contain("+0 KiB");
        // one 0.5 MiB state kept every step for 180 steps: a leak, whatever the working set does
        Toolchain.Cli.Bench.Bench.TrainingMemoryTarget(Row(2000 * MiB, 2000 * MiB, 2359, 2359, 900 * MiB, 990 * MiB)).Pass.Should().BeFalse();
        Toolchain.Cli.Bench.Bench.TrainingMemoryTarget(Row(2000 * MiB, 2000 * MiB, 2359, 2359, 900 * MiB, 900 * MiB + Toolchain.Cli.Bench.Bench.InUseSlackBytes + 1)).Pass.Should().BeFalse();
        Toolchain.Cli.Bench.Bench.TrainingMemoryTarget(Row(2000 * MiB, 2000 * MiB, 2359, 2360, 900 * MiB, 900 * MiB)).Pass.Should().BeFalse("a tensor more is a leak");
        // where the C heap cannot be read, the working set decides
        var unread = Toolchain.Cli.Bench.Bench.TrainingMemoryTarget(Row(1745 * MiB, 2234 * MiB, 2359, 2359, null, null));
        unread.Pass.Should().BeFalse();
        unread.Goal.Should().Contain("not readable");
    }

    [Fact]
    public void Flop_count_follows_the_formula()
    {
        var d = RunConfig.Preset("dngpu-port", "dngpu", "badd") with { Maps = 48 };
        // (2m*m*k + m*m*k) * n MACs per step, n steps, 2 FLOPs per MAC
        Toolchain.Cli.Bench.Bench.ConvFlops(d, 41, 2).Should().Be(2.0 * (2 * 48 * 48 * 3 + 48 * 48 * 3) * 41 * 41 * 2);
        var g = RunConfig.Preset("ngpu-paper", "ngpu", "badd");
        // l * (2m*m*kh*kw + m*m*kh*kw) * n * w MACs per step
        Toolchain.Cli.Bench.Bench.ConvFlops(g, 41, 1).Should().Be(2.0 * 2 * (2 * 24 * 24 * 9 + 24 * 24 * 9) * 41 * 4 * 41);
        BenchMeasure.LogLogExponent([10, 20, 40], [100, 400, 1600]).Should().BeApproximately(2, 1e-9);
        // a training step: 3 x the forward FLOPs of each bin it trains (dngpu-ref: the reference's nine lengths)
        var reference = BenchTraining.Config(new TrainSpeedModel("dngpu", 48, "badd"), "reference", 20, 32, 48);
        BenchTraining.StepFlops(reference, Toolchain.Suites.TaskRegistry.Get("badd"))
            .Should().Be(3 * new[] { 8, 12, 16, 20, 25, 28, 31, 36, 41 }.Sum(n => Toolchain.Cli.Bench.Bench.ConvFlops(reference, n, 32)));
        var oneBin = BenchTraining.Config(new TrainSpeedModel("dngpu", 48, "badd"), "one bin", 20, 32, 48);
        BenchTraining.StepFlops(oneBin, Toolchain.Suites.TaskRegistry.Get("badd")).Should().Be(3 * Toolchain.Cli.Bench.Bench.ConvFlops(oneBin, 41, 32));
    }
}
