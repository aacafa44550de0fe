using System.Globalization;
using System.Reflection;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Toolchain.Suites;

/// <summary>A suite file that cannot be used: names the file, line, column and field.</summary>
public sealed class SuiteFormatException(string file, long line, long column, string field, string problem)
    : Exception($"{file}:{line}:{column}: {(field.Length > 0 ? $"field '{field}': " : "")}{problem}")
{
    public string File { get; } = file;
    public long Line { get; } = line;
    public string Field { get; } = field;
}

/// <summary>
/// Reads and writes suite definitions as YAML (JSON is accepted too, being YAML). Format:
/// <code>
/// name: standard
/// description: random and hard cases at 1x..1000x
/// seed: 20261126
/// levels:
///   - multiple: 1            # or `size: 2000` for an absolute size; optional `name:`
///     samples: {random: 64, hard: 8}   # or one number for every family
///   - size: 8
///     exhaustive: true       # every input of that size
/// cases:
///   - name: ones-plus-one
///     task: badd             # optional: only for this task
///     operands: ["2^2000-1", "1"]
///     size: 2000             # optional: digits per operand
///   - name: two-times-two
///     task: bmul
///     operands: ["10", "10"]
///     notation: task         # digits in the task's base, most significant first
/// </code>
/// Unknown fields are errors, so a typo is caught rather than ignored.
/// </summary>
public static class SuiteFile
{
    /// <summary>Names of the suites shipped inside the library.</summary>
    public static IReadOnlyList<string> BuiltInNames =>
        typeof(SuiteFile).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("Toolchain.Suites.", StringComparison.Ordinal) && n.EndsWith(".yaml", StringComparison.Ordinal))
            .Select(n => n["Toolchain.Suites.".Length..^".yaml".Length]).Order(StringComparer.Ordinal).ToArray();

    /// <summary>A built-in suite by name, or a file path.</summary>
    public static SuiteDefinition Resolve(string nameOrPath)
    {
        if (BuiltInNames.Contains(nameOrPath)) return LoadBuiltIn(nameOrPath);
        if (File.Exists(nameOrPath)) return Load(nameOrPath);
        throw new FileNotFoundException($"no suite named '{nameOrPath}' and no such file; built-in suites: {string.Join(", ", BuiltInNames)}");
    }

    public static SuiteDefinition LoadBuiltIn(string name)
    {
        using var stream = typeof(SuiteFile).Assembly.GetManifestResourceStream($"Toolchain.Suites.{name}.yaml")
            ?? throw new FileNotFoundException($"no built-in suite '{name}'; built-in suites: {string.Join(", ", BuiltInNames)}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return Parse(reader.ReadToEnd(), $"<built-in>/{name}.yaml");
    }

    public static SuiteDefinition Load(string path) => Parse(File.ReadAllText(path), path);

    public static SuiteDefinition Parse(string text, string fileName)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new SuiteFormatException(fileName, e.Start.Line, e.Start.Column, "", "not valid YAML: " + (e.InnerException?.Message ?? e.Message));
        }
        catch (InvalidOperationException e)
        {
            throw new SuiteFormatException(fileName, 1, 1, "", "not valid YAML: " + e.Message);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new SuiteFormatException(fileName, 1, 1, "", "a suite file is one YAML mapping (name, seed, levels, cases)");
        return new Reader(fileName).Suite(root);
    }

    /// <summary>Canonical YAML for a suite; <see cref="Parse"/> reads it back to an equal definition.</summary>
    public static string ToYaml(SuiteDefinition suite)
    {
        var sb = new StringBuilder();
        sb.Append("name: ").Append(Quote(suite.Name)).Append('\n');
        sb.Append("description: ").Append(Quote(suite.Description)).Append('\n');
        sb.Append("seed: ").Append(suite.Seed.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("levels:\n");
        foreach (var l in suite.Levels)
        {
            sb.Append("  - name: ").Append(Quote(l.Name)).Append('\n');
            if (l.Multiple is { } m) sb.Append("    multiple: ").Append(m.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            if (l.Size is { } s) sb.Append("    size: ").Append(s.ToString(CultureInfo.InvariantCulture)).Append('\n');
            if (l.Exhaustive) sb.Append("    exhaustive: true\n");
            else
            {
                sb.Append("    samples: {");
                sb.Append(string.Join(", ", l.Samples.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                    .Select(kv => $"{Quote(kv.Key)}: {kv.Value.ToString(CultureInfo.InvariantCulture)}")));
                sb.Append("}\n");
            }
        }
        if (suite.Cases.Count == 0) sb.Append("cases: []\n");
        else
        {
            sb.Append("cases:\n");
            foreach (var c in suite.Cases)
            {
                sb.Append("  - name: ").Append(Quote(c.Name)).Append('\n');
                if (c.Task is not null) sb.Append("    task: ").Append(Quote(c.Task)).Append('\n');
                if (c.Operands is not null) sb.Append("    operands: [").Append(string.Join(", ", c.Operands.Select(Quote))).Append("]\n");
                if (c.Symbols is not null) sb.Append("    symbols: ").Append(Quote(c.Symbols)).Append('\n');
                if (c.Size is { } s) sb.Append("    size: ").Append(s.ToString(CultureInfo.InvariantCulture)).Append('\n');
                if (c.Notation != "decimal") sb.Append("    notation: ").Append(Quote(c.Notation)).Append('\n');
            }
        }
        return sb.ToString();
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    /// <summary>Typed reads from the YAML tree, each error pointing at the node's line and the field's path.</summary>
    private sealed class Reader(string file)
    {
        private SuiteFormatException Error(YamlNode node, string field, string problem) =>
            new(file, node.Start.Line, node.Start.Column, field, problem);

        public SuiteDefinition Suite(YamlMappingNode root)
        {
            var map = Fields(root, "", ["name", "description", "seed", "levels", "cases"], ["name", "seed", "levels"]);
            string name = String(map["name"], "name");
            string description = map.TryGetValue("description", out var d) ? String(d, "description") : "";
            ulong seed = ULong(map["seed"], "seed");
            if (map["levels"] is not YamlSequenceNode levelsNode || levelsNode.Children.Count == 0)
                throw Error(map["levels"], "levels", "expected a non-empty list of levels");
            var levels = levelsNode.Children.Select((n, i) => Level(n, $"levels[{i}]")).ToList();
            var duplicate = levels.GroupBy(l => l.Name).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
                throw Error(levelsNode, "levels", $"two levels are named '{duplicate.Key}'; give them distinct `name:`s");
            var cases = new List<SuiteCase>();
            if (map.TryGetValue("cases", out var casesNode))
            {
                if (casesNode is not YamlSequenceNode seq) throw Error(casesNode, "cases", "expected a list of cases");
                cases.AddRange(seq.Children.Select((n, i) => Case(n, $"cases[{i}]")));
            }
            return new SuiteDefinition(name, description, seed, levels, cases);
        }

        private SuiteLevel Level(YamlNode node, string path)
        {
            if (node is not YamlMappingNode m) throw Error(node, path, "expected a mapping with `multiple:` or `size:`");
            var map = Fields(m, path, ["name", "multiple", "size", "samples", "exhaustive"], []);
            double? multiple = map.TryGetValue("multiple", out var mu) ? PositiveDouble(mu, path + ".multiple") : null;
            if (multiple > SuiteLevel.MaxMultiple)
                throw Error(mu!, path + ".multiple",
                    $"{multiple:G4} times the training size cannot be run; the largest multiple is {SuiteLevel.MaxMultiple:N0}");
            int? size = map.TryGetValue("size", out var sz) ? Int(sz, path + ".size", 1) : null;
            if (multiple is null == size is null)
                throw Error(node, path, "give exactly one of `multiple:` (times the training size) and `size:` (absolute)");
            bool exhaustive = map.TryGetValue("exhaustive", out var ex) && Bool(ex, path + ".exhaustive");
            if (exhaustive && size is null) throw Error(ex!, path + ".exhaustive", "an exhaustive level needs an absolute `size:`");
            var samples = new Dictionary<string, int>(StringComparer.Ordinal);
            if (map.TryGetValue("samples", out var s))
            {
                if (exhaustive) throw Error(s, path + ".samples", "an exhaustive level enumerates every input; remove `samples:`");
                if (s is YamlScalarNode) samples["*"] = Int(s, path + ".samples", 0);
                else if (s is YamlMappingNode sm)
                    foreach (var (k, v) in sm.Children)
                    {
                        string family = String(k, path + ".samples");
                        samples[family] = Int(v, $"{path}.samples.{family}", 0);
                    }
                else throw Error(s, path + ".samples", "expected a number or a mapping family -> number");
            }
            else if (!exhaustive) throw Error(node, path, "missing `samples:` (a number, or a mapping family -> number)");
            string name = map.TryGetValue("name", out var n) ? String(n, path + ".name") : SuiteLevel.DefaultName(multiple, size);
            return new SuiteLevel(name, multiple, size, samples, exhaustive);
        }

        private SuiteCase Case(YamlNode node, string path)
        {
            if (node is not YamlMappingNode m) throw Error(node, path, "expected a mapping with `name:` and `operands:` or `symbols:`");
            var map = Fields(m, path, ["name", "task", "operands", "symbols", "size", "notation"], ["name"]);
            string name = String(map["name"], path + ".name");
            string? task = map.TryGetValue("task", out var t) ? String(t, path + ".task") : null;
            if (task is not null && TaskRegistry.TryGet(task) is null)
                throw Error(t!, path + ".task", $"unknown task '{task}'; known tasks: {string.Join(", ", TaskRegistry.All.Select(x => x.Name))}");
            List<string>? operands = null;
            if (map.TryGetValue("operands", out var o))
            {
                if (o is not YamlSequenceNode os || os.Children.Count != 2)
                    throw Error(o, path + ".operands", "expected a list of two operands, e.g. [\"2^20-1\", \"1\"]");
                operands = os.Children.Select((x, i) => String(x, $"{path}.operands[{i}]")).ToList();
                if (!map.TryGetValue("notation", out var given) || (given as YamlScalarNode)?.Value == "decimal")
                    for (int i = 0; i < operands.Count; i++)
                    {
                        // checked here, so a bad expression is refused with this file's line and column
                        try { Expression.Evaluate(operands[i]); }
                        catch (FormatException e) { throw Error(os.Children[i], $"{path}.operands[{i}]", e.Message); }
                    }
            }
            string? symbols = map.TryGetValue("symbols", out var sy) ? String(sy, path + ".symbols") : null;
            if (operands is null == symbols is null)
                throw Error(node, path, "give exactly one of `operands:` (arithmetic tasks) and `symbols:` (sequence tasks)");
            int? size = map.TryGetValue("size", out var sz) ? Int(sz, path + ".size", 1) : null;
            string notation = map.TryGetValue("notation", out var no) ? String(no, path + ".notation") : "decimal";
            if (notation is not ("decimal" or "task"))
                throw Error(no!, path + ".notation", $"expected 'decimal' or 'task', got '{notation}'");
            var c = new SuiteCase(name, task, operands, symbols, size, notation);
            if (task is not null)
            {
                try { c.Encode(TaskRegistry.Get(task)); }
                catch (Exception e) when (e is FormatException or ArgumentException)
                {
                    throw Error(node, path, e.Message);
                }
            }
            return c;
        }

        private Dictionary<string, YamlNode> Fields(YamlMappingNode node, string path, string[] allowed, string[] required)
        {
            var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (k, v) in node.Children)
            {
                string key = k is YamlScalarNode ks ? ks.Value ?? "" : "";
                string field = path.Length == 0 ? key : $"{path}.{key}";
                if (!allowed.Contains(key))
                    throw Error(k, field, $"unknown field; expected one of: {string.Join(", ", allowed)}");
                if (!result.TryAdd(key, v)) throw Error(k, field, "given twice");
            }
            foreach (var r in required)
                if (!result.ContainsKey(r))
                    throw Error(node, path.Length == 0 ? r : $"{path}.{r}", "missing");
            return result;
        }

        private string Scalar(YamlNode node, string field) =>
            node is YamlScalarNode s && s.Value is not null ? s.Value : throw Error(node, field, "expected a single value");

        private string String(YamlNode node, string field)
        {
            string v = Scalar(node, field);
            if (v.Length == 0) throw Error(node, field, "must not be empty");
            return v;
        }

        private int Int(YamlNode node, string field, int min)
        {
            string v = Scalar(node, field).Replace("_", "");
            if (!int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) || i < min)
                throw Error(node, field, $"expected a whole number >= {min}, got '{v}'");
            return i;
        }

        private ulong ULong(YamlNode node, string field)
        {
            string v = Scalar(node, field).Replace("_", "");
            return ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out ulong u)
                ? u : throw Error(node, field, $"expected a non-negative whole number, got '{v}'");
        }

        private double PositiveDouble(YamlNode node, string field)
        {
            string v = Scalar(node, field);
            return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && x > 0 && double.IsFinite(x)
                ? x : throw Error(node, field, $"expected a positive number, got '{v}'");
        }

        private bool Bool(YamlNode node, string field) => Scalar(node, field) switch
        {
            "true" or "yes" => true,
            "false" or "no" => false,
            var v => throw Error(node, field, $"expected true or false, got '{v}'"),
        };
    }
}
