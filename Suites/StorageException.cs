namespace Toolchain.Suites;

/// <summary>
/// The machine refused a file operation that the input did not cause: a full disk, a read-only folder, missing
/// permission. The command line prints it as one line naming the path and exits with code 3.
/// </summary>
public sealed class StorageException(string path, string cause, Exception? inner = null)
    : IOException($"{path}: {cause}", inner)
{
    public string Path { get; } = path;

    /// <summary>Wraps a failed operation on <paramref name="path"/> (the file the user knows, not a temp file).</summary>
    public static StorageException From(string path, Exception e) => new(path, Cause(e), e);

    /// <summary>"PATH: cause" for an exception of a file operation that was not wrapped where it happened; the path is
    /// the one .NET quotes in its message.</summary>
    public static string Describe(Exception e)
    {
        if (e is StorageException s) return s.Message;
        var quoted = System.Text.RegularExpressions.Regex.Match(e.Message, "'([^']+)'");
        return quoted.Success ? $"{quoted.Groups[1].Value}: {Cause(e)}" : $"{Cause(e)} ({FirstLine(e.Message)})";
    }

    /// <summary>True for the exceptions a file operation throws when the machine refuses it.</summary>
    public static bool IsStorageFailure(Exception e) =>
        e is UnauthorizedAccessException or PathTooLongException
        || (e is IOException && e is not FileNotFoundException and not DirectoryNotFoundException and not EndOfStreamException);

    /// <summary>The cause in a few words, from the errno .NET keeps in HResult on Unix.</summary>
    public static string Cause(Exception e) => e switch
    {
        StorageException s => s.Message[(s.Path.Length + 2)..],
        UnauthorizedAccessException => "permission denied (or the file system is read-only)",
        IOException { HResult: 28 } => "no space left on the device (the disk is full)",
        IOException { HResult: 122 } => "the disk quota is exceeded",
        IOException { HResult: 30 } => "the file system is read-only",
        IOException { HResult: 13 or 1 } => "permission denied",
        IOException { HResult: 21 } => "it is a folder, not a file",
        IOException { HResult: 20 } => "a part of the path is a file, not a folder",
        IOException { HResult: 17 } => "a file of that name is in the way (a folder is needed there)",
        _ => FirstLine(e.Message),
    };

    private static string FirstLine(string message)
    {
        int nl = message.IndexOfAny(['\r', '\n']);
        return nl < 0 ? message : message[..nl];
    }
}
