using System.Globalization;
using System.Numerics;

namespace Toolchain.Suites;

/// <summary>Conversions between BigInteger and little-endian (least significant first) digit arrays.</summary>
public static class Digits
{
    /// <summary>Digits of a non-negative value, least significant first, exactly <paramref name="width"/> of them
    /// (zero-filled), or as many as needed (at least one) when width is null.</summary>
    public static int[] FromBigInteger(BigInteger value, int radix, int? width = null)
    {
        if (value.Sign < 0) throw new ArgumentOutOfRangeException(nameof(value), "negative values have no digit encoding");
        int[] digits = value.IsZero ? [0] : ConvertPositive(value, radix);
        if (width is null) return digits;
        int used = digits.Length;
        while (used > 1 && digits[used - 1] == 0) used--;
        if (used > width.Value && !(used == 1 && digits[0] == 0))
            throw new ArgumentOutOfRangeException(nameof(value), $"value needs {used} base-{radix} digits, more than {width}");
        var fixedWidth = new int[width.Value];
        Array.Copy(digits, fixedWidth, Math.Min(digits.Length, width.Value));
        return fixedWidth;
    }

    /// <summary>The value of little-endian digits.</summary>
    public static BigInteger ToBigInteger(ReadOnlySpan<int> digits, int radix)
    {
        int bitsPerDigit = BitsPerDigit(radix);
        if (bitsPerDigit > 0)
        {
            long totalBits = (long)digits.Length * bitsPerDigit;
            var bytes = new byte[(totalBits + 7) / 8 + 1];
            long bit = 0;
            foreach (int d in digits)
            {
                for (int b = 0; b < bitsPerDigit; b++, bit++)
                    if (((d >> b) & 1) != 0) bytes[bit >> 3] |= (byte)(1 << (int)(bit & 7));
            }
            return new BigInteger(bytes, isUnsigned: true, isBigEndian: false);
        }
        if (radix != 10 || digits.Length == 0) return FromDigitsSlow(digits, radix);
        var chars = new char[digits.Length];
        for (int i = 0; i < digits.Length; i++) chars[digits.Length - 1 - i] = (char)('0' + digits[i]);
        return BigInteger.Parse(chars, NumberStyles.None, CultureInfo.InvariantCulture);
    }

    /// <summary>Number of significant digits (at least 1) in a little-endian digit array.</summary>
    public static int SignificantLength(ReadOnlySpan<int> digits)
    {
        int n = digits.Length;
        while (n > 1 && digits[n - 1] == 0) n--;
        return Math.Max(n, 1);
    }

    private static int BitsPerDigit(int radix) => radix switch { 2 => 1, 4 => 2, 8 => 3, 16 => 4, _ => 0 };

    private static int[] ConvertPositive(BigInteger value, int radix)
    {
        int bitsPerDigit = BitsPerDigit(radix);
        if (bitsPerDigit > 0)
        {
            byte[] bytes = value.ToByteArray(isUnsigned: true, isBigEndian: false);
            long totalBits = (long)value.GetBitLength();
            int count = (int)((totalBits + bitsPerDigit - 1) / bitsPerDigit);
            var result = new int[Math.Max(count, 1)];
            for (long bit = 0; bit < totalBits; bit++)
                if ((bytes[bit >> 3] >> (int)(bit & 7) & 1) != 0)
                    result[bit / bitsPerDigit] |= 1 << (int)(bit % bitsPerDigit);
            return result;
        }
        if (radix == 10)
        {
            string text = value.ToString(CultureInfo.InvariantCulture);
            var result = new int[text.Length];
            for (int i = 0; i < text.Length; i++) result[i] = text[text.Length - 1 - i] - '0';
            return result;
        }
        var slow = new List<int>();
        while (!value.IsZero)
        {
            value = BigInteger.DivRem(value, radix, out var rem);
            slow.Add((int)rem);
        }
        return [.. slow];
    }

    private static BigInteger FromDigitsSlow(ReadOnlySpan<int> digits, int radix)
    {
        BigInteger v = BigInteger.Zero;
        for (int i = digits.Length - 1; i >= 0; i--) v = v * radix + digits[i];
        return v;
    }
}
