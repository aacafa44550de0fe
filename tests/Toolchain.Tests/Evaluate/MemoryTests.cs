using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Cli.Commands;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Tests.Evaluate;

/// <summary>Running out of memory: sub-batches are halved, a length where one example cannot be allocated is
/// not graded (with every longer one) and the run goes on; the budget's memory estimate follows the probed
/// growth. Allocation failures are simulated through the runner's test hooks, not by allocating 100 GB.</summary>
public class MemoryTests
{
    /// <summary>What ONNX Runtime's CPU arena throws when an allocation fails (the exception's constructor is internal).</summary>
    internal static OnnxRuntimeException OrtError(string message)
    {
        var ctor = typeof(OnnxRuntimeException).GetConstructors(BindingFlags.NonPublic | BindingFlags.Instance)
            .Single(c => c.GetParameters() is { Length: 2 } p && p[0].ParameterType.IsEnum && p[1].ParameterType == typeof(string));
        var fail = Enum.Parse(ctor.GetParameters()[0].ParameterType, "Fail");
        return (OnnxRuntimeException)ctor.Invoke([fail, message]);
    }

    internal static OnnxRuntimeException AllocationFailure(long bytes) => OrtError(
        "Non-zero status code returned while running FusedMatMul node. Name:'/layers.0/attn/MatMul' Status Message: " +
        "/onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) " +
        $"Failed to allocate memory for requested buffer of size {bytes}\n");

    private static SuiteDefinition Suite(params double[] multiples) => new("oom", "levels for the out-of-memory tests", 5,
        multiples.Select(m => new SuiteLevel($"{m}x", m, null, new Dictionary<string, int> { ["random"] = 16, ["hard"] = 2 }, false)).ToList(), []);

