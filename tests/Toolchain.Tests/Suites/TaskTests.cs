using System.Numerics;
using Toolchain.Suites;
using Toolchain.Suites.Tasks;

namespace Toolchain.Tests.Suites;

public class TaskTests
{
    public static TheoryData<string> TaskNames()
    {
        var data = new TheoryData<string>();
        foreach (var t in TaskRegistry.All) data.Add(t.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(TaskNames))]
    public void Checker_accepts_own_targets_and_rejects_every_one_token_change(string name)
    {
        var task = TaskRegistry.Get(name);
        foreach (var family in task.Families)
            foreach (int size in new[] { 1, 2, 5, 13, 40 })
            {
                var ex = task.Generate(size, family, Rng.For(7, name, family, size));
                ex.Input.Length.Should().Be(task.LengthForSize(size));
                ex.Target.Length.Should().Be(ex.Input.Length);
                task.Check(ex.Input, ex.Target).Correct.Should().BeTrue($"{name}/{family}/k={size} must accept its own target");
                for (int pos = 0; pos < ex.Target.Length; pos++)
                {
                    var changed = (int[])ex.Target.Clone();
                    changed[pos] = (changed[pos] + 1 + pos % (task.Vocab.Count - 1)) % task.Vocab.Count;
                    var verdict = task.Check(ex.Input, changed);
                    verdict.Correct.Should().BeFalse($"{name}/{family}/k={size}: a change at {pos} must be caught");
                    verdict.FirstWrongPosition.Should().Be(pos);
                }
            }
    }

    [Theory]
    [InlineData("badd", 2)]
    [InlineData("qadd", 4)]
    [InlineData("add", 10)]
    [InlineData("bmul", 2)]
    [InlineData("qmul", 4)]
    [InlineData("mul", 10)]
    public void Arithmetic_targets_agree_with_plain_integer_arithmetic(string name, int radix)
    {
        var task = (ArithmeticTask)TaskRegistry.Get(name);
        var rng = new Rng(99);
        for (int trial = 0; trial < 300; trial++)
        {
            int k = rng.NextInt(1, 6);
            var ex = task.Generate(k, "random", rng);
            ulong a = 0, b = 0, scale = 1;
            for (int i = 0; i < k; i++, scale *= (ulong)radix)
            {
                a += (ulong)(ex.Input[i] - 1) * scale;
                b += (ulong)(ex.Input[k + 1 + i] - 1) * scale;
            }
            ulong expected = task.Operator == '+' ? a + b : a * b;
            // decode the target: digits until the first PAD, least significant first
            ulong got = 0; scale = 1;
            int len = Array.IndexOf(ex.Target, 0) is var p && p >= 0 ? p : ex.Target.Length;
            for (int i = 0; i < len; i++, scale *= (ulong)radix) got += (ulong)(ex.Target[i] - 1) * scale;
            got.Should().Be(expected);
            (len == 1 || ex.Target[len - 1] != 1).Should().BeTrue("the result has no leading zeros");
        }
    }

    [Fact]
    public void Worked_examples_from_the_doc_comments_hold()
    {
        Render("badd", 3, 6, 3).Should().Be(("110+011", "1001___"));
        Render("bmul", 3, 6, 3).Should().Be(("110*011", "01001__"));
        Render("bmul_zeros", 3, 6, 3).Should().Be(("110*011", "0100100"));
        Render("qadd", 7, 9, 2).Should().Be(("31+12", "001__"));
        Render("mul", 45, 67, 2).Should().Be(("54*76", "5103_"));
        var dup = (BitSequenceTask)TaskRegistry.Get("duplicate");
        var d = dup.Encode([0, 1, 1], "x");
        (dup.Render(d.Input), dup.Render(d.Target)).Should().Be(("011___", "011011"));
        var even = (BitSequenceTask)TaskRegistry.Get("even_repeat");
        var e = even.Encode([0, 1, 1, 0, 1, 0], "x");
        even.Render(e.Target).Should().Be("001111");
        var rev = (BitSequenceTask)TaskRegistry.Get("reverse");
        rev.Render(rev.Encode([0, 1, 1, 0, 1], "x").Target).Should().Be("10110");
        var sort = (BitSequenceTask)TaskRegistry.Get("sort");
        sort.Render(sort.Encode([0, 1, 1, 0, 1], "x").Target).Should().Be("00111");
    }

