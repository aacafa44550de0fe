using System.Globalization;
using System.Text;
using System.Xml.Linq;
using Toolchain.Suites;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Toolchain.Evaluate;

/// <summary>Side-by-side view of several results.json files: a table (models x levels) and an overlay plot.</summary>
public static class Comparer
{
    public static List<(string Path, Results Results)> Load(IEnumerable<string> paths)
    {
        var list = new List<(string, Results)>();
        foreach (var p in paths)
        {
            string file = Directory.Exists(p) ? Path.Combine(p, "results.json") : p;
            if (!File.Exists(file)) throw new EvaluationException($"'{p}' does not exist; pass results.json files (or evaluation folders)");
            var r = ReadResults(file);
            if (r.Schema != 1) throw new EvaluationException($"'{file}' has results schema {r.Schema}; this toolchain reads schema 1");
            list.Add((file, r));
        }
        return list;
    }

    /// <summary>A results.json, or a refusal that names the file and what was expected (no parser internals).</summary>
    private static Results ReadResults(string file)
    {
        const string expected = "a results.json written by `toolchain eval`, `merge` or `report` " +
            "(a JSON object with schema, model, suite and levels)";
        Results? r;
        try { r = System.Text.Json.JsonSerializer.Deserialize<Results>(File.ReadAllText(file), Json.Indented); }
        catch (System.Text.Json.JsonException e)
        {
            string where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            throw new EvaluationException($"'{file}' is not a results file{where}; expected {expected}");
        }
        if (r is null || r.Model is null || r.Suite is null || r.Levels is null || r.Run is null)
            throw new EvaluationException($"'{file}' is not a results file (it lacks schema, model, suite or levels); expected {expected}");
        return r;
    }

    /// <summary>The overlay plot against multiples of each model's training size.</summary>
    public const string MultiplesPlot = "compare-multiples.svg";

    public static string Label(Results r) => $"{r.Model.Task}/{r.Model.Arch} ({r.Model.File})";

    /// <summary>Level names in order of first appearance across the results.</summary>
    public static List<string> LevelNames(IEnumerable<Results> results) =>
        results.SelectMany(r => r.Levels.Select(l => l.Name)).Distinct().ToList();

