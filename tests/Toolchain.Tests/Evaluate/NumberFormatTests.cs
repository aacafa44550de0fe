using Toolchain.Evaluate;

namespace Toolchain.Tests.Evaluate;

/// <summary>The report's numbers never round a miss up to 100%, a hit down to 0% or a measured rate down to 0.</summary>
public class NumberFormatTests
{
    [Theory]
    [InlineData(1.0, "100.0%")]
    [InlineData(0.0, "0.0%")]
    [InlineData(0.875, "87.5%")]
    [InlineData(0.99966, "99.97%")]        // 11 wrong of 32,008 symbols: not "100.0%"
    [InlineData(0.99999, "99.999%")]
    [InlineData(0.9994, "99.9%")]            // one decimal is enough where it does not round to 100
    [InlineData(0.0004, "0.04%")]          // one right in 2,500: not "0.0%"
    [InlineData(0.000001, "0.0001%")]
    public void Percentages_round_to_100_or_0_only_when_exact(double value, string expected) =>
        ReportWriter.Pct(value).Should().Be(expected);

    [Theory]
    [InlineData(318409.2, "318,409")]
    [InlineData(67.4, "67.4")]
    [InlineData(2.04, "2")]
    [InlineData(0.016, "0.016")]           // 28 products of 4,001 symbols in 1,760 s: not "0"
    [InlineData(0.00016, "0.00016")]
    [InlineData(0.0, "0")]
    public void Rates_keep_their_significant_digits(double value, string expected) =>
        ReportWriter.Rate(value).Should().Be(expected);

    [Fact]
    public void A_plot_point_names_its_value_as_the_tables_do()
    {
        string svg = Plot.Svg([new Plot.Series("random", [(41, 1.0), (401, 0.99966), (4001, 0.0004)])], "t");
        svg.Should().Contain("random: 41, 100.0%").And.Contain("random: 401, 99.97%").And.Contain("random: 4,001, 0.04%");
    }
}
