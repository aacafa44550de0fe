using Toolchain.Export.Onnx;

namespace Toolchain.Export.Architectures;

/// <summary>
/// The recurrence shared by the Neural GPU exporters: an ONNX Loop whose trip count is the input's length n
/// (loop mode), or the step written out n = options.Length times (unrolled mode); with inference_step_factor p/100
/// above 1, ceil(p n / 100) steps instead, computed as (n p + 99) / 100 in int64 as TorchSharp computes it. When
/// states are asked for, the image of the state before the first step and after every step is stacked to
/// [B, steps+1, ...].
/// </summary>
public static class Recurrence
{
    /// <summary>The Loop of a loop-mode export, created before the weights so that they can be initializers of
    /// its body (ONNX Runtime optimizes only a graph's own constant initializers, not outer-scope values);
    /// null in unrolled mode.</summary>
    public static LoopBuilder? Loop(GraphBuilder g, ExportOptions options) =>
        options.Mode == ExportMode.Loop ? new LoopBuilder(g, "steps") : null;

    /// <param name="loop">From <see cref="Loop"/>.</param>
    /// <param name="step">Adds one step to a graph: (graph, state, step index) -> next state; the index is an
    /// int64 scalar value, made only when the step asks for it (no unused constants in unrolled graphs).</param>
    /// <param name="image">The state as the [B, n, C] picture the `states` output shows.</param>
    /// <param name="config">Its inference_step_factor sets the number of steps.</param>
    public static (string Final, string? States) Build(GraphBuilder g, LoopBuilder? loop, ExportOptions options, Toolchain.Train.RunConfig config,
        string tokens, string s0, Func<GraphBuilder, string, Func<string>, string> step, Func<GraphBuilder, string, string> image)
    {
        long percent = config.InferenceStepPercent();
        string? image0 = options.WithStates ? g.Unsqueeze(image(g, s0), 1) : null;
        if (loop is not null)
        {
            string s = loop.Carry("state", ElementType.Float);
            string next = step(loop.Body, s, () => loop.Iteration);
            (string, ElementType)[] scans = options.WithStates ? [(image(loop.Body, next), ElementType.Float)] : [];
            string trips = g.Squeeze(g.Dim(tokens, 1), 0);
            if (percent != 100)
                trips = g.Node("Div", [g.Node("Add", [g.Node("Mul", [trips, g.Scalar(percent)]), g.Scalar(99L)]), g.Scalar(100L)]);
            var (final, scan) = loop.Finish(trips, [s0], [next], scans);
            return (final[0], options.WithStates ? g.Concat(1, image0!, g.Transpose(scan[0], 1, 0, 2, 3)) : null);
        }
        string state = s0;
        var images = image0 is null ? null : new List<string> { image0 };
        for (long i = 0; i < config.InferenceSteps(options.Length!.Value); i++)
        {
            long index = i;
            state = step(g, state, () => g.Scalar(index));
            images?.Add(g.Unsqueeze(image(g, state), 1));
        }
        return (state, images is null ? null : g.Concat(1, [.. images]));
    }
}
