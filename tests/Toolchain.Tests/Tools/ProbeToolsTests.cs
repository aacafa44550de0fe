using System.Diagnostics;
using Toolchain.Tests.Evaluate;
using Toolchain.Tests.Zoo;

namespace Toolchain.Tests.Tools;

/// <summary>tools/experiments/probe_plot.py and probe-table.py on a made-up run: every series is in the legend,
/// a step that was never probed has no point, the dropout-on figures appear only where a probe measured them,
/// and a folder without metrics is one error line.</summary>
public class ProbeToolsTests
{
    private static string? OnPath(string program) => Toolchain.Tests.Bench.GpuScriptTests.OnPath(program);

    private static (int Code, string Out, string Err) Python(params string[] args)
    {
        var psi = new ProcessStartInfo(OnPath("python3")!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException(string.Join(" ", args)); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>A training run folder as `toolchain train` leaves it: config.json and metrics.jsonl.</summary>
    private static string MadeUpRun(string folder, string config, string[] metrics)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        File.WriteAllLines(Path.Combine(folder, "metrics.jsonl"), metrics);
        return folder;
    }

    [SkippableFact]
    public void The_probe_plot_and_table_show_both_modes_where_measured_and_no_point_where_nothing_was()
    {
        Skip.If(OnPath("python3") is null, "no python3 on PATH");
        string tools = Path.Combine(ZooTests.RepoRoot(), "tools", "experiments");
        using var tmp = new TempDir();
        string run = MadeUpRun(tmp["run-a"], "{\"train_length\": 20}",
        [
            "{\"step\": 100, \"size\": 20, \"loss\": 0.5, \"symbol_accuracy\": 0.8, \"sequence_accuracy\": 0.25}",
            "{\"step\": 200, \"size\": 20, \"loss\": 0.4, \"symbol_accuracy\": 0.9, \"sequence_accuracy\": 0.75}",
            "{\"step\":200,\"probe\":{\"20\":{\"sequence_accuracy\":0.5,\"symbol_accuracy\":0.9,\"samples\":32},\"40\":{\"sequence_accuracy\":0,\"symbol_accuracy\":0.8,\"samples\":32}}}",
            "{\"step\":600,\"probe\":{\"20\":{\"sequence_accuracy\":0.03125,\"symbol_accuracy\":0.9,\"samples\":32,\"dropout_sequence_accuracy\":0.9375,\"dropout_symbol_accuracy\":0.99}}}",
        ]);
        string svg = tmp["probes.svg"];
        var plot = Python(Path.Combine(tools, "probe_plot.py"), "--out", svg, run);
        plot.Code.Should().Be(0, plot.Err);
        string text = File.ReadAllText(svg);
        foreach (var label in new[] { "run-a: training batch, size 20, dropout on", "run-a: probe size 20 (1x), inference", "run-a: probe size 20 (1x), dropout on", "run-a: probe size 40 (2x), inference" })
            text.Should().Contain(label.Split(' ')[0]).And.Contain(label.Split(", ")[^1]);
        // the 1x inference series has the two probed steps and nothing at the unprobed step 400
        System.Text.RegularExpressions.Regex.Matches(text, "<circle ").Count.Should().Be(3, "two probes at 1x and one at 2x");
        System.Text.RegularExpressions.Regex.Matches(text, "<rect x=\"[^\"]+\" y=\"[^\"]+\" width=\"5\"").Count.Should().Be(1, "dropout on was measured once");
        File.Exists(svg + ".tmp").Should().BeFalse();

        var table = Python(Path.Combine(tools, "probe-table.py"), run);
        table.Code.Should().Be(0, table.Err);
        table.Out.Should().Contain("| run-a | 200 | 600 | 3% (90.0%), dropout on 94% | - | 0% (200) |");

        var missing = Python(Path.Combine(tools, "probe_plot.py"), "--out", svg, tmp["nothing"]);
        missing.Code.Should().Be(2);
        missing.Err.Trim().Should().StartWith("error: ").And.Contain("metrics.jsonl").And.NotContain("Traceback");
    }

    [SkippableFact]
    public void The_iteration_figure_puts_our_length_401_probes_beside_the_digitized_reference()
    {
        Skip.If(OnPath("python3") is null, "no python3 on PATH");
        string tool = Path.Combine(ZooTests.RepoRoot(), "tools", "experiments", "iteration_figure.py");
        using var tmp = new TempDir();
        string reference = tmp["reference.csv"];
        File.WriteAllLines(reference, ["# digitized", "step,dngpu_symbol_accuracy_pct,ngpu_symbol_accuracy_pct", "180,50.0,49.0", "1010,95.5,", "1990,99.9,50.5"]);
        string run = MadeUpRun(tmp["bmul-a"], "{\"task\": \"bmul\", \"train_length\": 20}",
        [
            "{\"step\": 100, \"size\": 20, \"loss\": 0.5, \"symbol_accuracy\": 0.6, \"sequence_accuracy\": 0}",
            "{\"step\":200,\"probe\":{\"20\":{\"sequence_accuracy\":0,\"symbol_accuracy\":0.6,\"samples\":32},\"200\":{\"sequence_accuracy\":0,\"symbol_accuracy\":0.5,\"samples\":32}}}",
            "{\"step\":600,\"probe\":{\"20\":{\"sequence_accuracy\":0.5,\"symbol_accuracy\":0.9,\"samples\":32}}}",
            "{\"step\":1000,\"probe\":{\"200\":{\"sequence_accuracy\":0.25,\"symbol_accuracy\":0.875,\"samples\":32}}}",
        ]);
        string prefix = tmp["iteration"];
        var ok = Python(tool, "--out", prefix, reference, run);
        ok.Code.Should().Be(0, ok.Err);
        string md = File.ReadAllText(prefix + ".md");
        md.Should().Contain("| 200 | 50.00% (seq 0%) | 50.0% | 49.0% |", "the reference at the nearest digitized column, 20 steps away")
            .And.Contain("| 1,000 | 87.50% (seq 25%) | 95.5% | - |", "a gap in the NGPU curve is a dash, not a 0")
            .And.NotContain("| 600 |", "step 600 did not probe length 401");
        string svg = File.ReadAllText(prefix + ".svg");
        System.Text.RegularExpressions.Regex.Matches(svg, "<circle cx=\"[^\"]+\" cy=\"[^\"]+\" r=\"3\" fill=\"[^\"]+\"><title>").Count.Should().Be(2);
        svg.Should().Contain(">DNGPU reference").And.Contain(">bmul-a (ours, probe: 32 random<").And.Contain("inference mode)<");
        File.Exists(prefix + ".svg.tmp").Should().BeFalse();

        File.WriteAllText(Path.Combine(run, "config.json"), "{\"task\": \"badd\", \"train_length\": 20}");
        var wrongTask = Python(tool, "--out", prefix, reference, run);
        wrongTask.Code.Should().Be(2);
        wrongTask.Err.Trim().Should().StartWith("error: ").And.Contain("badd").And.NotContain("Traceback");

        File.WriteAllText(Path.Combine(run, "config.json"), "{\"task\": \"bmul\", \"train_length\": 20}");
        File.WriteAllLines(Path.Combine(run, "metrics.jsonl"), ["{\"step\":600,\"probe\":{\"20\":{\"sequence_accuracy\":0.5,\"symbol_accuracy\":0.9,\"samples\":32}}}"]);
        var noProbe = Python(tool, "--out", prefix, reference, run);
        noProbe.Code.Should().Be(2);
        noProbe.Err.Trim().Should().StartWith("error: ").And.Contain("size 200");
    }

    [SkippableFact]
    public void The_zoo_table_counts_a_warm_started_model_with_every_run_it_started_from()
    {
        Skip.If(OnPath("python3") is null, "no python3 on PATH");
        using var tmp = new TempDir();
        string models = tmp["models"];
        Directory.CreateDirectory(models);
        const string complete = "\"status\": \"complete\", \"sequence_accuracy\": ";
        File.WriteAllText(Path.Combine(models, "a.card.json"), "{\"name\": \"a\", \"steps\": 1200, \"wall_time_seconds\": 5400, \"break_point\": \"x: exact up to 40\", " +
            "\"levels\": {\"1x\": {" + complete + "1}, \"10x\": {" + complete + "0.5}}, " +
            "\"bar\": {\"suite\": {\"source\": \"zoo/suites/badd-bar.yaml\", \"seed\": 5}, \"verdict\": \"not met: 100x powers_of_two 6 of 16 exact\", \"summary\": \"1x 100.0%, 100x 96.9%\"}}");
        File.WriteAllText(Path.Combine(models, "b.card.json"), "{\"name\": \"b\", \"steps\": 1200, \"wall_time_seconds\": 5400, \"break_point\": \"x: exact up to 40\", " +
            "\"init_from\": {\"steps\": 6000, \"train_length\": 10, \"wall_time_seconds\": 1800}, \"levels\": {\"1x\": {" + complete + "1}}}");
        File.WriteAllText(Path.Combine(models, "c.card.json"), "{\"name\": \"c\", \"steps\": 1600, \"wall_time_seconds\": 3600, \"break_point\": \"x: exact up to 40\", " +
            "\"init_from\": {\"steps\": 1600, \"train_length\": 20, \"wall_time_seconds\": 3600, \"chain_end\": \"a fresh initialization\", " +
            "\"earlier\": [{\"steps\": 6000, \"train_length\": 10, \"wall_time_seconds\": 1800}]}, \"levels\": {\"1x\": {" + complete + "1}}}");
        var table = Python(Path.Combine(ZooTests.RepoRoot(), "tools", "zoo-table.py"), models);
        table.Code.Should().Be(0, table.Err);
        table.Out.Should().Contain("| `a` | 1,200 | 1.5 h | not graded | 100.0% | 50.0% | not graded | not graded | exact up to 40 |")
            .And.Contain("| `b` | 1,200 (after 6,000 at size 10) | 2.0 h (both) | not graded | 100.0% | not graded |")
            .And.Contain("| `c` | 1,600 (after 6,000 at size 10, then 1,600 at size 20) | 2.5 h (all 3 stages) | not graded | 100.0% |")
            .And.Contain("\n- `a` on `zoo/suites/badd-bar.yaml` (seed 5): not met: 100x powers_of_two 6 of 16 exact (sequence accuracy: 1x 100.0%, 100x 96.9%)\n");
        table.Out.Should().NotContain("- `b`", "only a card with a bar is listed under the bars");
        File.WriteAllText(Path.Combine(models, "e.card.json"), "{\"name\": \"e\", \"steps\": 10, \"wall_time_seconds\": 30, \"break_point\": \"x: exact up to 1\", " +
            "\"levels\": {\"1x\": {" + complete + "0.99966}, \"10x\": {" + complete + "0.0004}}}");
        Python(Path.Combine(ZooTests.RepoRoot(), "tools", "zoo-table.py"), models).Out
            .Should().Contain("| `e` | 10 | 30 s | not graded | 99.97% | 0.04% | not graded |", "a miss is never shown as 100.0%, a hit never as 0.0%");

        // an ensemble (zoo.yaml members:) counts each member's training; its wall time is the longest member run's
        File.WriteAllText(Path.Combine(models, "f.card.json"), "{\"name\": \"f\", \"steps\": 0, \"wall_time_seconds\": 0, \"break_point\": \"x: exact up to 1\", " +
            "\"init_from\": {\"steps\": 6037, \"train_length\": 20, \"wall_time_seconds\": 7200}, \"ensemble\": [" +
            "{\"init_from\": {\"steps\": 6037, \"train_length\": 20, \"wall_time_seconds\": 7200}}, {\"init_from\": {\"steps\": 14050, \"train_length\": 20, \"wall_time_seconds\": 16200}}], " +
            "\"levels\": {\"1x\": {" + complete + "1}}}");
        Python(Path.Combine(ZooTests.RepoRoot(), "tools", "zoo-table.py"), models).Out
            .Should().Contain("| `f` | 0 (an ensemble of 2: 6,037, 14,050 at size 20) | 4.5 h (the longest member's run) | not graded | 100.0% |");

        // a bar met by rules (zoo.yaml bar_gates) lists each rule's value; a level that was not graded is "not measured", never 0
        File.WriteAllText(Path.Combine(models, "d.card.json"), "{\"name\": \"d\", \"steps\": 100, \"wall_time_seconds\": 60, \"break_point\": \"x: exact up to 1\", " +
            "\"levels\": {\"1x\": {" + complete + "1}}, \"bar\": {\"suite\": {\"source\": \"zoo/suites/bmul-bar.yaml\", \"seed\": 7}, " +
            "\"verdict\": \"not met: 100x skipped\", \"summary\": \"10x 93.8%\", \"gates\": {\"source\": \"zoo/suites/bmul-bar.gates.yaml\", \"rules\": [" +
            "{\"rule\": \"bmul/* 10x/random sequence_accuracy >= 1\", \"value\": 0.9375, \"passed\": false}, " +
            "{\"rule\": \"bmul/* 100x symbol_accuracy >= 0.99\", \"value\": null, \"passed\": false}]}}}");
        var gated = Python(Path.Combine(ZooTests.RepoRoot(), "tools", "zoo-table.py"), models);
        gated.Code.Should().Be(0, gated.Err);
        gated.Out.Should().Contain("\n- `d` on `zoo/suites/bmul-bar.yaml` (seed 7): not met: 100x skipped (sequence accuracy: 10x 93.8%); rules of " +
            "`zoo/suites/bmul-bar.gates.yaml`: bmul/* 10x/random sequence_accuracy >= 1: 0.9375 fails; bmul/* 100x symbol_accuracy >= 0.99: not measured fails\n");
    }

    [SkippableFact]
    public void The_paper_figure_names_each_series_as_asked_and_refuses_a_missing_results_file_in_one_line()
    {
        Skip.If(OnPath("python3") is null, "no python3 on PATH");
        using var tmp = new TempDir();
        string reference = tmp["reference.csv"];
        File.WriteAllText(reference, "# digitized\nlength,dngpu_symbol_accuracy_pct,ngpu_symbol_accuracy_pct\n41,,99.9\n401,99.9,75.2\n");
        string Results(string name, double symbols) =>
            "{\"model\": {\"file\": \"" + name + "\", \"task\": \"bmul\", \"arch\": \"dngpu\"}, \"levels\": [{\"length\": 401, " +
            "\"total\": {\"samples\": 16, \"symbol_accuracy\": " + symbols.ToString(System.Globalization.CultureInfo.InvariantCulture) + ", \"sequence_accuracy\": 0.5}}]}";
        // two models exported under one file name, as the published dngpu-bmul and the first port were
        File.WriteAllText(tmp["new.json"], Results("dngpu-bmul.onnx", 1.0));
        File.WriteAllText(tmp["old.json"], Results("dngpu-bmul.onnx", 0.766));
        string prefix = tmp["fig"];
        string tool = Path.Combine(ZooTests.RepoRoot(), "tools", "experiments", "paper_figure.py");

        var named = Python(tool, "--out", prefix, reference, "dngpu-bmul=" + tmp["new.json"], "dngpu-port-bmul=" + tmp["old.json"]);

        named.Code.Should().Be(0, named.Err);
        File.ReadAllText(prefix + ".md").Should().Contain("| length | dngpu-bmul (dngpu, ours) | dngpu-port-bmul (dngpu, ours) | DNGPU reference (digitized) | NGPU (digitized) |")
            .And.Contain("| 401 | 100.0% (seq 50%, 16 samples) | 76.6% (seq 50%, 16 samples) | 99.9% | 75.2% |");
        File.ReadAllText(prefix + ".svg").Should().Contain(">dngpu-port-bmul (dngpu, ours)<");
        var unnamed = Python(tool, "--out", prefix, reference, tmp["new.json"]);
        unnamed.Code.Should().Be(0, unnamed.Err);
        File.ReadAllText(prefix + ".md").Should().Contain("| dngpu-bmul.onnx (dngpu, ours) |", "without NAME= the series is named by its model file");

        var missing = Python(tool, "--out", prefix, reference, "x=" + tmp["none.json"]);
        missing.Code.Should().Be(2);
        missing.Err.Trim().Should().StartWith("error: ").And.Contain("none.json").And.NotContain("Traceback");
    }
}
