using Toolchain.Suites;
using System.Globalization;
using System.Text;

namespace Toolchain.Evaluate;

/// <summary>Writes results.json, failures.jsonl, summary.md and index.html, each atomically.</summary>
public static class ReportWriter
{
    /// <summary>The files <see cref="WriteAll"/> writes.</summary>
    public static readonly IReadOnlyList<string> Files = ["results.json", "failures.jsonl", "summary.md", "index.html"];

    public static void WriteAll(string dir, Results r, IReadOnlyList<FailureExample> failures)
    {
        AtomicFile.Write(Path.Combine(dir, "results.json"), Json.Serialize(r));
        AtomicFile.Write(Path.Combine(dir, "failures.jsonl"), string.Concat(failures.Select(f => Json.Serialize(f, indented: false) + "\n")));
        AtomicFile.Write(Path.Combine(dir, "summary.md"), Summary(r));
        AtomicFile.Write(Path.Combine(dir, "index.html"), Html(r, failures));
    }

    /// <summary>A fraction as a percentage with one decimal, and more where one would round a value that is not 1 up
    /// to "100.0%" or a value above 0 down to "0.0%" (99.966% of symbols right is "99.97%", not "100.0%").</summary>
    public static string Pct(double v)
    {
        bool Misleading(double shown) => (v < 1 && shown >= 100) || (v > 0 && shown == 0);
        int decimals = 1;
        while (decimals < 9 && Misleading(Math.Round(v * 100, decimals, MidpointRounding.AwayFromZero))) decimals++;
        return (v * 100).ToString("F" + decimals, CultureInfo.InvariantCulture) + "%";
    }

    /// <summary>A rate (examples or tokens per second) with its significant digits: "1,234", "3.5", "0.016", never
    /// "0" for a rate that was measured above 0.</summary>
    public static string Rate(double v) =>
        v >= 100 ? v.ToString("N0", CultureInfo.InvariantCulture)
        : v >= 1 ? v.ToString("0.#", CultureInfo.InvariantCulture)
        : v == 0 ? "0"
        : v.ToString("G2", CultureInfo.InvariantCulture);

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    private static string Mult(LevelResult l) => l.Exhaustive ? "exhaustive" : "x" + l.Multiple.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>", run for ceil(f n) steps on length n (inference_step_factor f)" for a Neural GPU exported with a
    /// factor above 1, else empty: a departure from the references a reader of the grades should see.</summary>
    public static string StepNote(ModelSection model)
    {
        long p = ReportBuilder.InferenceStepPercent(model);
        if (p == 100) return "";
        string f = (p / 100.0).ToString("0.##", CultureInfo.InvariantCulture);
        return $", run for ceil({f} n) steps on length n (inference_step_factor {f}; the references run n)";
    }