    [Fact]
    public void Bmul_zeros_is_bmul_with_every_PAD_of_the_target_written_as_the_digit_0()
    {
        var bmul = (ArithmeticTask)TaskRegistry.Get("bmul");
        var zeros = (ArithmeticTask)TaskRegistry.Get("bmul_zeros");
        zeros.Vocab.Should().Equal(bmul.Vocab);
        zeros.Families.Should().Equal(bmul.Families);
        (bmul.ZeroPadded, zeros.ZeroPadded).Should().Be((false, true));
        int padsSeen = 0;
        foreach (var family in zeros.Families)
            foreach (int size in new[] { 1, 3, 20, 200 })
            {
                // the same generator state gives the same input: the formats differ in the target only
                var ex = zeros.Generate(size, family, Rng.For(5, family, size));
                var plain = bmul.Generate(size, family, Rng.For(5, family, size));
                ex.Input.Should().Equal(plain.Input);
                ex.Target.Should().NotContain(AlgorithmicTask.Pad, $"{family}/k={size}: no PAD in a zero-padded target");
                ex.Target.Should().Equal(plain.Target.Select(t => t == AlgorithmicTask.Pad ? 1 : t), $"{family}/k={size}");
                padsSeen += plain.Target.Count(t => t == AlgorithmicTask.Pad);
                // a model that ends the product with PAD, as bmul asks, is wrong here at the first PAD
                var verdict = zeros.Check(ex.Input, plain.Target);
                int firstPad = Array.IndexOf(plain.Target, AlgorithmicTask.Pad);
                verdict.Correct.Should().Be(firstPad < 0);
                if (firstPad >= 0) verdict.FirstWrongPosition.Should().Be(firstPad);
            }
        padsSeen.Should().BeGreaterThan(1000, "the comparison covered the trailing positions");
    }

    private static (string, string) Render(string name, int a, int b, int k)
    {
        var t = (ArithmeticTask)TaskRegistry.Get(name);
        var ex = t.Encode(a, b, k, "x");
        return (t.Render(ex.Input), t.Render(ex.Target));
    }

    [Fact]
    public void Malformed_inputs_are_rejected_by_the_checker()
    {
        var badd = TaskRegistry.Get("badd");
        FluentActions.Invoking(() => badd.Solve([1, 2, 1, 2])).Should().Throw<FormatException>().WithMessage("*2k+1*");
        FluentActions.Invoking(() => badd.Solve([1, 1, 2])).Should().Throw<FormatException>().WithMessage("*separator*");
        FluentActions.Invoking(() => TaskRegistry.Get("duplicate").Solve([1, 2, 1, 0])).Should().Throw<FormatException>().WithMessage("*PAD*");
        FluentActions.Invoking(() => TaskRegistry.Get("nope")).Should().Throw<KeyNotFoundException>().WithMessage("*badd*");
        FluentActions.Invoking(() => badd.Generate(0, "random", new Rng(1))).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => badd.Generate(3, "nope", new Rng(1))).Should().Throw<ArgumentException>().WithMessage("*carry*");
    }

    [Theory]
    [InlineData("bmul", 50_000)]
    [InlineData("mul", 50_000)]
    [InlineData("badd", 50_000)]
    [InlineData("reverse", 100_000)]
    public void Examples_of_100000_tokens_generate_quickly(string name, int size)
    {
        var task = TaskRegistry.Get(name);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = task.Generate(size, "random", new Rng(3));
        sw.Stop();
        ex.Length.Should().BeGreaterThanOrEqualTo(100_000);
        task.Check(ex.Input, ex.Target).Correct.Should().BeTrue();
        sw.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Digits_round_trip_in_every_base()
    {
        var rng = new Rng(5);
        foreach (int radix in new[] { 2, 3, 4, 10 })
            for (int trial = 0; trial < 50; trial++)
            {
                var digits = Enumerable.Range(0, rng.NextInt(1, 300)).Select(_ => rng.NextInt(radix)).ToArray();
                var value = Digits.ToBigInteger(digits, radix);
                var back = Digits.FromBigInteger(value, radix, digits.Length);
                back.Should().Equal(digits);
                BigInteger slow = 0;
                for (int i = digits.Length - 1; i >= 0; i--) slow = slow * radix + digits[i];
                value.Should().Be(slow);
            }
    }
}
