using System.Globalization;
using System.Numerics;

namespace Toolchain.Suites;

/// <summary>
/// Integer expressions for pinned suite cases, so a 2,000-bit operand need not be written out:
/// decimal literals, + - * ^ (power, right-associative) and parentheses, e.g. "2^2000-1" or "10^50+7".
/// </summary>
public static class Expression
{
    public static BigInteger Evaluate(string text)
    {
        var p = new Parser(text);
        var v = p.Sum();
        p.SkipSpace();
        if (!p.AtEnd) throw new FormatException($"unexpected '{text[p.Pos]}' at column {p.Pos + 1} of expression \"{text}\"");
        return v;
    }

    private sealed class Parser(string text)
    {
        public int Pos;
        public bool AtEnd => Pos >= text.Length;

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
            var e = Power();
            if (e < 0 || e > 10_000_000) throw new FormatException($"exponent {e} out of range in \"{text}\"");
            return BigInteger.Pow(b, (int)e);
        }

        private BigInteger Atom()
        {
            if (Take('('))
            {
                var v = Sum();
                if (!Take(')')) throw new FormatException($"missing ')' in expression \"{text}\"");
                return v;
            }
            SkipSpace();
            int start = Pos;
            while (!AtEnd && (char.IsAsciiDigit(text[Pos]) || text[Pos] == '_')) Pos++;
            if (start == Pos)
                throw new FormatException(AtEnd ? $"expression \"{text}\" ends too early" : $"unexpected '{text[Pos]}' at column {Pos + 1} of expression \"{text}\"");
            return BigInteger.Parse(text.AsSpan(start, Pos - start).ToString().Replace("_", ""), NumberStyles.None, CultureInfo.InvariantCulture);
        }
    }
}