    public static string Summary(Results r)
    {
        // every name and note comes from the model, the suite or a results file: escaped (MarkdownText.Esc)
        static string M(string? text) => MarkdownText.Esc(text);
        var sb = new StringBuilder();
        sb.Append($"# {M(r.Model.Task)}/{M(r.Model.Arch)}: {M(r.Model.File)}\n\n");
        sb.Append($"- model sha256 {M(r.Model.Sha256)}, trained at size {r.Model.TrainLength}{StepNote(r.Model)}\n");
        sb.Append($"- suite {M(r.Suite.Name)} (sha256 {M(r.Suite.Hash[..Math.Min(12, r.Suite.Hash.Length)])}, seed {r.Suite.Seed})\n");
        sb.Append($"- ran on {M(r.Run.Provider)} ({M(r.Run.Device)}), threads {(r.Run.Threads == 0 ? "default" : r.Run.Threads.ToString(CultureInfo.InvariantCulture))}, graph optimization {M(r.Run.GraphOptimization)}");
        if (r.Run.LoopChunk is { } chunk) sb.Append($", step loop in chunks of {chunk} steps");
        if (r.Run.IoBinding == true) sb.Append(", IO binding");
        if (r.Run.Shard is not null) sb.Append($", shard {M(r.Run.Shard)}");
        if (r.Run.MergedFrom is not null) sb.Append($", merged from {r.Run.MergedFrom.Count} shards");
        sb.Append($"\n- {M(r.Tool.Name)} {M(r.Tool.Version)}{(r.Tool.GitCommit is null ? "" : $" ({M(r.Tool.GitCommit)})")}\n\n");
        if (r.BreakPoint is not null) sb.Append($"**Break point:** {M(r.BreakPoint.Verdict)}\n\n");
        sb.Append("| level | size | length | family | samples | sequence accuracy | Wilson 95% lower | symbol accuracy | status |\n");
        sb.Append("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |\n");
        foreach (var l in r.Levels)
        {
            foreach (var f in l.Families.Append(l.Total!))
            {
                string family = f.Family == "all" ? "**all**" : M(f.Family);
                var (samples, sequence, wilson, symbol) = Cells(f);
                string status = f.Family == "all" ? M(LevelStatus.Describe(l)) : f.Samples == 0 ? "not graded" : "";
                sb.Append($"| {M(l.Name)} ({Mult(l)}) | {N(l.Size)} | {N(l.Length)} | {family} | {samples} | {sequence} | {wilson} | {symbol} | {status} |\n");
            }
        }
        if (r.Cases.Count > 0)
        {
            sb.Append("\n| pinned case | size | length | exact | first wrong position | symbol accuracy |\n| --- | ---: | ---: | --- | ---: | ---: |\n");
            foreach (var c in r.Cases)
                sb.Append($"| {M(c.Name)} | {N(c.Size)} | {N(c.Length)} | {(c.Status == "run" ? (c.Exact ? "yes" : "**no**") : M(c.Status))} | {(c.FirstWrong >= 0 ? N(c.FirstWrong) : "")} | {(c.Status == "run" ? Pct(c.SymbolAccuracy) : "")} |\n");
        }
        var notes = r.Levels.Where(l => l.Note is not null).Select(l => $"level {l.Name}: {LevelStatus.Describe(l)}")
            .Concat(r.Budget.Trims.Where(t => !r.Levels.Any(l => l.Note is not null && t.StartsWith($"level {l.Name}: ", StringComparison.Ordinal))))
            .Distinct().ToList();
        if (notes.Count > 0)
        {
            sb.Append("\n**Trimmed or skipped:**\n\n");
            foreach (var n in notes) sb.Append($"- {M(n)}\n");
        }
        if (r.Timing.Count > 0)
        {
            sb.Append("\n| level | length | examples | seconds | examples/s | token-steps/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
            foreach (var t in r.Timing)
                sb.Append($"| {M(t.Level)} | {N(t.Length)} | {t.Examples} | {t.Seconds.ToString("0.###", CultureInfo.InvariantCulture)} | {Rate(t.ExamplesPerSecond)} | {Rate(t.TokenStepsPerSecond)} |\n");
        }
        return sb.ToString();
    }

    /// <summary>The samples and accuracy cells of a table row: "not graded" rather than 0% where no sample ran,
    /// and "11 of 96" where fewer ran than planned.</summary>
    public static (string Samples, string Sequence, string Wilson, string Symbol) Cells(FamilyResult f)
    {
        if (f.Samples == 0) return ($"0 of {f.Planned}", "not graded", "-", "-");
        string samples = f.Samples == f.Planned ? f.Samples.ToString(CultureInfo.InvariantCulture) : $"{f.Samples} of {f.Planned}";
        return (samples, Pct(f.SequenceAccuracy), Pct(f.WilsonLower95), Pct(f.SymbolAccuracy));
    }

    /// <summary>Levels with no graded sample, as plot gaps at their length (or multiple): "1000x: not graded".</summary>
    public static List<Plot.Gap> NotGradedGaps(Results r, bool multiples = false) =>
        r.Levels.Where(LevelStatus.NotGraded).Select(l => new Plot.Gap(X(r, l, multiples), $"{l.Name}: not graded")).ToList();

    /// <summary>A level's x in plots: its length in tokens, or its size as a multiple of the training size.</summary>
    public static double X(Results r, LevelResult l, bool multiples) => multiples ? (double)l.Size / Math.Max(1, r.Model.TrainLength) : l.Length;

    /// <summary>Sequence accuracy per graded level: "all", then (without a <paramref name="prefix"/>) each family.</summary>
    public static List<Plot.Series> AccuracySeries(Results r, string? prefix = null, bool multiples = false)
    {
        var levels = r.Levels.Where(l => l.Total is { Samples: > 0 }).OrderBy(l => l.Length).ToList();
        var families = levels.SelectMany(l => l.Families).Where(f => f.Samples > 0).Select(f => f.Family).Distinct().ToList();
        var series = new List<Plot.Series> { new((prefix ?? "") + "all", levels.Select(l => (X(r, l, multiples), l.Total!.SequenceAccuracy)).ToList()) };
        if (prefix is null)
            foreach (var fam in families)
                series.Add(new(fam, levels.SelectMany(l => l.Families.Where(f => f.Family == fam && f.Samples > 0).Select(f => (X(r, l, multiples), f.SequenceAccuracy))).ToList()));
        return series;
    }

    public const string MultiplesAxis = "multiple of the training size (log scale)";

    public static string Html(Results r, IReadOnlyList<FailureExample> failures)
    {
        var sb = new StringBuilder();
        string title = $"{r.Model.Task}/{r.Model.Arch}: {r.Model.File}";
        sb.Append($"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{Plot.Esc(title)}</title>\n");
        sb.Append("<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td.l,th.l{text-align:left}code{word-break:break-all}mark{background:#f99}.bad{color:#b00}.ng{color:#777;font-style:italic}</style></head><body>\n");
        sb.Append($"<h1>{Plot.Esc(title)}</h1>\n<p>model sha256 <code>{r.Model.Sha256}</code>, trained at size {r.Model.TrainLength}{Plot.Esc(StepNote(r.Model))}; suite <b>{Plot.Esc(r.Suite.Name)}</b> (seed {r.Suite.Seed}); ");
        sb.Append($"{Plot.Esc(r.Run.Provider)} on {Plot.Esc(r.Run.Device)}, threads {(r.Run.Threads == 0 ? "default" : r.Run.Threads.ToString(CultureInfo.InvariantCulture))}, graph optimization {r.Run.GraphOptimization}; {Plot.Esc(r.Tool.Name)} {Plot.Esc(r.Tool.Version)}</p>\n");
        if (r.BreakPoint is not null) sb.Append($"<p><b>Break point:</b> {Plot.Esc(r.BreakPoint.Verdict)}</p>\n");
        sb.Append(Plot.Svg(AccuracySeries(r), $"sequence accuracy vs length: {r.Model.Task}/{r.Model.Arch}", gaps: NotGradedGaps(r), firstIsTotal: true));
        sb.Append(Plot.Svg(AccuracySeries(r, multiples: true), $"the same against the training size ({r.Model.TrainLength})", MultiplesAxis,
            gaps: NotGradedGaps(r, multiples: true), firstIsTotal: true));
        sb.Append("<table><tr><th class=l>level</th><th>size</th><th>length</th><th class=l>family</th><th>samples</th><th>sequence acc.</th><th>Wilson 95% lower</th><th>symbol acc.</th><th class=l>status</th></tr>\n");
        foreach (var l in r.Levels)
            foreach (var f in l.Families.Append(l.Total!))
            {
                var (samples, sequence, wilson, symbol) = Cells(f);
                string status = f.Family == "all" ? LevelStatus.Describe(l) : f.Samples == 0 ? "not graded" : "";
                string mark = f.Samples == 0 ? " class=ng" : f.Exact < f.Samples ? " class=bad" : "";
                sb.Append($"<tr><td class=l>{Plot.Esc(l.Name)} ({Mult(l)})</td><td>{N(l.Size)}</td><td>{N(l.Length)}</td><td class=l>{Plot.Esc(f.Family)}</td><td>{samples}</td>" +
                    $"<td{mark}>{sequence}</td><td>{wilson}</td><td>{symbol}</td><td class=l>{Plot.Esc(status)}</td></tr>\n");
            }
        sb.Append("</table>\n");
        if (r.Budget.Trims.Count > 0)
            sb.Append("<h2>Trimmed or skipped</h2><ul>" + string.Concat(r.Budget.Trims.Select(t => $"<li>{Plot.Esc(t)}</li>")) + "</ul>\n");
        sb.Append("<h2>Failure examples</h2>\n");
        if (failures.Count == 0) sb.Append("<p>none</p>\n");
        foreach (var g in failures.GroupBy(f => (f.Level, f.Family)))
        {
            sb.Append($"<h3>{Plot.Esc(g.Key.Level)} / {Plot.Esc(g.Key.Family)}</h3>\n<table><tr><th>#</th><th>first wrong</th><th class=l>input / expected / got (around the first wrong position)</th></tr>\n");
            foreach (var f in g.Take(5))
                sb.Append($"<tr><td>{f.Index}</td><td>{N(f.FirstWrong)}</td><td class=l><code>{Around(f, f.InputWindow, f.Input)}<br>{Around(f, f.ExpectedWindow, f.Expected)}<br>{Around(f, f.GotWindow, f.Got, mark: true)}</code>" +
                    (Reproduce(r, f) is { } again ? $"<br><small>again: <code>{Plot.Esc(again)}</code></small>" : "") + "</td></tr>\n");
            sb.Append("</table>\n");
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    /// <summary>The `toolchain sample` command that prints a failed example again: the record's own, or for records of
    /// runs made before failures carried one (the zoo's), the same command made from the results' task and suite.</summary>
    private static string? Reproduce(Results r, FailureExample f) =>
        f.Reproduce ?? (f.Family.StartsWith("case:", StringComparison.Ordinal) || r.Suite.LevelFilter is not null && !r.Suite.LevelFilter.Contains(f.Level)
            ? null
            : FailureExample.SampleCommand(r.Model.Task, r.Suite.Name, f.Level, f.Family, f.Index, f.Size));

    /// <summary>The symbols around the first wrong position: the stored window (records of older runs have
    /// only the whole sequence, cut here to 60 symbols either side).</summary>
    private static string Around(FailureExample f, string? window, string whole, bool mark = false) =>
        window is null
            ? Window(whole, f.FirstWrong, 60, mark, before: false, after: false)
            : Window(window, f.FirstWrong - f.WindowOffset, FailureExample.WindowTokens, mark, before: f.WindowOffset > 0, after: f.WindowOffset + window.Length < f.Length);

    /// <summary>Up to <paramref name="radius"/> symbols either side of a position, the position itself marked when
    /// asked; "…" where the sequence goes on (cut here, or <paramref name="before"/>/<paramref name="after"/> the text).</summary>
    private static string Window(string s, int pos, int radius, bool mark, bool before, bool after)
    {
        pos = Math.Max(0, pos);
        int b = Math.Min(s.Length, pos + radius + 1), a = Math.Min(b, Math.Max(0, pos - radius));
        var sb = new StringBuilder();
        if (a > 0 || before) sb.Append('…');
        sb.Append(Plot.Esc(s[a..Math.Min(pos, b)]));
        if (pos < s.Length)
        {
            string c = Plot.Esc(s[pos].ToString());
            sb.Append(mark ? $"<mark>{c}</mark>" : c);
            sb.Append(Plot.Esc(s[(pos + 1)..b]));
        }
        if (b < s.Length || after) sb.Append('…');
        return sb.ToString();
    }
}
