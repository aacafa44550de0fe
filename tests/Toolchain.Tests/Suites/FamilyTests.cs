using System.Numerics;
using Toolchain.Suites;
using Toolchain.Suites.Tasks;

namespace Toolchain.Tests.Suites;

/// <summary>Each hard-case family does what its name says.</summary>
public class FamilyTests
{
    private static IEnumerable<(BigInteger A, BigInteger B, int K, ArithmeticTask T)> Draw(string task, string family, int count = 40, int minSize = 8)
    {
        var t = (ArithmeticTask)TaskRegistry.Get(task);
        var rng = new Rng(11);
        for (int i = 0; i < count; i++)
        {
            int k = rng.NextInt(minSize, 64);
            var ex = t.Generate(k, family, rng);
            var (a, b) = t.Operands(ex.Input);
            yield return (a, b, k, t);
        }
    }

    /// <summary>Longest run of consecutive positions at which schoolbook addition carries out.</summary>
    private static int LongestCarryChain(BigInteger a, BigInteger b, int radix, int k)
    {
        var da = Digits.FromBigInteger(a, radix, k);
        var db = Digits.FromBigInteger(b, radix, k);
        int carry = 0, run = 0, best = 0;
        for (int i = 0; i < k; i++)
        {
            carry = (da[i] + db[i] + carry) >= radix ? 1 : 0;
            run = carry == 1 ? run + 1 : 0;
            best = Math.Max(best, run);
        }
        return best;
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("qadd")]
    [InlineData("add")]
    public void Carry_family_has_a_carry_chain_over_three_quarters_of_the_digits(string task)
    {
        foreach (var (a, b, k, t) in Draw(task, "carry"))
            LongestCarryChain(a, b, t.Radix, k).Should().BeGreaterThanOrEqualTo(3 * k / 4);
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("qadd")]
    [InlineData("bmul")]
    [InlineData("mul")]
    public void Tape_ends_puts_a_nonzero_digit_at_both_ends_of_the_tape_and_stays_opt_in(string task)
    {
        foreach (var (a, b, k, t) in Draw(task, ArithmeticTask.TapeEnds))
        {
            (a % t.Radix).Should().NotBe(BigInteger.Zero, "a's lowest digit sits at tape position 0");
            b.Should().BeGreaterThanOrEqualTo(BigInteger.Pow(t.Radix, k - 1), "b's highest digit sits at the last tape position");
            b.Should().BeLessThan(BigInteger.Pow(t.Radix, k));
        }
        // the other digits stay random: not every a is the same
        Draw(task, ArithmeticTask.TapeEnds).Select(x => x.A).Distinct().Should().HaveCountGreaterThan(30);
        TaskRegistry.Get(task).OptInFamilies.Should().Contain(ArithmeticTask.TapeEnds);
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("qadd")]
    [InlineData("add")]
    [InlineData("bmul")]
    [InlineData("qmul")]
    [InlineData("mul")]
    public void Identity_families_make_the_result_the_other_operand_spanning_every_digit(string task)
    {
        var identity = TaskRegistry.Get(task) is ArithmeticTask { Operator: '+' } ? BigInteger.Zero : BigInteger.One;
        foreach (var (a, b, k, t) in Draw(task, "identity_a"))
        {
            a.Should().Be(identity);
            b.Should().BeGreaterThanOrEqualTo(BigInteger.Pow(t.Radix, k - 1), "b's top digit is non-zero");
            t.Apply(a, b).Should().Be(b);
        }
        foreach (var (a, b, k, t) in Draw(task, "identity_b"))
        {
            b.Should().Be(identity);
            a.Should().BeGreaterThanOrEqualTo(BigInteger.Pow(t.Radix, k - 1));
            t.Apply(a, b).Should().Be(a);
        }
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("qadd")]
    [InlineData("add")]
    public void No_carry_family_never_carries_and_is_not_trivial(string task)
    {
        var draws = Draw(task, "no_carry").ToList();
        draws.Should().OnlyContain(x => LongestCarryChain(x.A, x.B, x.T.Radix, x.K) == 0);
        draws.Count(x => x.B > 0).Should().BeGreaterThan(draws.Count / 2);
        TaskRegistry.Get("bmul").Families.Should().NotContain("no_carry");
    }

    [Theory]
    [InlineData("badd", new[] { "identity_a", "identity_b", "no_carry" })]
    [InlineData("bmul", new[] { "identity_a", "identity_b" })]
    [InlineData("add", new[] { "identity_a", "identity_b", "no_carry" })]
    public void The_transport_families_are_in_the_standard_suite_as_hard_cases(string name, string[] transport)
    {
        var task = TaskRegistry.Get(name);
        task.OptInFamilies.Should().NotIntersectWith(transport);
        var levels = SuiteFile.Resolve("standard").Resolve(task, 20);
        foreach (var level in levels.Where(l => !l.Exhaustive))
        {
            var counts = level.Counts.ToDictionary(c => c.Family, c => c.Count);
            foreach (var family in transport)
                counts[family].Should().Be(counts["all_ones"], $"`hard` covers {family} at {level.Name} like every other hard family");
        }
        levels.Single(l => l.Name == "100x").Counts.Where(c => transport.Contains(c.Family)).Should().OnlyContain(c => c.Count == 4);
        // the exhaustive level enumerates every input of size 4, or of the largest size within the limit (decimal: 3)
        var exhaustive = levels.Single(l => l.Exhaustive);
        exhaustive.Size.Should().Be(name == "add" ? 3 : 4);
        exhaustive.TotalSamples.Should().Be(name == "add" ? 1_000_000 : 256);
    }