    /// <summary>The models x levels table; with <paramref name="graded"/> (one per result), a last column saying
    /// when and how each row was graded ("cached (zoo, published ...)", "now (...)").</summary>
    public static string Table(IReadOnlyList<Results> results, bool markdown, IReadOnlyList<string>? graded = null)
    {
        var levels = LevelNames(results);
        var header = new List<string> { "model" };
        header.AddRange(levels);
        header.Add("break point");
        if (graded is not null) header.Add("graded");
        var rows = results.Select((r, index) =>
        {
            var row = new List<string> { Label(r) };
            foreach (var name in levels)
            {
                var l = r.Levels.FirstOrDefault(x => x.Name == name);
                row.Add(l is null ? "-" : l.Total is { Samples: > 0 } t
                    ? ReportWriter.Pct(t.SequenceAccuracy) + (l.Status is LevelStatus.Complete ? "" : "*")
                    : "not graded");
            }
            row.Add(r.BreakPoint is { } bp ? bp.ExactUpTo.ToString("N0", CultureInfo.InvariantCulture) : "-");
            if (graded is not null) row.Add(graded[index]);
            return row;
        }).ToList();
        var sb = new StringBuilder();
        if (markdown)
        {
            // model names and level names come from the results files: escaped
            sb.Append("| ").Append(string.Join(" | ", header.Select(MarkdownText.Esc))).Append(" |\n|");
            sb.Append(string.Concat(header.Select((h, i) => i == 0 || h == "graded" ? " --- |" : " ---: |"))).Append('\n');
            foreach (var row in rows) sb.Append("| ").Append(string.Join(" | ", row.Select(MarkdownText.Esc))).Append(" |\n");
        }
        else
        {
            var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToList();
            bool Left(int i) => i == 0 || header[i] == "graded";
            sb.Append(string.Join("  ", header.Select((h, i) => Left(i) ? h.PadRight(widths[i]) : h.PadLeft(widths[i]))).TrimEnd()).Append('\n');
            foreach (var row in rows) sb.Append(string.Join("  ", row.Select((c, i) => Left(i) ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd()).Append('\n');
        }
        // a Markdown table ends at a blank line; without one the footnote renders as one more row
        if (markdown) sb.Append('\n');
        sb.Append(Footnote(results)).Append('\n');
        return sb.ToString();
    }

    /// <summary>What the table's marks and exhaustive level names mean, a line each (a Markdown paragraph).</summary>
    public static string Footnote(IReadOnlyList<Results> results)
    {
        var lines = new List<string>
        {
            "Sequence accuracy over all families; * = level trimmed, partial or incomplete;",
            "not graded = skipped for time or memory (the model's report says why)",
        };
        lines.AddRange(results.SelectMany(r => r.Levels.Where(l => l.Exhaustive).Select(l => (l.Name, l.Size))).Distinct()
            .Select(l => $"{l.Name} = every input of size {l.Size} (the exhaustive level)"));
        return string.Join("\n", lines);
    }

    public static void Write(IReadOnlyList<Results> results, string outDir, IReadOnlyList<string>? graded = null)
    {
        Directory.CreateDirectory(outDir);
        List<Plot.Series> Series(bool multiples) =>
            results.Select(r => new Plot.Series(Label(r), ReportWriter.AccuracySeries(r, "", multiples)[0].Points)).ToList();
        string svg = Plot.Svg(Series(multiples: false), "sequence accuracy vs length");
        string svgMultiples = Plot.Svg(Series(multiples: true), "sequence accuracy vs multiple of the training size", ReportWriter.MultiplesAxis);
        AtomicFile.Write(Path.Combine(outDir, "compare.svg"), svg);
        AtomicFile.Write(Path.Combine(outDir, MultiplesPlot), svgMultiples);
        AtomicFile.Write(Path.Combine(outDir, "compare.md"), Table(results, markdown: true, graded));
        var html = new StringBuilder("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>toolchain compare</title><style>body{font-family:sans-serif;margin:2em}</style></head><body>\n<h1>Comparison</h1>\n");
        html.Append("<p>A point per graded level; a model's missing point is a level it did not grade (see its report for why).</p>\n");
        html.Append(svg).Append(svgMultiples).Append("<pre>").Append(Plot.Esc(Table(results, markdown: false, graded))).Append("</pre>\n</body></html>\n");
        AtomicFile.Write(Path.Combine(outDir, "compare.html"), html.ToString());
    }
}

/// <summary>A gate rule: for results of a task/arch, a metric at a level (and family) must be within bounds.</summary>
public sealed record GateRule(string? Task, string? Arch, string? Level, string Family, string Metric, double? Min, double? Max, int Line)
{
    public static readonly string[] Metrics = ["sequence_accuracy", "symbol_accuracy", "wilson_lower_95", "break_point"];

    public string Describe()
    {
        var sb = new StringBuilder($"{Task ?? "*"}/{Arch ?? "*"}");
        if (Metric != "break_point") sb.Append($" {Level}{(Family == "all" ? "" : "/" + Family)}");
        sb.Append($" {Metric}");
        if (Min is { } mn) sb.Append($" >= {mn.ToString(CultureInfo.InvariantCulture)}");
        if (Max is { } mx) sb.Append($" <= {mx.ToString(CultureInfo.InvariantCulture)}");
        return sb.ToString();
    }
}

public sealed record GateOutcome(GateRule Rule, string Model, double? Value, bool Passed, string Message);

/// <summary>Gates for CI: rules from YAML, checked against results; JUnit XML and Markdown reports.</summary>
public static class Gates
{
    /// <summary>Reads a gates file: a YAML list of rules, or a mapping with a `gates:` list. Each rule:
    /// <c>{task, arch, level, family, metric, min, max}</c>; task/arch omitted or "*" match any.</summary>
    public static List<GateRule> Load(string path) => LoadHashed(path).Rules;

    /// <summary><see cref="Load"/>, with the SHA-256 of the very bytes the rules were parsed from (read once), for a
    /// card that names the file it was judged by.</summary>
    public static (List<GateRule> Rules, string Sha256) LoadHashed(string path)
    {
        if (!File.Exists(path)) throw new EvaluationException($"gates file '{path}' does not exist");
        var bytes = File.ReadAllBytes(path);
        // decoded as File.ReadAllText does: UTF-8 unless a byte-order mark says otherwise, the mark dropped
        using var reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return (Parse(path, reader.ReadToEnd()), Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)));
    }

