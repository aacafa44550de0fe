using System.Globalization;
using System.Net;
using System.Text;

namespace Toolchain.Evaluate;

/// <summary>A small SVG line plot with a logarithmic x axis (length) and y in [0, 1] (accuracy); no scripts.</summary>
public static class Plot
{
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points);

    public static string Svg(IReadOnlyList<Series> series, string title, string xLabel = "length (tokens, log scale)", string yLabel = "sequence accuracy")
    {
        const int w = 720, h = 420, left = 60, right = 180, top = 36, bottom = 50;
        var all = series.SelectMany(s => s.Points).Where(p => p.X > 0).ToList();
        double lx0 = all.Count == 0 ? 0 : Math.Floor(Math.Log10(all.Min(p => p.X)));
        double lx1 = all.Count == 0 ? 1 : Math.Ceiling(Math.Log10(all.Max(p => p.X)));
        if (lx1 <= lx0) lx1 = lx0 + 1;
        double pw = w - left - right, ph = h - top - bottom;
        string X(double x) => F(left + (Math.Log10(x) - lx0) / (lx1 - lx0) * pw);
        string Y(double y) => F(top + (1 - Math.Clamp(y, 0, 1)) * ph);
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append($"<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n");
        sb.Append($"<text x=\"{left}\" y=\"20\" font-size=\"14\">{Esc(title)}</text>\n");
        for (int i = 0; i <= 4; i++)
        {
            double y = i / 4.0;
            sb.Append($"<line x1=\"{left}\" x2=\"{F(left + pw)}\" y1=\"{Y(y)}\" y2=\"{Y(y)}\" stroke=\"#ddd\"/>");
            sb.Append($"<text x=\"{left - 6}\" y=\"{Y(y)}\" text-anchor=\"end\" dominant-baseline=\"middle\">{F(y * 100)}%</text>\n");
        }
        for (double e = lx0; e <= lx1; e++)
        {
            double x = Math.Pow(10, e);
            sb.Append($"<line x1=\"{X(x)}\" x2=\"{X(x)}\" y1=\"{top}\" y2=\"{F(top + ph)}\" stroke=\"#ddd\"/>");
            sb.Append($"<text x=\"{X(x)}\" y=\"{F(top + ph + 16)}\" text-anchor=\"middle\">{x.ToString("N0", CultureInfo.InvariantCulture)}</text>\n");
        }
        sb.Append($"<rect x=\"{left}\" y=\"{top}\" width=\"{F(pw)}\" height=\"{F(ph)}\" fill=\"none\" stroke=\"#444\"/>\n");
        sb.Append($"<text x=\"{F(left + pw / 2)}\" y=\"{h - 10}\" text-anchor=\"middle\">{Esc(xLabel)}</text>\n");
        sb.Append($"<text transform=\"translate(16 {F(top + ph / 2)}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text>\n");
        for (int i = 0; i < series.Count; i++)
        {
            string c = Colors[i % Colors.Length];
            var pts = series[i].Points.Where(p => p.X > 0).OrderBy(p => p.X).ToList();
            if (pts.Count > 1)
                sb.Append($"<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{string.Join(" ", pts.Select(p => $"{X(p.X)},{Y(p.Y)}"))}\"/>\n");
            foreach (var p in pts)
                sb.Append($"<circle cx=\"{X(p.X)}\" cy=\"{Y(p.Y)}\" r=\"3.5\" fill=\"{c}\"><title>{Esc(series[i].Name)}: length {p.X.ToString("N0", CultureInfo.InvariantCulture)}, {F(p.Y * 100)}%</title></circle>\n");
            double ly = top + 10 + i * 18;
            sb.Append($"<line x1=\"{F(left + pw + 12)}\" x2=\"{F(left + pw + 32)}\" y1=\"{F(ly)}\" y2=\"{F(ly)}\" stroke=\"{c}\" stroke-width=\"3\"/>");
            sb.Append($"<text x=\"{F(left + pw + 38)}\" y=\"{F(ly)}\" dominant-baseline=\"middle\">{Esc(series[i].Name)}</text>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
    public static string Esc(string s) => WebUtility.HtmlEncode(s);
}
