using System.Text.Json.Nodes;

namespace Toolchain.Train;

/// <summary>The settings in which two run configurations differ, found by comparing their JSON objects property
/// by property, so settings added later are covered without a change here.</summary>
public static class RunConfigDifference
{
    /// <summary>(name, value in <paramref name="saved"/>, value in <paramref name="now"/>) for each setting that differs.</summary>
    public static List<(string Name, string Saved, string Now)> Fields(RunConfig saved, RunConfig now)
    {
        var (a, b, keys) = Differing(saved, now);
        return keys.Select(key => (key, Show(a[key]), Show(b[key]))).ToList();
    }

    /// <summary>The settings of <paramref name="other"/> that differ from <paramref name="reference"/>, with
    /// <paramref name="other"/>'s values as JSON (a zoo card's earlier warm-start stages), leaving out <paramref name="ignore"/>.</summary>
    public static JsonObject Values(RunConfig other, RunConfig reference, params string[] ignore)
    {
        var (a, _, keys) = Differing(other, reference);
        var values = new JsonObject();
        foreach (var key in keys.Where(k => !ignore.Contains(k))) values[key] = a[key]?.DeepClone();
        return values;
    }

    private static (JsonObject A, JsonObject B, List<string> Keys) Differing(RunConfig x, RunConfig y)
    {
        var a = JsonNode.Parse(x.ToJson())!.AsObject();
        var b = JsonNode.Parse(y.ToJson())!.AsObject();
        return (a, b, a.Select(p => p.Key).Union(b.Select(p => p.Key)).Where(key => !JsonNode.DeepEquals(a[key], b[key])).ToList());
    }

    /// <summary>"maps 24 in the checkpoint, 32 now; dropout ..." on one line.</summary>
    public static string Describe(RunConfig saved, RunConfig now)
    {
        var fields = Fields(saved, now);
        return fields.Count == 0 ? "no setting differs"
            : string.Join("; ", fields.Select(f => $"{f.Name} {f.Saved} in the checkpoint, {f.Now} now"));
    }

    private static string Show(JsonNode? value) => value switch
    {
        null => "(absent)",
        JsonValue v when v.TryGetValue(out string? s) => $"'{s}'",
        _ => value.ToJsonString(),
    };
}