    [Fact]
    public void Allocation_failures_halve_the_batch_and_a_length_where_one_example_cannot_fit_is_skipped_with_every_longer_one()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var log = new List<string>();
        var (info, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu, Log = log.Add });
        var batches = new List<(int Batch, int Length)>();
        Results results;
        using (runner)
        {
            // like an attention model on a small machine: more than 15,000 tokens in one run cannot be allocated
            runner.BeforeRun = (b, length) =>
            {
                batches.Add((b, length));
                if ((long)b * length > 15_000) throw AllocationFailure(4L * b * length * length);
            };
            results = Evaluator.Run(info, runner, new EvalOptions
            {
                Suite = Suite(1, 100, 1000, 2000), OutDir = tmp["out"], BreakPoint = true, Log = log.Add,
            });
        }

        // 100x (length 2,000): batches of 16 and 8 do not fit; halved down to 4 (and the later unit starts there), every example graded
        results.Levels.Select(l => l.Status).Should().Equal("complete", "complete", "skipped", "skipped");
        var hundred = results.Levels[1];
        hundred.Total!.Samples.Should().Be(hundred.Total.Planned);
        hundred.Total.SequenceAccuracy.Should().Be(1);
        batches.Where(x => x.Length == 2_000).Select(x => x.Batch).Distinct().Should().Equal(16, 8, 4, 2);
        log.Should().Contain(l => l.StartsWith("notice: out of memory on a batch of 8 x 2,000 tokens", StringComparison.Ordinal) && l.EndsWith("retrying with batches of 4", StringComparison.Ordinal));

        // 1000x (length 20,000): one example does not fit; 2000x is longer and is not tried at all
        results.Levels[2].Note.Should().Be("out of memory at length 20,000 (batch 1)");
        results.Levels[2].Total!.Samples.Should().Be(0);
        results.Levels[3].Note.Should().Be("longer than length 20,000, which ran out of memory (batch 1)");
        batches.Should().NotContain(x => x.Length == 40_000);
        results.Budget.Trims.Should().Contain("level 1000x: skipped: out of memory at length 20,000 (batch 1)");

        // the break point stops where memory ran out, and says so
        results.BreakPoint!.Verdict.Should().Be("copy/oracle: exact up to 10,240 (x512), no failure found (stopped: out of memory at length 20,480 (batch 1))");
        results.BreakPoint.StoppedBy.Should().Be("out of memory at length 20,480 (batch 1)");

        // and the reports are written and show it like other skipped levels
        File.ReadAllText(tmp["out/summary.md"]).Should().Contain("| not graded: out of memory at length 20,000 (batch 1) |").And.Contain("| 0 of ").And.NotContain("skipped: skipped");
        File.ReadAllText(tmp["out/index.html"]).Should().Contain("not graded: out of memory at length 20,000 (batch 1)").And.NotContain("skipped: skipped");
        EvalCommand.Table(results).Should().Contain(l => l.StartsWith("1000x", StringComparison.Ordinal) && l.Contains("not graded") && l.EndsWith("not graded: out of memory at length 20,000 (batch 1)", StringComparison.Ordinal));
        var units = UnitLog.Load(tmp["out/units.jsonl"]);
        units.Where(u => u.Length >= 20_000).Should().OnlyContain(u => u.Skipped != null && u.Samples == 0);
        units.Where(u => u.Length < 20_000).Should().OnlyContain(u => u.Skipped == null);

        // a resumed run keeps the verdicts instead of running out of memory again
        var (info2, runner2) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner2)
        {
            runner2.BeforeRun = (_, _) => throw new InvalidOperationException("nothing is left to run");
            var resumed = Evaluator.Run(info2, runner2, new EvalOptions { Suite = Suite(1, 100, 1000, 2000), OutDir = tmp["out"], Resume = true, BreakPoint = true });
            resumed.Levels.Select(l => (l.Status, l.Note)).Should().Equal(results.Levels.Select(l => (l.Status, l.Note)));
        }
    }

    [Fact]
    public void Other_runtime_failures_stay_a_clear_error_and_only_allocation_messages_count_as_out_of_memory()
    {
        OnnxRunner.IsAllocationFailure(AllocationFailure(25_601_280_064).Message).Should().BeTrue();
        OnnxRunner.IsAllocationFailure("[ErrorCode:RuntimeException] std::bad_alloc").Should().BeTrue();
        OnnxRunner.IsAllocationFailure("CUDA failure 2: out of memory ; GPU=0").Should().BeTrue();
        OnnxRunner.IsAllocationFailure("[ErrorCode:Fail] Non-zero status code returned while running Reshape node. The input tensor cannot be reshaped to the requested shape").Should().BeFalse();

        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var (info, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner)
        {
            runner.BeforeRun = (b, length) =>
            {
                if (length >= 2_000) throw OrtError("Non-zero status code returned while running Reshape node. Name:'/Reshape' Status Message: The input tensor cannot be reshaped to the requested shape.");
            };
            var run = () => Evaluator.Run(info, runner, new EvalOptions { Suite = Suite(1, 100), OutDir = tmp["out"] });
            run.Should().Throw<EvaluationException>()
                .Where(e => !(e is ModelOutOfMemoryException))
                .WithMessage("model '*copy.onnx' failed on a batch of * x 2000 tokens: [ErrorCode:Fail] Non-zero status code returned while running Reshape node*");
        }
    }

    [Fact]
    public void The_budget_skips_a_level_up_front_when_the_probed_memory_growth_says_one_example_cannot_fit()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var log = new List<string>();
        var (info, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        long limit = 4L << 30;
        // the static guess is linear in the length and lets length 20,000 through
        MemoryGuard.Fits(MemoryGuard.BytesPerExample(20_000, info.Task.Vocab.Count, info.ActivationBytesPerToken), limit).Should().BeTrue();
        var lengths = new HashSet<int>();
        var batches2000 = new List<int>();
        Results results;
        using (runner)
        {
            runner.PeakBytesOverride = length => 50L * length * length; // attention-like: 50 bytes x length^2
            runner.BeforeRun = (b, length) => { lengths.Add(length); if (length == 2_000) batches2000.Add(b); };
            results = Evaluator.Run(info, runner, new EvalOptions
            {
                Suite = SuiteFile.LoadBuiltIn("standard"), Levels = ["1x", "100x", "1000x"], OutDir = tmp["out"],
                BudgetMinutes = 10, MemoryLimitBytes = limit, Log = log.Add,
            });
        }
        log.Should().Contain("memory: probe at lengths 1,280 and 2,560 peaks at 78.1 MiB and 312.5 MiB per example, memory ~ length^2");
        results.Levels.Select(l => l.Status).Should().Equal("complete", "complete", "skipped");
        results.Levels[2].Note.Should().Be("one example at length 20,000 needs about 18.63 GiB (memory grows ~ length^2, probed at lengths 1,280 and 2,560), over the limit of 80% of the 4 GiB available (3.2 GiB)");
        lengths.Should().Contain(2_000).And.NotContain(20_000, "the 1000x level never starts");
        batches2000.Should().NotBeEmpty().And.OnlyContain(b => b >= 1 && b <= 17, "0.8 x 4 GiB / 200 MB per example");
        File.ReadAllText(tmp["out/summary.md"]).Should().Contain("needs about 18.63 GiB (memory grows ~ length^2");

        var plan = Json.Deserialize<RunPlan>(File.ReadAllText(tmp["out/plan.json"]), "plan.json");
        plan.Memory!.Exponent.Should().BeApproximately(2, 1e-9);
        plan.Memory.BytesPerExample(20_000).Should().BeCloseTo(50L * 20_000 * 20_000, 1_000);
    }

    [Fact]
    public void Batches_are_sized_from_the_memory_estimate_because_Linux_kills_instead_of_failing_an_allocation()
    {
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var (info, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        var batches = new List<int>();
        using (runner)
        {
            runner.PeakBytesOverride = length => 50L * length * length; // 200 MB per example at length 2,000
            runner.BeforeRun = (b, length) => { if (length == 2_000) batches.Add(b); };
            runner.BatchSize(2_000).Should().Be(131, "what --batch-tokens alone allows");
            Evaluator.Run(info, runner, new EvalOptions
            {
                Suite = SuiteFile.LoadBuiltIn("standard"), Levels = ["100x", "1000x"], OutDir = tmp["out"], // 1000x lets the probe reach measurable peaks
                BudgetMinutes = 10, MemoryLimitBytes = 1_250_000_000,
            });
        }
        // 0.8 x 1.25 GB / 200 MB = 5 examples at once: the 16 random samples run as 5, 5, 5, 1
        batches.Should().OnlyContain(b => b >= 1 && b <= 5).And.Contain(5);
    }

    [Fact]
    public void The_memory_probe_keeps_the_linear_guess_when_growth_is_too_small_to_measure_and_fits_linear_growth()
    {
        var task = TaskRegistry.Get("copy");
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.Copy(trainLength: 20), tmp.Path, "copy.onnx");
        var (_, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner)
        {
            runner.PeakBytesOverride = length => 1000L + length; // a few KB: noise, not growth
            var m = MemoryModel.Probe(runner, task, 20, 5_000, 100, long.MaxValue, 1);
            m.Probed.Should().BeFalse();
            m.BytesPerExample(20_000).Should().Be(2_000_000);

            runner.PeakBytesOverride = length => 30_000L * length; // linear and large
            m = MemoryModel.Probe(runner, task, 20, 5_000, 100, long.MaxValue, 1);
            m.Probed.Should().BeTrue();
            (m.PreviousLength, m.ProbeLength).Should().Be((1_280, 2_560));
            m.Exponent.Should().BeApproximately(1, 1e-9);
            m.BytesPerExample(20_000).Should().BeCloseTo(600_000_000, 10);
            // a probed estimate skips when it is over what the run may use (0.8 of what is available): no slack,
            // because on Linux an underestimate ends in a kernel OOM kill, not in an allocation failure
            m.Fits(20_000, 800_000_000).Should().BeTrue();
            m.Fits(20_000, 700_000_000).Should().BeFalse();
            // and batches are sized to fit: 0.8 * 2.4 GB / 0.6 GB per example = 3 examples at once
            m.MaxBatch(20_000, 2_400_000_000).Should().Be(3);
            m.MaxBatch(20_000, 100_000_000).Should().Be(1);

            // a probe that itself runs out of memory stops there; peaks under the usual floor are fitted anyway then
            // (an estimate that errs high skips a level; the linear guess would let the kernel kill the process)
            var log = new List<string>();
            runner.PeakBytesOverride = length => 100L * length * length;
            runner.BeforeRun = (_, length) => { if (length > 640) throw AllocationFailure(1L << 40); };
            m = MemoryModel.Probe(runner, task, 20, 100_000, 100, long.MaxValue, 1, log.Add);
            m.Probed.Should().BeTrue();
            m.Exponent.Should().BeApproximately(2, 1e-9);
            (m.PreviousLength, m.ProbeLength).Should().Be((320, 640));
            log.Should().ContainSingle().Which.Should().EndWith("(stopped: out of memory at length 1,280 (batch 1); small peaks, the estimate may err high)");

            // peaks too small even for that keep the linear guess
            log.Clear();
            runner.PeakBytesOverride = length => 10L * length * length; // 4 MiB only at length 640
            m = MemoryModel.Probe(runner, task, 20, 100_000, 100, long.MaxValue, 1, log.Add);
            m.Probed.Should().BeFalse();
            log.Should().ContainSingle().Which.Should().EndWith("estimate linear in the length");
        }
    }
}

