using Toolchain.Suites;

namespace Toolchain.Evaluate;

/// <summary>
/// The folder of `toolchain report`, replaced whole and never lost: the new report is built in a hidden sibling
/// (.NAME.partial-PID) and swapped in only when it is complete, so a failure or a kill leaves the previous report
/// as it was. A report folder is marked (<see cref="Marker"/>); any other non-empty folder is refused, never
/// deleted. A lock beside it (.NAME.lock) refuses a second report into the same folder.
/// </summary>
public sealed class ReportFolder : IDisposable
{
    /// <summary>The file that marks a folder as a report this toolchain wrote (and may replace).</summary>
    public const string Marker = ".toolchain-report";

    /// <summary>Files of reports written before folders were marked: recognized so they can still be replaced.</summary>
    private static readonly string[] UnmarkedReportFiles = ["index.html", "compare.svg", "compare.md", "compare.html"];

    private readonly FolderLock _lock;
    private readonly string _parent, _name;
    private bool _committed;

    /// <summary>The report folder as given, and the full path of the folder the new report is built in.</summary>
    public string Target { get; }
    public string Staging { get; }

    private ReportFolder(string target, string parent, string name, FolderLock folderLock)
    {
        Target = target;
        _parent = parent;
        _name = name;
        _lock = folderLock;
        Staging = Path.Combine(parent, $".{name}.partial-{Environment.ProcessId}");
    }

    /// <summary>Checks <paramref name="output"/>, locks it, recovers from an interrupted earlier report and
    /// creates the (marked) staging folder.</summary>
    public static ReportFolder Begin(string output)
    {
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(output));
        string? parent = Path.GetDirectoryName(target);
        if (parent is null) throw new EvaluationException($"--out '{output}' is the root of the file system; choose a report folder");
        CheckReplaceable(output, target);
        string name = Path.GetFileName(target);
        var folderLock = FolderLock.TakeFile(Path.Combine(parent, $".{name}.lock"), output, "report");
        try
        {
            var folder = new ReportFolder(target, parent, name, folderLock);
            folder.Recover();
            CheckReplaceable(output, target); // again under the lock
            Directory.CreateDirectory(folder.Staging);
            AtomicFile.Write(Path.Combine(folder.Staging, Marker),
                "written by `toolchain report`; the next report replaces this whole folder\n");
            return folder;
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }
    }

    /// <summary>Refuses a target that is a file, or a non-empty folder that is not a report.</summary>
    private static void CheckReplaceable(string output, string target)
    {
        if (File.Exists(target)) throw new EvaluationException($"--out '{output}' is a file, not a folder; choose a report folder");
        if (!Directory.Exists(target) || IsReport(target)) return;
        var entries = Directory.EnumerateFileSystemEntries(target).Select(e => Path.GetFileName(e)).Order(StringComparer.Ordinal).ToList();
        if (entries.Count == 0) return;
        string few = string.Join(", ", entries.Take(3)) + (entries.Count > 3 ? $" and {entries.Count - 3} more" : "");
        throw new EvaluationException($"'{output}' holds files that `toolchain report` did not write ({few}); " +
            "a report replaces its whole folder, so it writes only into " +
            "a new or empty folder or over an earlier report: choose another --out");
    }

    /// <summary>A folder this toolchain wrote as a report: marked, or (from before markers) holding only a
    /// report's files and per-model folders of evaluation runs.</summary>
    public static bool IsReport(string dir)
    {
        if (File.Exists(Path.Combine(dir, Marker))) return true;
        var files = Directory.GetFiles(dir).Select(f => Path.GetFileName(f)).ToList();
        var dirs = Directory.GetDirectories(dir);
        return files.Count + dirs.Length > 0 && files.All(f => UnmarkedReportFiles.Contains(f))
            && dirs.All(d => File.Exists(Path.Combine(d, Evaluator.PlanFile)) || File.Exists(Path.Combine(d, "results.json")));
    }

    /// <summary>Puts back a previous report whose swap a kill interrupted, and removes staging folders of killed
    /// runs (the lock is held, so no other process is writing them).</summary>
    private void Recover()
    {
        foreach (var old in Directory.GetDirectories(_parent, $".{_name}.old-*"))
        {
            if (!IsReport(old)) continue;
            if (!Directory.Exists(Target)) Directory.Move(old, Target);
            else Directory.Delete(old, recursive: true);
        }
        foreach (var partial in Directory.GetDirectories(_parent, $".{_name}.partial-*"))
            if (IsReport(partial) || !Directory.EnumerateFileSystemEntries(partial).Any())
                Directory.Delete(partial, recursive: true);
    }

    /// <summary>Swaps the complete new report in for the previous one, which is then deleted.</summary>
    public void Commit()
    {
        string old = Path.Combine(_parent, $".{_name}.old-{Environment.ProcessId}");
        try
        {
            if (Directory.Exists(Target)) Directory.Move(Target, old);
            Directory.Move(Staging, Target);
            _committed = true;
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        }
        catch (Exception e) when (StorageException.IsStorageFailure(e))
        {
            if (!Directory.Exists(Target) && Directory.Exists(old)) Directory.Move(old, Target);
            throw StorageException.From(Target, e);
        }
    }

    /// <summary>Without <see cref="Commit"/>, removes the staging folder: the previous report stays as it was.</summary>
    public void Dispose()
    {
        try
        {
            if (!_committed && Directory.Exists(Staging)) Directory.Delete(Staging, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the next report removes it
        finally { _lock.Dispose(); }
    }
}
