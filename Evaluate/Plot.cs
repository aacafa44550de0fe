using System.Globalization;
using System.Net;
using System.Text;

namespace Toolchain.Evaluate;

/// <summary>
/// A small SVG line plot with a logarithmic x axis (length, or multiple of the training size) and y in [0, 1]
/// (accuracy); no scripts. Each series has its own colour and marker pair (ten colours, then the same colours
/// with the next marker and a dashed line), the first series is drawn in black and thick when asked (a total under
/// its families, visible where they overlap it), and the legend is
/// as wide and as tall as its labels need. Lengths that were not graded are dashed grey verticals, labelled,
/// so a missing point never reads as 0%.
/// </summary>
public static class Plot
{
    private static readonly string[] Colors =
        ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    private static readonly string[] Markers = ["circle", "square", "triangle", "diamond"];

    public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points);

    /// <summary>An x position with no graded point, and what to write there ("1000x: not graded").</summary>
    public sealed record Gap(double X, string Label);

    /// <summary>Colour, marker and dash of series number <paramref name="index"/>; no two of the first 40 share
    /// all three.</summary>
    public static (string Color, string Marker, bool Dashed) Style(int index, bool firstIsTotal = false)
    {
        if (firstIsTotal && index == 0) return ("#000000", "circle", false);
        int i = firstIsTotal ? index - 1 : index;
        return (Colors[i % Colors.Length], Markers[i / Colors.Length % Markers.Length], i / Colors.Length % 2 == 1);
    }

    public static string Svg(IReadOnlyList<Series> series, string title, string xLabel = "length (tokens, log scale)",
        string yLabel = "sequence accuracy", IReadOnlyList<Gap>? gaps = null, bool firstIsTotal = false)
    {
        gaps ??= [];
        const int plotWidth = 540, plotHeight = 334, left = 60, top = 36, bottom = 50, legendRow = 18;
        // about 7 px per character at 12 px sans-serif, plus the legend's line sample
        int legendWidth = 48 + 7 * series.Select(s => s.Name.Length).DefaultIfEmpty(0).Max();
        int w = left + plotWidth + legendWidth;
        int h = Math.Max(top + plotHeight + bottom, top + 10 + series.Count * legendRow + 10);
        var xs = series.SelectMany(s => s.Points).Select(p => p.X).Concat(gaps.Select(g => g.X)).Where(x => x > 0).ToList();
        double lx0 = xs.Count == 0 ? 0 : Math.Floor(Math.Log10(xs.Min()));
        double lx1 = xs.Count == 0 ? 1 : Math.Ceiling(Math.Log10(xs.Max()));
        if (lx1 <= lx0) lx1 = lx0 + 1;
        double pw = plotWidth, ph = plotHeight;
        double Xv(double x) => left + (Math.Log10(x) - lx0) / (lx1 - lx0) * pw;
        double Yv(double y) => top + (1 - Math.Clamp(y, 0, 1)) * ph;
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append($"<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n");
        sb.Append($"<text x=\"{left}\" y=\"20\" font-size=\"14\">{Esc(title)}</text>\n");
        for (int i = 0; i <= 4; i++)
        {
            double y = i / 4.0;
            sb.Append($"<line x1=\"{left}\" x2=\"{F(left + pw)}\" y1=\"{F(Yv(y))}\" y2=\"{F(Yv(y))}\" stroke=\"#ddd\"/>");
            sb.Append($"<text x=\"{left - 6}\" y=\"{F(Yv(y))}\" text-anchor=\"end\" dominant-baseline=\"middle\">{F(y * 100)}%</text>\n");
        }
        for (double e = lx0; e <= lx1; e++)
        {
            double x = Math.Pow(10, e);
            sb.Append($"<line x1=\"{F(Xv(x))}\" x2=\"{F(Xv(x))}\" y1=\"{top}\" y2=\"{F(top + ph)}\" stroke=\"#ddd\"/>");
            sb.Append($"<text x=\"{F(Xv(x))}\" y=\"{F(top + ph + 16)}\" text-anchor=\"middle\">{Tick(x)}</text>\n");
        }
        sb.Append($"<rect x=\"{left}\" y=\"{top}\" width=\"{F(pw)}\" height=\"{F(ph)}\" fill=\"none\" stroke=\"#444\"/>\n");
        sb.Append($"<text x=\"{F(left + pw / 2)}\" y=\"{top + plotHeight + bottom - 10}\" text-anchor=\"middle\">{Esc(xLabel)}</text>\n");
        sb.Append($"<text transform=\"translate(16 {F(top + ph / 2)}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text>\n");
        foreach (var gap in gaps.Where(g => g.X > 0))
        {
            string x = F(Xv(gap.X));
            sb.Append($"<line x1=\"{x}\" x2=\"{x}\" y1=\"{top}\" y2=\"{F(top + ph)}\" stroke=\"#999\" stroke-dasharray=\"4 4\"><title>{Esc(gap.Label)}</title></line>");
            sb.Append($"<text transform=\"translate({F(Xv(gap.X) - 4)} {top + 6}) rotate(-90)\" text-anchor=\"end\" fill=\"#777\">{Esc(gap.Label)}</text>\n");
        }
        for (int i = 0; i < series.Count; i++)
        {
            var (color, marker, dashed) = Style(i, firstIsTotal);
            string dash = dashed ? " stroke-dasharray=\"6 3\"" : "";
            var pts = series[i].Points.Where(p => p.X > 0).OrderBy(p => p.X).ToList();
            if (pts.Count > 1)
            {
                int width = firstIsTotal && i == 0 ? 5 : 2;
                string points = string.Join(" ", pts.Select(p => $"{F(Xv(p.X))},{F(Yv(p.Y))}"));
                sb.Append($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\"{dash} points=\"{points}\"/>\n");
            }
            foreach (var p in pts)
            {
                string tip = $"{series[i].Name}: {Tick(p.X)}, {ReportWriter.Pct(p.Y)}";
                sb.Append(Marker(marker, Xv(p.X), Yv(p.Y), color, tip)).Append('\n');
            }
            double ly = top + 10 + i * legendRow, lx = left + pw + 12;
            sb.Append($"<line x1=\"{F(lx)}\" x2=\"{F(lx + 24)}\" y1=\"{F(ly)}\" y2=\"{F(ly)}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>");
            sb.Append(Marker(marker, lx + 12, ly, color, null));
            sb.Append($"<text x=\"{F(lx + 30)}\" y=\"{F(ly)}\" dominant-baseline=\"middle\">{Esc(series[i].Name)}</text>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static string Marker(string shape, double x, double y, string color, string? tip)
    {
        string title = tip is null ? "" : $"<title>{Esc(tip)}</title>";
        const double r = 4;
        return shape switch
        {
            "square" => $"<rect x=\"{F(x - r)}\" y=\"{F(y - r)}\" width=\"{F(2 * r)}\" height=\"{F(2 * r)}\" fill=\"{color}\">{title}</rect>",
            "triangle" => $"<polygon points=\"{F(x)},{F(y - r - 1)} {F(x - r - 1)},{F(y + r)} {F(x + r + 1)},{F(y + r)}\" fill=\"{color}\">{title}</polygon>",
            "diamond" => $"<polygon points=\"{F(x)},{F(y - r - 1)} {F(x + r + 1)},{F(y)} {F(x)},{F(y + r + 1)} {F(x - r - 1)},{F(y)}\" fill=\"{color}\">{title}</polygon>",
            _ => $"<circle cx=\"{F(x)}\" cy=\"{F(y)}\" r=\"{F(r)}\" fill=\"{color}\">{title}</circle>",
        };
    }

    private static string Tick(double x) => x >= 1 ? x.ToString("N0", CultureInfo.InvariantCulture) : x.ToString("0.###", CultureInfo.InvariantCulture);

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    public static string Esc(string s) => WebUtility.HtmlEncode(s);
}
