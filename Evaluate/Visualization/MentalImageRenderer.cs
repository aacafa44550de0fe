using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Toolchain.Suites;

namespace Toolchain.Evaluate.Visualization;

/// <summary>What to draw: a model, one example (task, size, family, seed, sample index) and the step stride.</summary>
public sealed record VisualizeRequest
{
    public required string ModelPath { get; init; }
    public string? Task { get; init; }
    public required int Size { get; init; }
    public int Sample { get; init; }
    public string Family { get; init; } = AlgorithmicTask.Random;
    public ulong Seed { get; init; } = 1;
    public int StepsEvery { get; init; } = 1;
    /// <summary>Largest states tensor (bytes) the run may produce.</summary>
    public long MaxStateBytes { get; init; } = 4L << 30;
}

/// <summary>The states of one run of a model on one example (batch 1).</summary>
public sealed record MentalImage(
    ModelInfo Info,
    Example Example,
    int Sample,
    ulong Seed,
    int[] Predicted,
    float[] States,
    int Steps,
    int Channels,
    int ChannelGroups)
{
    public CheckResult Check => CheckResult.Compare(Example.Target, Predicted);

    /// <summary>Largest |value| over all steps, positions and channels (NaN ignored).</summary>
    public float MaxAbs
    {
        get
        {
            float max = 0;
            foreach (float v in States)
                if (Math.Abs(v) > max) max = Math.Abs(v);
            return max;
        }
    }
}

/// <summary>
/// The network's mental image at every step, as in the Neural GPU lecture: one heat map per step with the
/// input positions down and the state channels across (blue negative, white 0, red positive, one scale for
/// all steps), steps in a grid, and the input, target and predicted tokens alongside.
/// Runs the model's optional `states` output [batch, steps, length, channels] under ONNX Runtime.
/// </summary>
public static class MentalImageRenderer
{
    private static readonly string[] InputNames = ["tokens"];
    private static readonly string[] OutputNames = ["logits", "states"];

    private static readonly Rgb Ink = new(25, 25, 25);
    private static readonly Rgb Faint = new(120, 120, 120);
    private static readonly Rgb FrameColor = new(150, 150, 150);
    private static readonly Rgb GroupLine = new(170, 170, 170);
    private static readonly Rgb WrongInk = new(200, 0, 0);
    private static readonly Rgb WrongFill = new(255, 214, 214);
    private static readonly Rgb NaNColor = new(255, 0, 255);

