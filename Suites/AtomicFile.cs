namespace Toolchain.Suites;

/// <summary>Atomic writes: a temp file beside the target, then rename, so readers never see half a file.
/// A failed write leaves the target as it was, removes its temp file and throws <see cref="StorageException"/>.</summary>
public static class AtomicFile
{
    private static readonly string[] SystemRoots = ["/dev/", "/proc/", "/sys/"];

    private static readonly AsyncLocal<Func<string, Exception?>?> InjectedFault = new();

    /// <summary>Test hook: until disposed, writes in this async flow whose target <paramref name="fault"/> maps to
    /// an exception fail with it after their temp file is written (a disk that fills up at the last moment).</summary>
    public static IDisposable InjectFault(Func<string, Exception?> fault)
    {
        var before = InjectedFault.Value;
        InjectedFault.Value = fault;
        return new Restore(() => InjectedFault.Value = before);
    }

    /// <summary>Throws the injected fault for <paramref name="path"/>, if any (see <see cref="InjectFault"/>).</summary>
    public static void ThrowIfFaulted(string path)
    {
        if (InjectedFault.Value?.Invoke(Path.GetFullPath(path)) is { } e) throw e;
    }

    /// <summary>The exception a full disk raises, for injected faults.</summary>
    public static IOException DiskFull(string path) => new($"No space left on device : '{path}'", 28);

    public static void Write(string path, string text) =>
        Write(path, stream => stream.Write(new System.Text.UTF8Encoding(false).GetBytes(text)));

    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        // a rename over /dev/null would replace the device with a plain file
        if (SystemRoots.Any(root => full.StartsWith(root, StringComparison.Ordinal)))
            throw new ArgumentException($"'{path}' is a device or system file, not a place for output; name a file in a folder of yours");
        string temp = $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (var f = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                write(f);
            }
            ThrowIfFaulted(full);
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (StorageException.IsStorageFailure(e))
        {
            TryDelete(temp);
            throw StorageException.From(full, e);
        }
    }

    /// <summary>Deletes a file if it can; for cleaning up after a failure that is already being reported.</summary>
    public static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
