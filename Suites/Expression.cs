using System.Globalization;
using System.Numerics;

namespace Toolchain.Suites;

/// <summary>
/// Integer expressions for pinned suite cases, so a 2,000-bit operand need not be written out:
/// decimal literals, + - * ^ (power, right-associative) and parentheses, e.g. "2^2000-1" or "10^50+7".
/// </summary>
public static class Expression
{
    /// <summary>Most characters, nesting depth (parentheses and chained ^) and result bits an expression may have:
    /// a crafted suite file must be refused, not overflow the stack or fill the memory.</summary>
    public const int MaxLength = 100_000, MaxDepth = 100;
    public const long MaxBits = 100_000_000;

    public static BigInteger Evaluate(string text)
    {
        if (text.Length > MaxLength)
            throw new FormatException($"expression of {text.Length:N0} characters is longer than the {MaxLength:N0} allowed");
        var p = new Parser(text);
        var v = p.Sum();
        p.SkipSpace();
        if (!p.AtEnd) throw new FormatException($"unexpected '{text[p.Pos]}' at column {p.Pos + 1} of expression \"{Clip(text)}\"");
        return v;
    }

    /// <summary>An expression for a message: its first 60 characters.</summary>
    private static string Clip(string text) => text.Length <= 60 ? text : text[..60] + "…";

    /// <summary>A number for a message: its digits when short, else its size.</summary>
    private static string Show(BigInteger v) =>
        v.GetBitLength() <= 64 ? v.ToString(CultureInfo.InvariantCulture) : $"of {v.GetBitLength():N0} bits";

    private sealed class Parser(string text)
    {
        public int Pos;
        private int _depth;
        public bool AtEnd => Pos >= text.Length;

        /// <summary>One level deeper (a parenthesis or a power); refused past <see cref="MaxDepth"/>.</summary>
        private void Enter()
        {
            if (++_depth > MaxDepth)
                throw new FormatException($"expression nests deeper than {MaxDepth} levels (parentheses or chained ^) at column {Pos + 1}");
        }

        public void SkipSpace() { while (!AtEnd && char.IsWhiteSpace(text[Pos])) Pos++; }

        private bool Take(char c)
        {
            SkipSpace();
            if (!AtEnd && text[Pos] == c) { Pos++; return true; }
            return false;
        }

        public BigInteger Sum()
        {
            var v = Product();
            while (true)
            {
                if (Take('+')) v += Product();
                else if (Take('-')) v -= Product();
                else return v;
            }
        }

        private BigInteger Product()
        {
            var v = Power();
            while (Take('*')) v *= Power();
            return v;
        }

        private BigInteger Power()
        {
            var b = Atom();
            if (!Take('^')) return b;
            int column = Pos;
            Enter();
            var e = Power();
            _depth--;
            if (e < 0 || e > 10_000_000)
                throw new FormatException($"exponent {Show(e)} at column {column + 1} is out of range (0 to 10,000,000)");
            if ((long)b.GetBitLength() * (long)e > MaxBits)
                throw new FormatException($"the power at column {column + 1} has more than {MaxBits:N0} bits");
            return BigInteger.Pow(b, (int)e);
        }

        private BigInteger Atom()
        {
            if (Take('('))
            {
                Enter();
                var v = Sum();
                if (!Take(')')) throw new FormatException($"missing ')' at column {Pos + 1} of the expression");
                _depth--;
                return v;
            }
            SkipSpace();
            int start = Pos;
            while (!AtEnd && (char.IsAsciiDigit(text[Pos]) || text[Pos] == '_')) Pos++;
            if (start == Pos)
                throw new FormatException(AtEnd ? $"expression \"{Clip(text)}\" ends too early"
                    : $"unexpected '{text[Pos]}' at column {Pos + 1} of expression \"{Clip(text)}\"");
            return BigInteger.Parse(text.AsSpan(start, Pos - start).ToString().Replace("_", ""), NumberStyles.None, CultureInfo.InvariantCulture);
        }
    }
}