    /// <summary>badd with no_carry held back: the opt-in mechanism that a future family starts in.</summary>
    private sealed class OptInAdd() : ArithmeticTask(2, '+')
    {
        public override string Name => "badd";
        public override string Description => "binary addition with no_carry opt-in (test)";
        public override IReadOnlyList<string> OptInFamilies => ["no_carry"];
    }

    [Fact]
    public void An_opt_in_family_is_graded_only_where_a_suite_names_it()
    {
        var task = new OptInAdd();
        SuiteFile.Resolve("standard").Resolve(task, 20).SelectMany(l => l.Counts).Select(c => c.Family)
            .Should().NotContain("no_carry", "`hard` does not cover it").And.Contain("identity_a");
        var named = SuiteFile.Parse("name: t\nseed: 1\nlevels:\n  - multiple: 2\n    samples: {hard: 3, no_carry: 5}\n", "t.yaml");
        var counts = named.Resolve(task, 10)[0].Counts.ToDictionary(c => c.Family, c => c.Count);
        counts["no_carry"].Should().Be(5);
        counts["carry"].Should().Be(3);
        counts["identity_b"].Should().Be(3);
    }

    [Fact]
    public void Random_family_rarely_has_long_carry_chains()
    {
        // the point of the carry family: uniform operands almost never carry across 3/4 of the digits
        int longChains = Draw("badd", "random", 200, minSize: 24).Count(x => LongestCarryChain(x.A, x.B, 2, x.K) >= 3 * x.K / 4);
        longChains.Should().BeLessThan(5);
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("add")]
    public void Complement_family_sums_to_base_power_minus_zero_or_one(string task)
    {
        var sums = new HashSet<string>();
        foreach (var (a, b, k, t) in Draw(task, "complement"))
        {
            var p = BigInteger.Pow(t.Radix, k);
            (a + b == p - 1 || a + b == p).Should().BeTrue();
            sums.Add(a + b == p ? "full" : "minus1");
        }
        sums.Should().BeEquivalentTo(["full", "minus1"]);
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("bmul")]
    [InlineData("mul")]
    public void All_ones_and_all_zeros_families(string task)
    {
        foreach (var (a, b, k, t) in Draw(task, "all_ones"))
        {
            a.Should().Be(BigInteger.Pow(t.Radix, k) - 1);
            b.Should().Be(a);
        }
        foreach (var (a, b, _, _) in Draw(task, "all_zeros"))
        {
            a.Should().Be(BigInteger.Zero);
            b.Should().Be(BigInteger.Zero);
        }
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("qmul")]
    public void Alternating_family_alternates_top_and_zero_digits_in_opposite_phase(string task)
    {
        foreach (var (a, b, k, t) in Draw(task, "alternating"))
        {
            var da = Digits.FromBigInteger(a, t.Radix, k);
            var db = Digits.FromBigInteger(b, t.Radix, k);
            for (int i = 0; i < k; i++)
            {
                da[i].Should().BeOneOf(0, t.Radix - 1);
                (da[i] + db[i]).Should().Be(t.Radix - 1);
                if (i > 0) da[i].Should().NotBe(da[i - 1]);
            }
        }
    }

    [Theory]
    [InlineData("bmul")]
    [InlineData("add")]
    public void Powers_of_two_family_draws_powers_of_two(string task)
    {
        foreach (var (a, b, _, _) in Draw(task, "powers_of_two"))
        {
            a.IsPowerOfTwo.Should().BeTrue();
            b.IsPowerOfTwo.Should().BeTrue();
        }
    }

    [Theory]
    [InlineData("bmul")]
    [InlineData("badd")]
    public void Symmetric_family_has_equal_operands_including_the_two_times_two_case(string task)
    {
        int twos = 0;
        foreach (var (a, b, _, _) in Draw(task, "symmetric"))
        {
            a.Should().Be(b);
            if (a == 2) twos++;
        }
        twos.Should().BeGreaterThan(0, "0...02 x 0...02 is the case Price et al. found breaking models");
    }

    [Theory]
    [InlineData("badd")]
    [InlineData("bmul")]
    [InlineData("add")]
    public void Uneven_family_has_operands_of_very_different_lengths(string task)
    {
        foreach (var (a, b, k, t) in Draw(task, "uneven"))
        {
            int la = Digits.SignificantLength(Digits.FromBigInteger(a, t.Radix));
            int lb = Digits.SignificantLength(Digits.FromBigInteger(b, t.Radix));
            Math.Max(la, lb).Should().Be(k);
            Math.Min(la, lb).Should().BeLessThanOrEqualTo(Math.Max(1, k / 8));
        }
    }

    [Theory]
    [InlineData("copy")]
    [InlineData("reverse")]
    [InlineData("sort")]
    [InlineData("duplicate")]
    [InlineData("even_repeat")]
    public void Bit_sequence_families(string name)
    {
        var task = TaskRegistry.Get(name);
        var rng = new Rng(4);
        for (int i = 0; i < 20; i++)
        {
            int k = rng.NextInt(4, 50);
            var bits = (string family) => task.Generate(k, family, rng).Input.Take(k).Select(t => t - 1).ToArray();
            bits("all_ones").Should().OnlyContain(b => b == 1);
            bits("all_zeros").Should().OnlyContain(b => b == 0);
            var alt = bits("alternating");
            for (int j = 1; j < k; j++) alt[j].Should().NotBe(alt[j - 1]);
        }
    }
}
