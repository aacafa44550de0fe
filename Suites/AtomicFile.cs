namespace Toolchain.Suites;

/// <summary>Atomic writes: a temp file beside the target, then rename, so readers never see half a file.</summary>
public static class AtomicFile
{
    public static void Write(string path, string text)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, text, new System.Text.UTF8Encoding(false));
        File.Move(temp, full, overwrite: true);
    }
}
