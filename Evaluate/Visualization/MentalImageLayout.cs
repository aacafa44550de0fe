namespace Toolchain.Evaluate.Visualization;

/// <summary>
/// Where everything of a mental-image picture goes, computed only from the shape of the states (length,
/// steps, channels, channel groups) and the step stride, so a test can predict the PNG's size.
/// The picture: a three-line header (caption, verdict and steps, colour legend), then a grid of slots, one
/// per shown step, each a label ("t=12") over a framed heat map with positions down and channels across
/// (a cell of <see cref="CellWidth"/> x <see cref="RowHeight"/> pixels); every grid row starts with the
/// token columns (position numbers, input, target, predicted output) aligned with the map rows.
/// </summary>
public sealed record MentalImageLayout
{
    public const int Margin = 8;
    public const int HeaderLines = 3;
    public const int HeaderHeight = HeaderLines * BitmapFont.LineHeight + 6;
    public const int LabelHeight = BitmapFont.LineHeight;
    public const int GapX = 8, GapY = 8;
    public const int TokenColumnWidth = 20, TokenColumnGap = 2, TokenColumns = 3;
    public const int MinWidth = 480;
    /// <summary>Largest width or height of the picture in pixels.</summary>
    public const int MaxSide = 8000;
    /// <summary>Most steps drawn; more are decimated to this many, evenly spaced, first and last included.</summary>
    public const int MaxShownSteps = 48;
    /// <summary>Row heights and cell widths tried, best first; rows of 8 px or more carry token symbols.</summary>
    public static readonly int[] RowHeights = [8, 6, 5, 4, 3, 2, 1];
    public static readonly int[] CellWidths = [4, 3, 2, 1];
    public const int SymbolRowHeight = 8;

    /// <summary>Most positions a picture can show (one pixel per position).</summary>
    public const int MaxPositions = MaxSide - 2 * Margin - HeaderHeight - LabelHeight - 2;

    public required int Length { get; init; }
    public required int TotalSteps { get; init; }
    public required int Channels { get; init; }
    public required int ChannelGroups { get; init; }
    public required int StepsEvery { get; init; }

    /// <summary>The step indices drawn, ascending.</summary>
    public required IReadOnlyList<int> Shown { get; init; }

    /// <summary>How many steps the stride selects (before decimation to <see cref="MaxShownSteps"/>).</summary>
    public required int Selected { get; init; }

    public required int RowHeight { get; init; }
    public required int CellWidth { get; init; }
    public required int Columns { get; init; }
    public required int Rows { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }

    public bool Decimated => Shown.Count < Selected;
    public bool Symbols => RowHeight >= SymbolRowHeight;
    public int ChannelsPerGroup => Channels / ChannelGroups;

    /// <summary>Map size including its one-pixel frame (and one-pixel separators between channel groups).</summary>
    public int MapWidth => MapWidthFor(Channels, ChannelGroups, CellWidth);
    public int MapHeight => 2 + Length * RowHeight;
    public int SlotWidth => Math.Max(MapWidth, BitmapFont.Width(StepLabel(TotalSteps - 1)));
    public int SlotHeight => LabelHeight + MapHeight;
    public int PositionColumnWidth => PositionWidth(Length, RowHeight);
    public int TokenBlockWidth => TokenBlockWidthFor(Length, RowHeight);

    public static string StepLabel(int step) => "t=" + step.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Top of grid row r (its label line).</summary>
    public int GridRowY(int row) => Margin + HeaderHeight + row * (SlotHeight + GapY);

    /// <summary>Left edge of the token block (position numbers, then the three token columns).</summary>
    public static int TokenBlockX => Margin;

    /// <summary>Left edge of token column i (0 input, 1 target, 2 output).</summary>
    public int TokenColumnX(int i) => Margin + PositionColumnWidth + i * (TokenColumnWidth + TokenColumnGap);

    /// <summary>Top-left corner of the slot of the i-th shown step (its label; the map's frame starts
    /// <see cref="LabelHeight"/> below).</summary>
    public (int X, int Y) Slot(int i) =>
        (Margin + TokenBlockWidth + GapX + i % Columns * (SlotWidth + GapX), GridRowY(i / Columns));

    /// <summary>Top of the first position row inside a map (or the token columns) of grid row r.</summary>
    public int FirstRowY(int row) => GridRowY(row) + LabelHeight + 1;

    /// <summary>Left edge of channel c inside a map whose frame starts at x.</summary>
    public int ChannelX(int mapX, int channel) => mapX + 1 + channel * CellWidth + channel / ChannelsPerGroup;

