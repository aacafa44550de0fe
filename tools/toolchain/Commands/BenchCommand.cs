using System.CommandLine;
using Toolchain.Cli.Bench;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain bench [--quick] [--out DIR]`: speed and memory of inference and training, with PASS/MISS per target.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "fewer lengths and steps (under 5 minutes on 2 cores)" };
        var smoke = new Option<bool>("--smoke") { Description = "tiny sizes, seconds (tests)", Hidden = true };
        var outDir = new Option<string>("--out") { Description = "folder for bench.json and bench.md", DefaultValueFactory = _ => Path.Combine("reports", "bench") };
        var section = new Option<string>("--section") { Description = "all (default), or training: only the peak, training speed and memory, seed packing and the step profile (written as bench-training.json/.md)", DefaultValueFactory = _ => "all" };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0: its default)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("bench", "ONNX Runtime vs TorchSharp, loop vs unrolled, against the measured float32 peak, growth with n, training speed and memory; PASS/MISS per target")
        {
            quick, smoke, outDir, threads, section,
        };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            var err = r.InvocationConfiguration.Error;
            if (r.GetValue(threads) < 0) throw new UserError("--threads must be 0 (default) or more");
            string part = r.GetValue(section)!;
            if (part is not ("all" or "training")) throw new UserError($"--section must be all or training, not '{part}'");
            var options = (r.GetValue(smoke) ? BenchOptions.Smoke : r.GetValue(quick) ? BenchOptions.Quick : BenchOptions.Full) with { OrtThreads = r.GetValue(threads), Section = part };
            var report = Bench.Bench.Run(options, line => Cli.Line(err, line));
            string dir = r.GetValue(outDir)!;
            Bench.Bench.Write(report, dir);
            w.Write(Bench.Bench.Markdown(report));
            foreach (var t in report.Targets) Cli.Line(w, $"{(t.Pass ? "PASS" : "MISS")}  {t.Name}: {t.Goal} ({t.Value.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)})");
            string stem = Bench.Bench.FileStem(part);
            Cli.Line(w, $"wrote {Path.GetFullPath(Path.Combine(dir, stem + ".json"))} and {stem}.md");
            return 0;
        });
        return cmd;
    }
}
