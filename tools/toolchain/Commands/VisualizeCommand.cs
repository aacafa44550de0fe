using System.CommandLine;
using Toolchain.Evaluate.Visualization;
using Toolchain.Suites;

namespace Toolchain.Cli.Commands;

/// <summary>`toolchain visualize MODEL.onnx --task T --length N --out FILE.png`: the network's mental image
/// (its `states` output) at every step of one example, as a grid of heat maps with the tokens alongside.</summary>
public static class VisualizeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "the ONNX model, exported with --with-states" };
        var task = new Option<string?>("--task") { Description = "task to draw an example of (default: the model's toolchain.task)" };
        var length = new Option<int>("--length", "-k") { Description = "instance size k: digits per operand for arithmetic tasks, input symbols otherwise", Required = true };
        var sample = new Option<int>("--sample") { Description = "index of the example in the stream (as `toolchain sample` numbers them)", DefaultValueFactory = _ => 0 };
        var family = new Option<string>("--family", "-f") { Description = "case family (random or a hard family; see `toolchain tasks`)", DefaultValueFactory = _ => AlgorithmicTask.Random };
        var seed = new Option<ulong>("--seed", "-s") { Description = "seed of the example stream", DefaultValueFactory = _ => 1 };
        var every = new Option<int>("--steps-every") { Description = "draw every K-th step (the last step always)", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out", "-o") { Description = "PNG file to write", Required = true };
        var view = new Option<string>("--view")
        {
            Description = "steps: a heat map per step (positions x channels); time: a panel per channel group (positions x steps)",
            DefaultValueFactory = _ => "steps",
        };
        view.AcceptOnlyFromAmong("steps", "time");
        var scale = new Option<int>("--scale") { Description = "draw each pixel as N x N (1-4), so the token text can be read", DefaultValueFactory = _ => 2 };
        var cmd = new Command("visualize", "draw a model's state at every step of one example (positions down, channels across) as a PNG")
        {
            model, task, length, sample, family, seed, every, output, view, scale,
        };
        cmd.SetAction(r =>
        {
            var w = r.InvocationConfiguration.Output;
            string outPath = r.GetValue(output)!;
            if (r.GetValue(scale) is < 1 or > 4) throw new UserError($"--scale must be 1, 2, 3 or 4, got {r.GetValue(scale)}");
            var request = new VisualizeRequest
            {
                ModelPath = r.GetValue(model)!,
                Task = r.GetValue(task),
                Size = r.GetValue(length),
                Sample = r.GetValue(sample),
                Family = r.GetValue(family)!,
                Seed = r.GetValue(seed),
                StepsEvery = r.GetValue(every),
            };
            if (r.GetValue(view) == "time")
            {
                var run = MentalImageRenderer.Run(request);
                var picture = MentalImageRenderer.RenderTime(run).Scaled(r.GetValue(scale));
                PngWriter.Save(picture, outPath);
                Cli.Line(w, MentalImageRenderer.Caption(run));
                Cli.Line(w, MentalImageRenderer.Verdict(run));
                Cli.Line(w, $"wrote {Path.GetFullPath(outPath)} ({picture.Width} x {picture.Height} px, time view)");
                return 0;
            }
            var (image, layout) = MentalImageRenderer.Write(request, outPath, scale: r.GetValue(scale));
            Cli.Line(w, MentalImageRenderer.Caption(image));
            Cli.Line(w, $"{MentalImageRenderer.Verdict(image)}; {MentalImageRenderer.StepsNote(layout)}");
            int factor = r.GetValue(scale);
            Cli.Line(w, $"wrote {Path.GetFullPath(outPath)} ({layout.Width * factor} x {layout.Height * factor} px, cells {layout.CellWidth} x {layout.RowHeight} px, scale {factor})");
            return 0;
        });
        return cmd;
    }
}
