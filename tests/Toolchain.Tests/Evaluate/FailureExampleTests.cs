using System.Text.Json.Nodes;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Tests.Evaluate;

/// <summary>failures.jsonl stays small at long lengths: each sequence keeps its ends, and a window around the
/// first wrong position is stored whole.</summary>
public class FailureExampleTests
{
    [Fact]
    public void A_long_sequence_keeps_its_first_and_last_100_tokens_around_a_count_of_the_rest()
    {
        var task = TaskRegistry.Get("copy");
        var tokens = Enumerable.Range(0, 41_001).Select(i => 1 + i % 2).ToArray(); // 0101...
        string capped = FailureExample.Cap(task, tokens);
        string whole = task.Render(tokens);
        capped.Should().Be(whole[..100] + "…(40,801 more)…" + whole[^100..]);
        FailureExample.Cap(task, tokens[..200]).Should().Be(whole[..200]);

        var got = (int[])tokens.Clone();
        got[30_000] = 0;
        var f = FailureExample.Create(task, "1000x", "random", 3, 41_001, 30_000, 1, tokens, tokens, got);
        f.Length.Should().Be(41_001);
        f.Truncated.Should().BeTrue();
        f.WindowOffset.Should().Be(29_960);
        f.ExpectedWindow.Should().Be(whole[29_960..30_041]);
        f.GotWindow.Should().Be(whole[29_960..30_000] + "_" + whole[30_001..30_041]);
        f.InputWindow.Should().Be(f.ExpectedWindow);
        Json.Serialize(f, indented: false).Length.Should().BeLessThan(1_500);

        // near the start the window begins at 0; near the end it stops at the last token
        f = FailureExample.Create(task, "1000x", "random", 3, 41_001, 5, 1, tokens, tokens, got);
        (f.WindowOffset, f.ExpectedWindow!.Length).Should().Be((0, 46));
        f = FailureExample.Create(task, "1000x", "random", 3, 41_001, 40_990, 1, tokens, tokens, got);
        (f.WindowOffset, f.ExpectedWindow!.Length).Should().Be((40_950, 51));
    }

    [Fact]
    public void Failures_jsonl_caps_each_string_keeps_the_window_at_the_first_wrong_position_and_20_per_family()
    {
        using var tmp = new TempDir();
        // copy of size 300 that is wrong from position 250 on (it predicts PAD there)
        string model = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 250, trainLength: 300), tmp.Path, "broken.onnx");
        var (code, _, err) = CliRunner.InProcess("eval", model, "--levels", "1x", "--out", tmp["out"], "--provider", "cpu");
        code.Should().Be(0, err);

        var task = TaskRegistry.Get("copy");
        var suite = SuiteFile.LoadBuiltIn("standard");
        var level = suite.Resolve(task, 300).Single(l => l.Name == "1x");
        var lines = File.ReadAllLines(tmp["out/failures.jsonl"]).Select(l => JsonNode.Parse(l)!).ToList();
        lines.GroupBy(f => (string)f["family"]!).Should().HaveCount(level.Counts.Count)
            .And.OnlyContain(g => g.Count() == Math.Min(20, level.Counts.Single(c => c.Family == g.Key).Count)); // the per-(level, family) cap
        foreach (var f in lines)
        {
            var example = suite.Instance(task, level, (string)f["family"]!, (int)f["index"]!);
            string input = task.Render(example.Input), expected = task.Render(example.Target);
            ((int)f["length"]!).Should().Be(300);
            ((bool)f["truncated"]!).Should().BeTrue();
            ((string)f["input"]!).Should().Be(input[..100] + "…(100 more)…" + input[200..]);
            ((string)f["expected"]!).Should().Be(expected[..100] + "…(100 more)…" + expected[200..]);
            ((string)f["got"]!).Should().Be(input[..100] + "…(100 more)…" + input[200..250] + new string('_', 50));
            ((int)f["first_wrong"]!).Should().Be(250);
            ((int)f["window_offset"]!).Should().Be(210);
            ((string)f["expected_window"]!).Should().Be(expected[210..291]);
            ((string)f["input_window"]!).Should().Be(input[210..291]);
            ((string)f["got_window"]!).Should().Be(input[210..250] + new string('_', 41));
        }
        new FileInfo(tmp["out/failures.jsonl"]).Length.Should().BeLessThan(lines.Count * 1_500L);
        UnitLog.Load(tmp["out/units.jsonl"]).SelectMany(u => u.Failures).Should().OnlyContain(f => f.Input.Length < 220);
        File.ReadAllText(tmp["out/index.html"]).Should().Contain("<mark>_</mark>");
    }
}