    /// <summary>Generates the example, runs the model once with states and returns them.</summary>
    public static MentalImage Run(VisualizeRequest req, RunnerOptions? options = null)
    {
        if (req.Task is { } name && TaskRegistry.TryGet(name) is null)
            throw new EvaluationException($"unknown task '{name}'; known tasks: {string.Join(", ", TaskRegistry.All.Select(t => t.Name))}");
        if (req.Sample < 0) throw new EvaluationException($"--sample must be 0 or more, got {req.Sample}");
        if (req.StepsEvery < 1) throw new EvaluationException($"--steps-every must be at least 1, got {req.StepsEvery}");
        string path = req.ModelPath;
        if (!File.Exists(path)) throw new EvaluationException($"model '{path}' does not exist");
        byte[] bytes = File.ReadAllBytes(path);
        bool hasTrainLength;
        try { hasTrainLength = OnnxModelHeader.Read(bytes).Metadata.ContainsKey("toolchain.train_length"); }
        catch (InvalidDataException) { hasTrainLength = true; } // Inspect reports the corrupt file
        // the training size only matters to eval; a model without it is drawn at the requested size
        var info = ModelIntake.Inspect(path, bytes, req.Task, hasTrainLength ? null : Math.Max(req.Size, 1));
        var task = info.Task;

        if (req.Size < task.MinSize)
            throw new EvaluationException($"--length {req.Size} is below the smallest size {task.MinSize} of task '{task.Name}'");
        long length = task.LengthForSize(req.Size);
        if (length > MentalImageLayout.MaxPositions)
            throw new EvaluationException($"--length {req.Size} encodes to {length:N0} positions; a picture shows at most {MentalImageLayout.MaxPositions:N0}: use a smaller --length");
        if (!task.Families.Contains(req.Family))
            throw new EvaluationException($"task '{task.Name}' has no case family '{req.Family}'; its families are: {string.Join(", ", task.Families)}");
        if (EstimatedChannels(info) is { } c && (length + 1) * length * c * 4 > req.MaxStateBytes)
            throw new EvaluationException($"the states of {info.Label} at --length {req.Size} ({length:N0} positions) would take about {(length + 1) * length * c * 4.0 / (1 << 30):0.#} GiB; use a smaller --length");

        var example = task.Generate(req.Size, req.Family, Rng.For(req.Seed, task.Name, req.Size, req.Family, req.Sample));
        var runnerOptions = options ?? new RunnerOptions { Provider = ProviderChoice.Cpu };
        OnnxRunner runner;
        try
        {
            runner = OnnxRunner.Open(bytes, path, task.Vocab.Count, runnerOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new EvaluationException($"ONNX Runtime refuses model '{path}': {OnnxRunner.FirstLine(e.Message)}; re-export it (opset 21, IR 10)", e);
        }
        using (runner)
        {
            ModelIntake.CheckSignature(path, runner.Session, task.Vocab.Count);
            if (!runner.Session.OutputMetadata.ContainsKey("states"))
                throw new EvaluationException(info.JoinedMembers is { } members
                    ? $"model '{path}' is an ensemble of {members.Count} in one file (export --ensemble): its members' states are not kept; visualize one member, exported with `toolchain export RUN --with-states`"
                    : $"model '{path}' has no 'states' output (the network's state at every step): re-export with `toolchain export RUN --with-states`");
            return RunOnce(runner, info, example, req);
        }
    }

    private static MentalImage RunOnce(OnnxRunner runner, ModelInfo info, Example example, VisualizeRequest req)
    {
        int n = example.Length, vocab = info.Task.Vocab.Count;
        var tokens = example.Input.Select(t => (long)t).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(tokens, [1, n]);
        using var runOptions = new RunOptions();
        IDisposableReadOnlyCollection<OrtValue> outputs;
        try
        {
            outputs = runner.Session.Run(runOptions, InputNames, [input], OutputNames);
        }
        catch (OnnxRuntimeException e)
        {
            throw new EvaluationException($"model '{info.Path}' failed on 1 x {n} tokens: {OnnxRunner.FirstLine(e.Message)}", e);
        }
        using (outputs)
        {
            var logitsShape = outputs[0].GetTensorTypeAndShape().Shape;
            if (logitsShape is not [1, var ln, var lv] || ln != n || lv != vocab)
                throw new EvaluationException($"model '{info.Path}': logits have shape [{string.Join(", ", logitsShape)}] for 1 x {n} tokens; expected [1, {n}, {vocab}]: re-export it");
            var statesShape = outputs[1].GetTensorTypeAndShape().Shape;
            if (statesShape is not [1, var steps, var sn, var channels] || sn != n || steps < 1 || channels < 1)
                throw new EvaluationException($"model '{info.Path}': states have shape [{string.Join(", ", statesShape)}] for 1 x {n} tokens; expected [1, steps, {n}, channels]: re-export with `toolchain export RUN --with-states`");
            if (outputs[1].GetTensorTypeAndShape().ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                throw new EvaluationException($"model '{info.Path}': states are not float32: re-export with `toolchain export RUN --with-states`");
            var logits = outputs[0].GetTensorDataAsSpan<float>();
            var predicted = new int[n];
            for (int j = 0; j < n; j++) predicted[j] = OnnxRunner.ArgMax(logits.Slice(j * vocab, vocab));
            var states = outputs[1].GetTensorDataAsSpan<float>().ToArray();
            return new MentalImage(info, example, req.Sample, req.Seed, predicted, states, (int)steps, (int)channels,
                ChannelGroups(info, (int)channels));
        }
    }

    /// <summary>Channels of the state image from the model's config, when it says (ngpu: width x maps; dngpu: maps).</summary>
    private static long? EstimatedChannels(ModelInfo info)
    {
        long? maps = ConfigInt(info, "maps");
        if (maps is null) return null;
        return info.Arch == "ngpu" ? maps * (ConfigInt(info, "width") ?? 1) : maps;
    }

    /// <summary>The Neural GPU's state image is (column, channel): one group per column of its w-wide mental tape.
    /// The improved Neural GPU's maps come in its diagonal gate's three shift groups, in order: the first third
    /// takes position i+1's value at each step (moves up the picture), the second position i-1's (moves down),
    /// the rest stay (ImprovedNeuralGpu.ShiftGroups, whose sizes are equal when the maps divide by 3).</summary>
    private static int ChannelGroups(ModelInfo info, int channels) =>
        info.Arch == "ngpu" && ConfigInt(info, "width") is > 1 and var w && channels % w == 0 ? (int)w
        : IsShiftGrouped(info.Arch, channels) ? 3 : 1;

    /// <summary>Whether the channels are dngpu's three equal shift groups (up, down, none).</summary>
    public static bool IsShiftGrouped(string arch, int channels) => arch == "dngpu" && channels % 3 == 0 && channels >= 3;

    /// <summary>Names of dngpu's shift groups, in channel order.</summary>
    public static readonly string[] ShiftGroupNames = ["moves up (takes i+1)", "moves down (takes i-1)", "stays"];

    private static long? ConfigInt(ModelInfo info, string key)
    {
        if (info.ConfigJson is null) return null;
        try
        {
            using var doc = JsonDocument.Parse(info.ConfigJson);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(key, out var v) && v.TryGetInt64(out long x) && x > 0 ? x : null;
        }
        catch (JsonException) { return null; }
    }

    public static MentalImageLayout LayoutFor(MentalImage m, int stepsEvery) =>
        MentalImageLayout.Compute(m.Example.Length, m.Steps, m.Channels, m.ChannelGroups, stepsEvery);

    /// <summary>The first caption line: what was run on what.</summary>
    public static string Caption(MentalImage m) =>
        $"{m.Info.Task.Name} / {m.Info.Arch}   size {m.Example.Size} (length {m.Example.Length})   family {m.Example.Family}   sample {m.Sample}   seed {m.Seed}   {m.Info.FileName}";

    /// <summary>"exact" or "wrong at position p (w of n positions wrong)".</summary>
    public static string Verdict(MentalImage m)
    {
        var check = m.Check;
        return check.Correct ? "exact" : $"wrong at position {check.FirstWrongPosition} ({check.WrongSymbols} of {m.Example.Length} positions wrong, red in 'out')";
    }

    public static string StepsNote(MentalImageLayout l)
    {
        string stride = l.StepsEvery > 1 ? $", every {l.StepsEvery}th" : "";
        return l.Decimated
            ? $"steps 0-{l.TotalSteps - 1}{stride}: {l.Shown.Count} of {l.Selected} shown, evenly spaced"
            : $"steps 0-{l.TotalSteps - 1}{stride}: {l.Shown.Count} shown";
    }

    public static RgbImage Render(MentalImage m, MentalImageLayout l)
    {
        var img = new RgbImage(l.Width, l.Height, Rgb.White);
        var task = m.Info.Task;
        int n = m.Example.Length, channels = m.Channels;
        float max = m.MaxAbs;
        int right = l.Width - MentalImageLayout.Margin;

        // header: caption, verdict and steps, colour legend
        int x0 = MentalImageLayout.Margin, y0 = MentalImageLayout.Margin;
        BitmapFont.Draw(img, x0, y0, Caption(m), Ink, right);
        var check = m.Check;
        string verdict = Verdict(m);
        BitmapFont.Draw(img, x0, y0 + BitmapFont.LineHeight, verdict, check.Correct ? Ink : WrongInk, right);
        BitmapFont.Draw(img, x0 + BitmapFont.Width(verdict) + 4 * BitmapFont.Advance, y0 + BitmapFont.LineHeight, StepsNote(l), Faint, right);
        int ly = y0 + 2 * BitmapFont.LineHeight;
        string low = "-" + Value(max), high = "+" + Value(max);
        BitmapFont.Draw(img, x0, ly, low, Ink, right);
        int bx = x0 + BitmapFont.Width(low) + 4, barWidth = 101;
        for (int i = 0; i < barWidth; i++)
            img.Fill(bx + i, ly, 1, BitmapFont.GlyphHeight, Diverging(2.0 * i / (barWidth - 1) - 1));
        img.Frame(bx - 1, ly - 1, barWidth + 2, BitmapFont.GlyphHeight + 2, FrameColor);
        BitmapFont.Draw(img, bx + barWidth + 4, ly, high, Ink, right);
        string across = IsShiftGrouped(m.Info.Arch, channels) && l.ChannelGroups == 3
            ? $"channels across: {l.ChannelsPerGroup} move up | {l.ChannelsPerGroup} move down | {l.ChannelsPerGroup} stay"
            : l.ChannelGroups > 1 ? $"{l.ChannelGroups} tape columns x {l.ChannelsPerGroup} channels across" : $"{channels} channels across";
        string legend = $"state value (one scale for all steps)   positions down, {across}   t=0: embedded input";
        BitmapFont.Draw(img, bx + barWidth + 4 + BitmapFont.Width(high) + 3 * BitmapFont.Advance, ly, legend, Faint, right);

        // token columns at the start of every grid row
        for (int row = 0; row < l.Rows; row++)
        {
            int gy = l.GridRowY(row), fy = l.FirstRowY(row);
            string[] heads = ["in", "tgt", "out"];
            int[][] columns = [m.Example.Input, m.Example.Target, m.Predicted];
            for (int c = 0; c < 3; c++)
            {
                int cx = l.TokenColumnX(c);
                BitmapFont.Draw(img, cx + (MentalImageLayout.TokenColumnWidth - BitmapFont.Width(heads[c])) / 2, gy, heads[c], Faint);
                for (int p = 0; p < n; p++)
                {
                    int token = columns[c][p];
                    bool wrong = c == 2 && token != m.Example.Target[p];
                    int y = fy + p * l.RowHeight;
                    if (l.Symbols)
                    {
                        if (wrong) img.Fill(cx, y, MentalImageLayout.TokenColumnWidth, l.RowHeight, WrongFill);
                        string symbol = token >= 0 && token < task.Vocab.Count ? task.Vocab[token] : "?";
                        BitmapFont.Draw(img, cx + (MentalImageLayout.TokenColumnWidth - BitmapFont.GlyphWidth) / 2, y, symbol,
                            wrong ? WrongInk : token == AlgorithmicTask.Pad ? Faint : Ink);
                    }
                    else
                    {
                        img.Fill(cx + 2, y, MentalImageLayout.TokenColumnWidth - 4, l.RowHeight, wrong ? WrongInk : TokenShade(token, task.Vocab.Count));
                    }
                }
            }
            if (l.Symbols)
                for (int p = 0; p < n; p += 5)
                {
                    string label = p.ToString(CultureInfo.InvariantCulture);
                    BitmapFont.Draw(img, MentalImageLayout.TokenBlockX + l.PositionColumnWidth - 5 - BitmapFont.Width(label), fy + p * l.RowHeight, label, Faint);
                }
        }

        // one heat map per shown step
        float scale = max > 0 ? 1f / max : 0f;
        for (int i = 0; i < l.Shown.Count; i++)
        {
            int step = l.Shown[i];
            var (sx, sy) = l.Slot(i);
            BitmapFont.Draw(img, sx, sy, MentalImageLayout.StepLabel(step), Ink);
            int my = sy + MentalImageLayout.LabelHeight;
            img.Frame(sx, my, l.MapWidth, l.MapHeight, FrameColor);
            for (int g = 1; g < l.ChannelGroups; g++)
                img.Fill(l.ChannelX(sx, g * l.ChannelsPerGroup) - 1, my + 1, 1, l.MapHeight - 2, GroupLine);
            var plane = m.States.AsSpan(step * n * channels, n * channels);
            for (int p = 0; p < n; p++)
            {
                int y = my + 1 + p * l.RowHeight;
                for (int c = 0; c < channels; c++)
                {
                    float v = plane[p * channels + c];
                    img.Fill(l.ChannelX(sx, c), y, l.CellWidth, l.RowHeight, float.IsNaN(v) ? NaNColor : Diverging(v * scale));
                }
            }
        }
        return img;
    }

    private static string Value(float v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.##" : "0.###", CultureInfo.InvariantCulture);

    /// <summary>Blue (-1) through white (0) to red (+1), after ColorBrewer's RdBu.</summary>
    public static Rgb Diverging(double v)
    {
        if (double.IsNaN(v)) return NaNColor;
        v = Math.Clamp(v, -1, 1);
        ReadOnlySpan<byte> mid = v < 0 ? [103, 169, 207] : [239, 138, 98];
        ReadOnlySpan<byte> end = v < 0 ? [5, 48, 97] : [103, 0, 31];
        double t = Math.Abs(v);
        Span<byte> rgb = stackalloc byte[3];
        for (int k = 0; k < 3; k++)
            rgb[k] = (byte)Math.Round(t <= 0.5 ? 255 + (mid[k] - 255) * (t / 0.5) : mid[k] + (end[k] - mid[k]) * ((t - 0.5) / 0.5));
        return new Rgb(rgb[0], rgb[1], rgb[2]);
    }

    /// <summary>A grey per token for token columns too thin for symbols: PAD light, others darker by id.</summary>
    private static Rgb TokenShade(int token, int vocab)
    {
        if (token <= 0) return new Rgb(232, 232, 232);
        byte g = (byte)(40 + (vocab > 2 ? (token - 1) * 150 / (vocab - 2) : 0));
        return new Rgb(g, g, g);
    }

    /// <summary>Runs, lays out, draws and writes the PNG (each pixel <paramref name="scale"/> x <paramref name="scale"/>);
    /// returns the run and the layout used.</summary>
    public static (MentalImage Image, MentalImageLayout Layout) Write(VisualizeRequest req, string outPath, RunnerOptions? options = null, int scale = 1)
    {
        var m = Run(req, options);
        var layout = LayoutFor(m, req.StepsEvery);
        PngWriter.Save(Render(m, layout).Scaled(scale), outPath);
        return (m, layout);
    }

    /// <summary>
    /// The time view: one panel per channel group (dngpu's shift groups, the Neural GPU's tape columns, or all
    /// channels), each with the positions down and the steps across, a cell the mean of the group's channels at
    /// that position and step. A value a group carries along shows as a diagonal: up-moving maps draw it rising
    /// one position per step, down-moving maps falling. The input, target and predicted tokens stand at the left.
    /// </summary>
    public static RgbImage RenderTime(MentalImage m)
    {
        const int margin = MentalImageLayout.Margin, gap = 12, rowHeight = 8;
        int n = m.Example.Length, steps = m.Steps, channels = m.Channels;
        int groups = m.ChannelGroups, perGroup = channels / groups;
        int cellWidth = Math.Clamp(480 / Math.Max(1, steps), 1, 8);
        int panelWidth = 2 + steps * cellWidth;
        var task = m.Info.Task;
        string[] names = IsShiftGrouped(m.Info.Arch, channels) && groups == 3 ? ShiftGroupNames
            : groups > 1 ? Enumerable.Range(0, groups).Select(g => $"tape column {g}").ToArray() : ["all channels"];
        int labelWidth = names.Max(BitmapFont.Width);
        int tokenBlock = 3 * (MentalImageLayout.TokenColumnWidth + MentalImageLayout.TokenColumnGap);
        int headerHeight = 3 * BitmapFont.LineHeight + 6;
        string note = $"positions down, steps 0-{steps - 1} across. A cell: the mean of the {perGroup} channels of the group (blue -, white 0, red +)";
        int textWidth = Math.Max(BitmapFont.Width(Caption(m)), BitmapFont.Width(note));
        int width = Math.Max(Math.Max(MentalImageLayout.MinWidth, 2 * margin + textWidth),
            2 * margin + tokenBlock + groups * (Math.Max(panelWidth, labelWidth) + gap));
        int top = margin + headerHeight + BitmapFont.LineHeight;
        int height = top + 2 + n * rowHeight + BitmapFont.LineHeight + margin;
        if ((long)width * height > 8000L * 8000 || n * rowHeight > 8000)
            throw new EvaluationException($"the time view of {n:N0} positions x {steps:N0} steps is too large to draw; use a smaller --length");
        var img = new RgbImage(width, height, Rgb.White);
        BitmapFont.Draw(img, margin, margin, Caption(m), Ink, width - margin);
        BitmapFont.Draw(img, margin, margin + BitmapFont.LineHeight, Verdict(m), m.Check.Correct ? Ink : WrongInk, width - margin);
        BitmapFont.Draw(img, margin, margin + 2 * BitmapFont.LineHeight, note, Faint, width - margin);

        string[] heads = ["in", "tgt", "out"];
        int[][] columns = [m.Example.Input, m.Example.Target, m.Predicted];
        for (int c = 0; c < 3; c++)
        {
            int cx = margin + c * (MentalImageLayout.TokenColumnWidth + MentalImageLayout.TokenColumnGap);
            BitmapFont.Draw(img, cx + (MentalImageLayout.TokenColumnWidth - BitmapFont.Width(heads[c])) / 2, top - BitmapFont.LineHeight, heads[c], Faint);
            for (int p = 0; p < n; p++)
            {
                int token = columns[c][p];
                bool wrong = c == 2 && token != m.Example.Target[p];
                string symbol = token >= 0 && token < task.Vocab.Count ? task.Vocab[token] : "?";
                BitmapFont.Draw(img, cx + (MentalImageLayout.TokenColumnWidth - BitmapFont.GlyphWidth) / 2, top + 1 + p * rowHeight, symbol,
                    wrong ? WrongInk : token == AlgorithmicTask.Pad ? Faint : Ink);
            }
        }

        var means = new float[groups, steps, n];
        float max = 0;
        for (int t = 0; t < steps; t++)
            for (int p = 0; p < n; p++)
                for (int g = 0; g < groups; g++)
                {
                    float sum = 0;
                    for (int c = g * perGroup; c < (g + 1) * perGroup; c++) sum += m.States[(t * n + p) * channels + c];
                    means[g, t, p] = sum / perGroup;
                    if (Math.Abs(means[g, t, p]) > max) max = Math.Abs(means[g, t, p]);
                }
        float scale = max > 0 ? 1f / max : 0f;
        for (int g = 0; g < groups; g++)
        {
            int px = margin + tokenBlock + g * (Math.Max(panelWidth, labelWidth) + gap);
            BitmapFont.Draw(img, px, top - BitmapFont.LineHeight, names[g], Ink);
            img.Frame(px, top, panelWidth, 2 + n * rowHeight, FrameColor);
            for (int t = 0; t < steps; t++)
                for (int p = 0; p < n; p++)
                {
                    float v = means[g, t, p];
                    img.Fill(px + 1 + t * cellWidth, top + 1 + p * rowHeight, cellWidth, rowHeight, float.IsNaN(v) ? NaNColor : Diverging(v * scale));
                }
            BitmapFont.Draw(img, px, top + 3 + n * rowHeight, $"t=0 ... t={steps - 1}", Faint);
        }
        return img;
    }
}
