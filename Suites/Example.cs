namespace Toolchain.Suites;

/// <summary>
/// One task instance: input and target token sequences of equal length (PAD = 0 fills the tail),
/// with the instance size k and the case family it was drawn from.
/// </summary>
public sealed record Example(int[] Input, int[] Target, int Size, string Family)
{
    public int Length => Input.Length;
}

/// <summary>Verdict of an exact checker on one output sequence.</summary>
public readonly record struct CheckResult(bool Correct, int FirstWrongPosition, int WrongSymbols)
{
    public static CheckResult Compare(ReadOnlySpan<int> expected, ReadOnlySpan<int> got)
    {
        if (expected.Length != got.Length)
            throw new ArgumentException($"output length {got.Length} differs from target length {expected.Length}");
        int first = -1, wrong = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == got[i]) continue;
            wrong++;
            if (first < 0) first = i;
        }
        return new CheckResult(wrong == 0, first, wrong);
    }
}