    public static MentalImageLayout Compute(int length, int steps, int channels, int channelGroups = 1, int stepsEvery = 1)
    {
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), $"length {length} must be at least 1");
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), $"steps {steps} must be at least 1");
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), $"channels {channels} must be at least 1");
        if (stepsEvery < 1) throw new ArgumentOutOfRangeException(nameof(stepsEvery), $"--steps-every {stepsEvery} must be at least 1");
        if (channelGroups < 1 || channels % channelGroups != 0) channelGroups = 1;
        if (length > MaxPositions)
            throw new EvaluationException($"length {length:N0} is too long to draw: a picture shows at most {MaxPositions:N0} positions (one pixel each); use a smaller --length");

        var selected = new List<int>();
        for (int t = 0; t < steps; t += stepsEvery) selected.Add(t);
        if (selected[^1] != steps - 1) selected.Add(steps - 1);

        for (int most = Math.Min(MaxShownSteps, selected.Count); most >= 1; most--)
        {
            var shown = Decimate(selected, most);
            if (Fit(length, steps, channels, channelGroups, shown.Count) is { } fit)
                return new MentalImageLayout
                {
                    Length = length,
                    TotalSteps = steps,
                    Channels = channels,
                    ChannelGroups = channelGroups,
                    StepsEvery = stepsEvery,
                    Shown = shown,
                    Selected = selected.Count,
                    RowHeight = fit.RowHeight,
                    CellWidth = fit.CellWidth,
                    Columns = fit.Columns,
                    Rows = fit.Rows,
                    Width = fit.Width,
                    Height = fit.Height,
                };
        }
        throw new EvaluationException($"states of {channels:N0} channels over {length:N0} positions do not fit a {MaxSide:N0} x {MaxSide:N0} picture even at one pixel per cell; use a smaller --length");
    }

    /// <summary>At most <paramref name="most"/> of the selected steps, evenly spaced, first and last included.</summary>
    public static IReadOnlyList<int> Decimate(IReadOnlyList<int> selected, int most)
    {
        if (selected.Count <= most) return selected.ToArray();
        if (most == 1) return [selected[^1]];
        var shown = new List<int>(most);
        long span = selected.Count - 1, parts = most - 1;
        for (long i = 0; i < most; i++)
        {
            int step = selected[(int)((2 * i * span + parts) / (2 * parts))]; // round(i * span / parts)
            if (shown.Count == 0 || shown[^1] != step) shown.Add(step);
        }
        return shown;
    }

    private static int MapWidthFor(int channels, int groups, int cellWidth) => 2 + channels * cellWidth + (groups - 1);

    private static int PositionWidth(int length, int rowHeight) =>
        rowHeight >= SymbolRowHeight ? BitmapFont.Width((length - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) + 5 : 0;

    private static int TokenBlockWidthFor(int length, int rowHeight) =>
        PositionWidth(length, rowHeight) + TokenColumns * TokenColumnWidth + (TokenColumns - 1) * TokenColumnGap;

    private readonly record struct FitResult(int RowHeight, int CellWidth, int Columns, int Rows, int Width, int Height);

    /// <summary>The best cell size and grid for n maps: the largest rows, then the widest cells, that fit in
    /// <see cref="MaxSide"/>; among grids, the one closest to a 3:2 landscape.</summary>
    private static FitResult? Fit(int length, int steps, int channels, int groups, int n)
    {
        int labelWidth = BitmapFont.Width(StepLabel(steps - 1));
        foreach (int rowHeight in RowHeights)
            foreach (int cellWidth in CellWidths)
            {
                int slotW = Math.Max(MapWidthFor(channels, groups, cellWidth), labelWidth);
                long slotH = LabelHeight + 2 + (long)length * rowHeight;
                int block = TokenBlockWidthFor(length, rowHeight);
                FitResult? best = null;
                double bestScore = double.MaxValue;
                for (int cols = 1; cols <= n; cols++)
                {
                    int rows = (n + cols - 1) / cols;
                    long w = Math.Max(MinWidth, 2L * Margin + block + (long)cols * (GapX + slotW));
                    long h = 2L * Margin + HeaderHeight + rows * slotH + (rows - 1) * (long)GapY;
                    if (w > MaxSide || h > MaxSide) continue;
                    double score = Math.Abs(Math.Log((double)w / h) - Math.Log(1.5));
                    if (score < bestScore)
                    {
                        bestScore = score;
                        best = new FitResult(rowHeight, cellWidth, cols, rows, (int)w, (int)h);
                    }
                }
                if (best is not null) return best;
            }
        return null;
    }
}
