namespace Toolchain.Evaluate;

/// <summary>
/// A level's status as results.json spells it, and how reports show a status with its note. Notes say why
/// and leave the status word to the status (records of older runs repeat it: "skipped: skipped: needs about
/// ...", "trimmed: trimmed to 11 of 96 ..."; <see cref="Reason"/> takes that off).
/// </summary>
public static class LevelStatus
{
    public const string Complete = "complete", Trimmed = "trimmed", Skipped = "skipped", Incomplete = "incomplete", Partial = "partial";

    /// <summary>The note without a leading status word.</summary>
    public static string? Reason(string? note)
    {
        if (note is null) return null;
        foreach (string prefix in (string[])["skipped: ", "trimmed: ", "trimmed to "])
            while (note.StartsWith(prefix, StringComparison.Ordinal)) note = note[prefix.Length..];
        return note;
    }

    /// <summary>True when the level has no graded sample (skipped, or every unit ran out of memory).</summary>
    public static bool NotGraded(LevelResult level) => level.Total is not { Samples: > 0 };

    /// <summary>"complete"; "trimmed: 11 of 96 samples (...)"; "not graded: needs about ...".</summary>
    public static string Describe(LevelResult level)
    {
        string status = NotGraded(level) ? "not graded" : level.Status;
        return Reason(level.Note) is { } why ? $"{status}: {why}" : status;
    }
}
