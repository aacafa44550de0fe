using System.Diagnostics;
using System.Text.RegularExpressions;
using Toolchain.Tests.Evaluate;
using Toolchain.Tests.Zoo;

namespace Toolchain.Tests.Bench;

/// <summary>tools/gpu-all.sh, the one run that measures the GPU, runs end to end on the CPU path (GPU_DRY_RUN=1):
/// every section of gpu.md is there and the two providers' verdicts were compared example for example.</summary>
public class GpuScriptTests
{
    /// <summary>The full path of a program on PATH, or null.</summary>
    internal static string? OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    [SkippableFact]
    public void The_gpu_measurement_runs_on_the_cpu_path_and_writes_every_section_of_gpu_md()
    {
        string? bash = OnPath("bash");
        Skip.If(bash is null || OperatingSystem.IsWindows(), "no bash on PATH (or Windows): the GPU scripts are bash scripts for Linux");
        Skip.If(OnPath("python3") is null, "no python3 on PATH: tools/gpu-report.py writes the reports");
        string root = ZooTests.RepoRoot();
        using var tmp = new TempDir();

        // the command line built for the tests, as an executable (the scripts run TOOLCHAIN like the published build)
        string dll = Path.Combine(AppContext.BaseDirectory, "toolchain.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        string toolchain = tmp["toolchain"];
        File.WriteAllText(toolchain, $"#!/bin/sh\nexec \"{dotnet}\" \"{dll}\" \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(toolchain, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var psi = new ProcessStartInfo(bash!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = root };
        psi.ArgumentList.Add(Path.Combine(root, "tools", "gpu-all.sh"));
        // the scripts' settings come from the environment: none of the caller's may leak in
        string[] settings = ["PROVIDER", "DEVICE", "LEVELS", "SUITE", "BUDGET_MINUTES", "CHECK_", "LONG_", "TRAIN_", "PEAK_GFLOPS", "GPU_", "OUT"];
        foreach (var key in psi.Environment.Keys.Where(k => settings.Any(s => k.StartsWith(s, StringComparison.Ordinal))).ToList())
            psi.Environment.Remove(key);
        psi.Environment["GPU_DRY_RUN"] = "1";
        psi.Environment["TOOLCHAIN"] = toolchain;
        psi.Environment["GPU_OUT"] = tmp["out"];
        psi.Environment["GPU_WORK"] = tmp["work"];
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(240_000)) { p.Kill(true); throw new TimeoutException("gpu-all.sh did not finish in 240 s"); }
        string log = stdout.Result + stderr.Result;
        // 1 when a goal is missed: the training goal (16 packed seeds >= 8x one seed) means nothing at the dry run's sizes
        p.ExitCode.Should().BeOneOf([0, 1], log);

        // only three flat files come back to the caller (a device machine returns few files)
        Directory.GetFileSystemEntries(tmp["out"]).Select(Path.GetFileName).Should().BeEquivalentTo("gpu.md", "gpu-raw.tar.gz", "gpu-all.log");
        string md = File.ReadAllText(tmp["out/gpu.md"]);
        md.Should().StartWith("# GPU measurement (issue 17, part 3): CPU dry run, no GPU figures");
        foreach (var section in new[] { "## Machine", "## Summary", "## ONNX Runtime cpu against cpu", "## dngpu-badd.onnx at 10x on cpu",
                     "## Training on cpu: one seed against 4 packed seeds", "## Not measured", "## Raw files" })
            md.Should().Contain("\n" + section, section);

        // the verdict comparison ran on every graded example and found them identical
        md.Should().MatchRegex(@"- \*\*PASS\*\* dngpu-badd: verdicts: [1-9]\d* examples in both files; 0 differ");
        string check = tmp["work/check/dngpu-badd"];
        File.ReadAllBytes(Path.Combine(check, "A-cpu", "verdicts.jsonl")).Should().Equal(File.ReadAllBytes(Path.Combine(check, "B-cpu", "verdicts.jsonl")));
        md.Should().Contain("- provider comparison: **PASS**").And.Contain("- long input timing: **PASS**").And.MatchRegex(@"- training speed: \*\*(PASS|MISS)\*\*");
        if (p.ExitCode == 1) md.Should().Contain("- training speed: **MISS**", "a missed training goal is the only failure a dry run may show");

        // the long input: every way measured, with GFLOP/s and a fraction of a peak, and the same verdict
        foreach (var way in new[] { "loop", "chunk16", "iobinding" })
            md.Should().MatchRegex($@"\| {way} \| [^|]+ \| \d[\d,]*\.\d{{3}} \| \d[\d,.]* \| \d+\.\d% \|", way);
        md.Should().Contain("Verdicts of the ways: the same.").And.Contain("Fastest on cpu: **");

        // training: both runs measured, a verdict on the goal, and nothing left unmeasured
        md.Should().MatchRegex(@"\| one seed \| 1 \| 5 \| \d[\d,]*\.\d \|");
        md.Should().MatchRegex(@"\*\*(PASS|MISS)\*\*: 4 packed seeds train \d+\.\d\dx the examples/s of one seed \(goal: >= 8x\)");
        md.Should().Contain("- nothing: every piece ran.");
        Regex.Matches(md, @"\*\*not measured\*\*").Should().BeEmpty();
    }
}