/// <summary>Measures this process's real peak memory, so it runs alone.</summary>
[CollectionDefinition("process memory", DisableParallelization = true)]
public class ProcessMemoryCollection;

[Collection("process memory")]
public class RealMemoryProbeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void The_real_probe_sees_quadratic_growth_in_a_model_that_builds_a_length_by_length_matrix()
    {
        if (!OperatingSystem.IsLinux() || !ProcessMemory.ResetPeak()) return; // nothing to measure with
        var task = TaskRegistry.Get("copy");
        using var tmp = new TempDir();
        string model = OracleModels.Save(OracleModels.QuadraticCopy(), tmp.Path, "quadratic.onnx");
        var (_, runner) = ModelIntake.Open(model, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu, Threads = 1 });
        using (runner)
        {
            var log = new List<string>();
            var m = MemoryModel.Probe(runner, task, 20, 20_000, 100, 64L << 30, 1, log.Add, maxProbeSeconds: 20); // time is not what this test is about: a loaded machine must not stop the probe early
            foreach (var line in log) output.WriteLine(line);
            m.Probed.Should().BeTrue(string.Join("\n", log));
            m.Probed.Should().BeTrue();
            m.Exponent.Should().BeInRange(1.6, 2.4);
            // a 20,000 x 20,000 float matrix is 1.6 GB
            m.BytesPerExample(20_000).Should().BeGreaterThan(1_000_000_000L);
        }
    }
}
