using System.Globalization;

namespace Toolchain.Train;

/// <summary>One stage of a chain of warm starts: the checkpoint a run started from, as recorded (its origin) and,
/// where the file is still there with the recorded hash, its run's configuration.</summary>
public sealed record WarmStartStage(WarmStartOrigin Origin, string Path, RunConfig? Config);

/// <summary>The whole chain of warm starts behind a checkpoint (init_from, whose source may itself have been warm
/// started, and so on), nearest source first. A stage is read from its checkpoint file when that file is there
/// and its SHA-256 is the recorded one (a compacted copy, which names the full file's hash, counts); otherwise the
/// origin recorded in the later stage's state stands for it.</summary>
public static class WarmStartChain
{
    /// <summary>More stages than this is taken as a loop of files and refused.</summary>
    public const int MaxStages = 64;

    public sealed record Chain(IReadOnlyList<WarmStartStage> Stages, string End)
    {
        /// <summary>Every stage back to a fresh initialization is known (read or recorded).</summary>
        public bool Complete => End == FreshStart;
    }

    public const string FreshStart = "a fresh initialization";

    /// <summary>The chain of <paramref name="checkpoint"/> (empty with end "a fresh initialization" if it was not warm started).</summary>
    public static Chain Resolve(Checkpoint checkpoint) =>
        Resolve(TrainerState.FromJson(checkpoint.State).InitFrom, checkpoint.Config.InitFrom);

    public static Chain Resolve(WarmStartOrigin? origin, string? path)
    {
        var stages = new List<WarmStartStage>();
        while (origin is not null)
        {
            if (stages.Count == MaxStages)
                throw new CheckpointException($"{path}: a chain of more than {MaxStages} warm starts; the init_from files form a loop");
            var source = ReadIfSame(path, origin.Sha256);
            stages.Add(new WarmStartStage(origin, path ?? "", source?.Config));
            if (source is not null)
            {
                (origin, path) = (TrainerState.FromJson(source.State).InitFrom, source.Config.InitFrom);
                continue;
            }
            if (origin.From is not null) { (origin, path) = (origin.From, origin.SourceInitFrom); continue; }
            if (origin.SourceInitFrom == "") break; // recorded: the source itself started fresh
            string why = string.IsNullOrEmpty(path) ? "its path was not recorded"
                : File.Exists(path) ? $"{path} is not the recorded file (SHA-256 {origin.Sha256[..Math.Min(12, origin.Sha256.Length)]}...)"
                : $"{path} is not here";
            return new Chain(stages, string.Create(CultureInfo.InvariantCulture, $"unknown before the stage at step {origin.Step:N0}: {why}"));
        }
        return new Chain(stages, FreshStart);
    }

    /// <summary>The chain as nested origins, to keep in a new run's state.</summary>
    public static WarmStartOrigin? Embed(Chain chain)
    {
        WarmStartOrigin? next = null;
        string? nextPath = chain.Complete ? "" : null;
        for (int i = chain.Stages.Count - 1; i >= 0; i--)
        {
            var stage = chain.Stages[i];
            next = stage.Origin with { SourceInitFrom = nextPath, From = next };
            nextPath = stage.Path;
        }
        return next;
    }

    private static Checkpoint? ReadIfSame(string? path, string sha256)
    {
        if (string.IsNullOrEmpty(path) || !File.Exists(path)) return null;
        Checkpoint source;
        try { source = Checkpoint.Load(path); }
        catch (Exception e) when (e is CheckpointException or IOException or UnauthorizedAccessException) { return null; }
        foreach (var tensor in source.Tensors.Values) tensor.Dispose(); // only its settings and state are read
        return source.FileHash == sha256 || source.CompactedFrom == sha256 ? source : null;
    }
}
