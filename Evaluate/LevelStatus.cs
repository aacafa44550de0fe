namespace Toolchain.Evaluate;

/// <summary>
/// A level's status as results.json spells it, and how reports show a status with its note. Notes say why
/// and leave the status word to the status (records of older runs repeat it: "skipped: skipped: needs about
/// ...", "trimmed: trimmed to 11 of 96 ..."; <see cref="Reason"/> takes that off).
/// </summary>
public static class LevelStatus
{
    public const string Complete = "complete", Trimmed = "trimmed", Skipped = "skipped";
    public const string Incomplete = "incomplete", Partial = "partial";

    /// <summary>The note without a leading status word.</summary>
    public static string? Reason(string? note)
    {
        if (note is null) return null;
        foreach (string prefix in (string[])["skipped: ", "trimmed: ", "trimmed to "])
            while (note.StartsWith(prefix, StringComparison.Ordinal)) note = note[prefix.Length..];
        // older memory notes ("needs about 17.19 GiB, 19.81 GiB available") did not say that the limit is a share
        var old = OldMemoryNote.Match(note);
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        if (old.Success && double.TryParse(old.Groups["available"].Value, invariant, out double gib))
            note = $"{old.Groups["need"].Value}, over the limit of {MemoryGuard.Headroom:0%} of the {gib:0.##} GiB available " +
                $"({MemoryGuard.Headroom * gib:0.##} GiB)";
        return note;
    }

    private static readonly System.Text.RegularExpressions.Regex OldMemoryNote =
        new(@"^(?<need>.*needs about [0-9.]+ GiB.*), (?<available>[0-9.]+) GiB available$");

    /// <summary>True when the level has no graded sample (skipped, or every unit ran out of memory).</summary>
    public static bool NotGraded(LevelResult level) => level.Total is not { Samples: > 0 };

    /// <summary>"complete"; "trimmed: 11 of 96 samples (...)"; "not graded: needs about ...".</summary>
    public static string Describe(LevelResult level)
    {
        string status = NotGraded(level) ? "not graded" : level.Status;
        return Reason(level.Note) is { } why ? $"{status}: {why}" : status;
    }
}