    private static List<GateRule> Parse(string path, string text)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw new SuiteFormatException(path, e.Start.Line, e.Start.Column, "", "not valid YAML: " + (e.InnerException?.Message ?? e.Message)); }
        if (stream.Documents.Count != 1) throw new SuiteFormatException(path, 1, 1, "", "a gates file is one YAML list of rules");
        var root = stream.Documents[0].RootNode;
        if (root is YamlMappingNode m)
        {
            var key = m.Children.Keys.OfType<YamlScalarNode>().FirstOrDefault(k => k.Value == "gates");
            if (key is null || m.Children.Count != 1) throw new SuiteFormatException(path, root.Start.Line, root.Start.Column, "", "expected a list of rules, or a mapping with the single key 'gates'");
            root = m.Children[key];
        }
        if (root is not YamlSequenceNode seq) throw new SuiteFormatException(path, root.Start.Line, root.Start.Column, "", "expected a list of rules");
        var rules = new List<GateRule>();
        foreach (var node in seq)
        {
            if (node is not YamlMappingNode rule) throw new SuiteFormatException(path, node.Start.Line, node.Start.Column, "", "a rule is a mapping like {task: badd, arch: dngpu, level: 100x, metric: sequence_accuracy, min: 0.99}");
            string? task = null, arch = null, level = null, metric = null, family = null;
            double? min = null, max = null;
            foreach (var (k, v) in rule.Children)
            {
                string name = (k as YamlScalarNode)?.Value ?? "";
                string val = (v as YamlScalarNode)?.Value ?? throw new SuiteFormatException(path, v.Start.Line, v.Start.Column, name, "must be a single value");
                switch (name)
                {
                    case "task": task = val == "*" ? null : val; break;
                    case "arch": arch = val == "*" ? null : val; break;
                    case "level": level = val; break;
                    case "family": family = val; break;
                    case "metric":
                        if (!GateRule.Metrics.Contains(val)) throw new SuiteFormatException(path, v.Start.Line, v.Start.Column, name, $"unknown metric '{val}'; metrics: {string.Join(", ", GateRule.Metrics)}");
                        metric = val; break;
                    case "min": min = Number(path, v, name, val); break;
                    case "max": max = Number(path, v, name, val); break;
                    default: throw new SuiteFormatException(path, k.Start.Line, k.Start.Column, name, "unknown field; rules have task, arch, level, family, metric, min, max");
                }
            }
            if (metric is null) throw new SuiteFormatException(path, rule.Start.Line, rule.Start.Column, "metric", "missing");
            if (min is null && max is null) throw new SuiteFormatException(path, rule.Start.Line, rule.Start.Column, "min", "a rule needs min or max");
            if (level is null && metric != "break_point") throw new SuiteFormatException(path, rule.Start.Line, rule.Start.Column, "level", "missing (every metric but break_point is per level)");
            rules.Add(new GateRule(task, arch, level, family ?? "all", metric, min, max, (int)rule.Start.Line));
        }
        return rules;
    }

    private static double Number(string path, YamlNode v, string name, string val) =>
        double.TryParse(val, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d
            : throw new SuiteFormatException(path, v.Start.Line, v.Start.Column, name, $"'{val}' is not a number");

    public static List<GateOutcome> Check(IReadOnlyList<GateRule> rules, IReadOnlyList<Results> results)
    {
        var outcomes = new List<GateOutcome>();
        foreach (var rule in rules)
        {
            var matched = results.Where(r => (rule.Task is null || r.Model.Task == rule.Task) && (rule.Arch is null || r.Model.Arch == rule.Arch)).ToList();
            if (matched.Count == 0)
            {
                outcomes.Add(new GateOutcome(rule, "-", null, false, "no results match this rule"));
                continue;
            }
            foreach (var r in matched)
            {
                string model = Comparer.Label(r);
                double? value = null;
                string? problem = null;
                if (rule.Metric == "break_point")
                {
                    if (r.BreakPoint is null) problem = "no break point in these results (run eval with --break-point)";
                    else value = r.BreakPoint.ExactUpTo;
                }
                else
                {
                    var level = r.Levels.FirstOrDefault(l => l.Name == rule.Level);
                    var fam = level is null ? null : rule.Family == "all" ? level.Total : level.Families.FirstOrDefault(f => f.Family == rule.Family);
                    if (level is null) problem = $"no level '{rule.Level}' in these results";
                    else if (fam is null || fam.Samples == 0) problem = $"level '{rule.Level}' family '{rule.Family}' has no samples ({level.Status})";
                    else value = rule.Metric switch
                    {
                        "sequence_accuracy" => fam.SequenceAccuracy,
                        "symbol_accuracy" => fam.SymbolAccuracy,
                        _ => fam.WilsonLower95,
                    };
                }
                if (value is not { } v)
                {
                    outcomes.Add(new GateOutcome(rule, model, null, false, problem!));
                    continue;
                }
                bool ok = (rule.Min is not { } mn || v >= mn) && (rule.Max is not { } mx || v <= mx);
                string shown = v.ToString("0.####", CultureInfo.InvariantCulture);
                outcomes.Add(new GateOutcome(rule, model, v, ok, ok ? $"{shown} passes" : $"{shown} is out of bounds"));
            }
        }
        return outcomes;
    }

    public static string JUnit(IReadOnlyList<GateOutcome> outcomes)
    {
        var suite = new XElement("testsuite",
            new XAttribute("name", "toolchain gates"),
            new XAttribute("tests", outcomes.Count),
            new XAttribute("failures", outcomes.Count(o => !o.Passed)),
            new XAttribute("errors", 0),
            outcomes.Select(o =>
            {
                var tc = new XElement("testcase", new XAttribute("classname", "gates." + o.Model), new XAttribute("name", o.Rule.Describe()));
                if (!o.Passed) tc.Add(new XElement("failure", new XAttribute("message", o.Message), $"{o.Rule.Describe()} (rule at line {o.Rule.Line}): {o.Model}: {o.Message}"));
                return tc;
            }));
        var doc = new XDocument(new XDeclaration("1.0", "utf-8", null), new XElement("testsuites", suite));
        return doc.Declaration + "\n" + doc.Root!.ToString() + "\n";
    }

    public static string Markdown(IReadOnlyList<GateOutcome> outcomes)
    {
        var sb = new StringBuilder();
        int failed = outcomes.Count(o => !o.Passed);
        sb.Append($"### Gates: {(failed == 0 ? "all passed" : $"{failed} of {outcomes.Count} failed")}\n\n| result | rule | model | value |\n| --- | --- | --- | ---: |\n");
        foreach (var o in outcomes)
        {
            // rules, model names and messages come from the gates and results files: escaped
            string value = o.Value is { } v ? v.ToString("0.####", CultureInfo.InvariantCulture) : MarkdownText.Esc(o.Message);
            sb.Append($"| {(o.Passed ? "pass" : "**FAIL**")} | {MarkdownText.Esc(o.Rule.Describe())} | {MarkdownText.Esc(o.Model)} | {value} |\n");
        }
        return sb.ToString();
    }
}
