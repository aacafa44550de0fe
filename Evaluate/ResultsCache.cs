using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace Toolchain.Evaluate;

/// <summary>What decides a grading's outcome: the model file, the suite, and the grading code.</summary>
public sealed record CacheKey(string ModelSha256, string SuiteHash, int Grading)
{
    public static CacheKey For(string modelPath, string suiteHash)
    {
        using var stream = File.OpenRead(modelPath);
        return new CacheKey(Convert.ToHexStringLower(SHA256.HashData(stream)), suiteHash, ResultsCache.GradingVersion);
    }

    /// <summary>The key of finished results, or null when they are not a whole grading (a level filter or one shard).</summary>
    public static CacheKey? Of(Results results) =>
        results.Suite.LevelFilter is null && results.Run.Shard is null
            ? new CacheKey(results.Model.Sha256, results.Suite.Hash, results.Grading ?? 1)
            : null;

    /// <summary>The entry's folder name: "sha256 prefix-suite hash prefix-g version".</summary>
    public string Folder => $"{ModelSha256[..16]}-{SuiteHash[..12]}-g{Grading}";
}

/// <summary>A graded model found for a key: its results, failure examples, and where and when they were made.</summary>
public sealed record CachedGrading(Results Results, IReadOnlyList<FailureExample> Failures, string Source,
    string GradedAt);

/// <summary>The sidecar of a cache entry (cache.json): when the results were graded and from which model file.</summary>
public sealed record CacheEntryInfo(string GradedAt, string Model);

/// <summary>
/// Results graded once and reused: an entry is a results.json and failures.jsonl under a folder named by its
/// <see cref="CacheKey"/>, so any change to the model file, the suite or the grading code misses. The zoo's own
/// gradings (models/NAME.report/) count as entries too, matched by the key inside their results.json, not by
/// name. Only whole gradings are entries: not one shard, not a level filter.
/// </summary>
public sealed class ResultsCache(string folder, IEnumerable<string>? seedFolders = null)
{
    /// <summary>The grading code's version: raise it with any change that alters what a grading measures (the
    /// examples drawn, the metrics, the budget's rules), so that every cached result is graded again.</summary>
    public const int GradingVersion = 1;

    public const string EntryInfoFile = "cache.json";

    private readonly List<string> _seeds = (seedFolders ?? []).ToList();
    private Dictionary<CacheKey, string>? _seedIndex;

    public string Folder => folder;

    /// <summary>The cached grading for a key, or null: this cache's own entry first, then a seed folder.</summary>
    public CachedGrading? Find(CacheKey key)
    {
        string own = Path.Combine(folder, key.Folder);
        if (Read(own, key) is { } results)
        {
            string when = ReadInfo(own)?.GradedAt ?? "date unknown";
            return new CachedGrading(results, Failures(own), own, when);
        }
        _seedIndex ??= IndexSeeds();
        if (_seedIndex.TryGetValue(key, out string? seed) && Read(seed, key) is { } seeded)
            return new CachedGrading(seeded, Failures(seed), seed, PublishedAt(seed));
        return null;
    }

    /// <summary>Copies a finished grading's results.json and failures.jsonl into the cache, with when it was graded.</summary>
    public void Store(string gradedFolder, Results results, DateTimeOffset gradedAt)
    {
        if (CacheKey.Of(results) is not { } key) return;
        string entry = Path.Combine(folder, key.Folder);
        Directory.CreateDirectory(entry);
        foreach (string file in (string[])["results.json", "failures.jsonl"])
        {
            string from = Path.Combine(gradedFolder, file);
            if (File.Exists(from)) Suites.AtomicFile.Write(Path.Combine(entry, file), File.ReadAllText(from));
        }
        var info = new CacheEntryInfo(Utc(gradedAt), results.Model.File);
        Suites.AtomicFile.Write(Path.Combine(entry, EntryInfoFile), Json.Serialize(info));
    }

    private Dictionary<CacheKey, string> IndexSeeds()
    {
        var index = new Dictionary<CacheKey, string>();
        foreach (string seed in _seeds.Where(File.Exists))
        {
            string dir = Path.GetDirectoryName(seed)!;
            if (TryLoad(seed) is { } results && CacheKey.Of(results) is { } key) index.TryAdd(key, dir);
        }
        return index;
    }

    private static Results? Read(string dir, CacheKey key)
    {
        string path = Path.Combine(dir, "results.json");
        return File.Exists(path) && TryLoad(path) is { } results && CacheKey.Of(results) == key ? results : null;
    }

    /// <summary>Results of a file, or null when it cannot be read (a damaged entry is graded again, not fatal).</summary>
    private static Results? TryLoad(string path)
    {
        try
        {
            var results = Json.Deserialize<Results>(File.ReadAllText(path), path);
            return results.Schema == 1 ? results : null;
        }
        catch (Exception e) when (e is EvaluationException or IOException or UnauthorizedAccessException) { return null; }
    }

    private static CacheEntryInfo? ReadInfo(string dir)
    {
        string path = Path.Combine(dir, EntryInfoFile);
        try
        {
            return File.Exists(path) ? Json.Deserialize<CacheEntryInfo>(File.ReadAllText(path), path) : null;
        }
        catch (Exception e) when (e is EvaluationException or IOException) { return null; }
    }

    private static List<FailureExample> Failures(string dir)
    {
        string path = Path.Combine(dir, "failures.jsonl");
        if (!File.Exists(path)) return [];
        return File.ReadLines(path).Where(l => l.Length > 0)
            .Select((l, i) => Json.Deserialize<FailureExample>(l, $"{path}, line {i + 1}")).ToList();
    }

    /// <summary>When a seed (the zoo's grading) was published: the date of the git commit that last changed its
    /// results.json, or the file's time where git cannot say (a copy outside a clone).</summary>
    private static string PublishedAt(string dir)
    {
        string file = Path.Combine(dir, "results.json");
        try
        {
            var psi = new ProcessStartInfo("git", ["log", "-1", "--format=%cI", "--", Path.GetFileName(file)])
            {
                WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            using var git = Process.Start(psi);
            if (git is not null)
            {
                string output = git.StandardOutput.ReadToEnd().Trim();
                git.WaitForExit(5000);
                bool parsed = DateTimeOffset.TryParse(output, CultureInfo.InvariantCulture, DateTimeStyles.None, out var when);
                if (git.ExitCode == 0 && parsed)
                    return "zoo, " + Utc(when);
            }
        }
        catch (System.ComponentModel.Win32Exception) { } // no git on this machine
        return "zoo, file dated " + Utc(File.GetLastWriteTimeUtc(file));
    }

    private static string Utc(DateTimeOffset when) =>
        when.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}
