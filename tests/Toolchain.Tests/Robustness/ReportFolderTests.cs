using System.Diagnostics;
using Toolchain.Evaluate;
using Toolchain.Suites;
using Toolchain.Tests.Evaluate;

namespace Toolchain.Tests.Robustness;

/// <summary>Issue #15, items 1 and 4: `report --out` never deletes what it did not write, keeps the previous report
/// until the new one is complete, and refuses a second process.</summary>
public class ReportFolderTests
{
    private static string Models(TempDir tmp, params string[] names)
    {
        foreach (var name in names) OracleModels.Save(OracleModels.Copy(trainLength: 6), tmp["models"], name + ".onnx");
        return tmp["models"];
    }

    private static (int Code, string Out, string Err) Report(string models, string output, params string[] more) =>
        CliRunner.InProcess(["report", "--models", models, "--suite", "quick", "--budget-minutes", "1", "--threads", "1", "--out", output, .. more]);

    [Fact]
    public void Report_refuses_a_folder_it_did_not_write_and_deletes_nothing()
    {
        using var tmp = new TempDir();
        string models = Models(tmp, "copy");
        string repo = tmp["repo"];
        Directory.CreateDirectory(Path.Combine(repo, ".git", "objects"));
        File.WriteAllText(Path.Combine(repo, ".git", "HEAD"), "ref: refs/heads/main\n");
        File.WriteAllText(Path.Combine(repo, "README.md"), "mine\n");
        var before = Expect.Snapshot(repo);

        Report(models, repo).OneError(2, "did not write", "choose another --out");
        Expect.Snapshot(repo).Should().Equal(before);
        Directory.GetFileSystemEntries(tmp.Path, ".repo*").Should().BeEmpty("nothing is created beside a refused folder");

        File.WriteAllText(tmp["file"], "x");
        Report(models, tmp["file"]).OneError(2, "is a file");
        File.ReadAllText(tmp["file"]).Should().Be("x");
    }

    [Fact]
    public void A_report_replaces_its_own_report_and_a_failed_one_keeps_the_previous()
    {
        using var tmp = new TempDir();
        string models = Models(tmp, "copy");
        string output = tmp["report"];
        Report(models, output).Code.Should().Be(0);
        File.Exists(Path.Combine(output, ReportFolder.Marker)).Should().BeTrue();
        File.WriteAllText(Path.Combine(output, "copy", "stale.txt"), "from the first report");

        Report(models, output).Code.Should().Be(0, "a folder marked as a report is replaced");
        File.Exists(Path.Combine(output, "copy", "stale.txt")).Should().BeFalse("the whole report is replaced");
        var previous = Expect.Snapshot(output);

        // every model fails: the previous report must survive
        File.Delete(Path.Combine(models, "copy.onnx"));
        File.WriteAllText(Path.Combine(models, "broken.onnx"), "not a model");
        var failed = Report(models, output);
        failed.Code.Should().Be(2);
        failed.Err.TrimEnd('\n').Split('\n')[^1].Should().StartWith("error: ").And.Contain("none of the 1 models could be graded");
        Expect.Snapshot(output).Should().Equal(previous);
        Directory.GetDirectories(tmp.Path, ".report.*").Should().BeEmpty("the staging folder of the failed report is removed");
    }

    [Fact]
    public void A_second_report_process_into_the_same_folder_is_refused_naming_the_holder()
    {
        using var tmp = new TempDir();
        string models = Models(tmp, "copy");
        using (FolderLock.TakeFile(tmp[".report.lock"], tmp["report"], "report"))
        {
            // a genuine second process: the lock is an OS lock, not a flag in this process
            var second = CliRunner.Process("report", "--models", models, "--suite", "quick", "--out", tmp["report"]);
            second.OneError(3, $"process {Environment.ProcessId}", "is writing this report");
        }
        Directory.Exists(tmp["report"]).Should().BeFalse();
        Report(models, tmp["report"]).Code.Should().Be(0, "the lock is released with its holder");
    }

    [Fact]
    public void Kill_9_while_a_report_is_written_keeps_the_previous_report_and_a_rerun_completes()
    {
        using var tmp = new TempDir();
        string models = Models(tmp, "a", "b", "c", "d");
        string output = tmp["report"];
        Report(models, output).Code.Should().Be(0);
        var previous = Expect.Snapshot(output);

        string dll = Path.Combine(AppContext.BaseDirectory, "toolchain.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { dll, "report", "--models", models, "--suite", "standard", "--budget-minutes", "2", "--out", output }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            // kill -9 once it is writing the staging folder (its first model graded or under way)
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)
                   && !Directory.EnumerateDirectories(tmp.Path, ".report.partial-*").Any(d => Directory.Exists(Path.Combine(d, "a"))))
                Thread.Sleep(20);
            p.HasExited.Should().BeFalse("the report must still be running when it is killed");
            p.Kill(entireProcessTree: true); // SIGKILL: no handler runs
            p.WaitForExit();
        }
        Expect.Snapshot(output).Should().Equal(previous, "a killed report leaves the previous one as it was");
        Directory.GetDirectories(tmp.Path, ".report.partial-*").Should().NotBeEmpty("the killed run's staging folder is left behind");

        Report(models, output).Code.Should().Be(0, "the lock died with the killed process");
        Directory.GetDirectories(tmp.Path, ".report.*").Should().BeEmpty("the rerun removes the killed run's staging folder");
        File.Exists(Path.Combine(output, "index.html")).Should().BeTrue();
    }
}
