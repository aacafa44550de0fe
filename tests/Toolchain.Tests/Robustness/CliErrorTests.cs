namespace Toolchain.Tests.Robustness;

/// <summary>Issue #15, items 8 and 11: command-line and suite-file mistakes are one `error:` line and exit 2
/// (exit 1 is a failed gate only), with the help printed only when asked.</summary>
public class CliErrorTests
{
    [Theory]
    [InlineData(new[] { "evl" }, "'evl'", "did you mean 'eval'?")]
    [InlineData(new[] { "eval", "m.onnx", "--outt", "x" }, "'--outt'", "did you mean '--out'?")]
    [InlineData(new[] { "eval", "m.onnx", "--provider", "gpu" }, "'gpu'", "'cuda'")]
    [InlineData(new[] { "eval", "m.onnx", "--threads", "abc" }, "'abc'", "--threads")]
    [InlineData(new[] { "merge" }, "--out", "merge")]
    [InlineData(new[] { "eval" }, "eval needs a model", "--ensemble")]
    [InlineData(new[] { "report", "--budget-minutes", "-1" }, "--budget-minutes", "positive")]
    [InlineData(new[] { "train", "--task", "copy", "--arch", "dngpu", "--out", "x", "--minutes", "NaN" }, "--minutes", "positive")]
    public void Parse_errors_exit_2_with_one_error_line(string[] args, string first, string second)
    {
        var r = CliRunner.InProcess(args);
        r.OneError(2, first, second);
        r.Err.Should().NotContain("Did you mean one of the following").And.NotContain("Description:");
        r.Out.Should().BeEmpty("the help is printed only when asked for");
    }

    [Fact]
    public void Help_is_printed_when_asked_and_exits_0()
    {
        var r = CliRunner.InProcess("eval", "--help");
        r.Code.Should().Be(0);
        r.Out.Should().Contain("Usage:");
    }

    [Theory]
    [InlineData("nested")]
    [InlineData("powers")]
    [InlineData("huge-power")]
    public void Hostile_suite_expressions_are_refused_with_file_line_and_column(string kind)
    {
        string expression = kind switch
        {
            "nested" => new string('(', 20_000) + "1" + new string(')', 20_000),
            "powers" => string.Concat(Enumerable.Repeat("2^", 100_000)) + "1",
            _ => "(2^100000)^100000",
        };
        string path = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, $"name: hostile\nseed: 1\nlevels:\n  - multiple: 1\n    samples: 1\ncases:\n  - name: deep\n    operands: [\"{expression}\", \"1\"]\n");
        try
        {
            var r = CliRunner.InProcess("suites", path);
            r.OneError(2, $"{path}:8:", "cases[0].operands[0]");
            r.Err.Length.Should().BeLessThan(2_000, "the refusal is one short line, not the expression");
        }
        finally { File.Delete(path); }
    }
}
