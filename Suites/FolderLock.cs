using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Toolchain.Suites;

/// <summary>
/// An exclusive OS lock on a run or report folder, so two processes never write one folder at once. It is an
/// advisory lock (flock) on a small file holding the holder's process id; the operating system releases it when
/// the process ends, however it ends, so a crash leaves no stale lock behind (the file stays, unlocked, and the
/// next run takes it over).
/// </summary>
public sealed class FolderLock : IDisposable
{
    /// <summary>The lock file a run folder holds (train, eval).</summary>
    public const string FileName = ".toolchain.lock";

    private readonly FileStream _stream;

    private FolderLock(FileStream stream) => _stream = stream;

    /// <summary>Locks <paramref name="folder"/> (created when missing) through its <see cref="FileName"/>.</summary>
    public static FolderLock Take(string folder, string what) => TakeFile(Path.Combine(folder, FileName), folder, what);

    /// <summary>Locks through the file <paramref name="lockPath"/>; <paramref name="folder"/> and <paramref name="what"/>
    /// name the thing guarded in the refusal ("training run 'runs/x'").</summary>
    public static FolderLock TakeFile(string lockPath, string folder, string what)
    {
        string full = Path.GetFullPath(lockPath);
        FileStream stream;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Unix: a second holder fails at once with EWOULDBLOCK
            stream = new FileStream(full, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e.HResult == 11 || e.HResult == unchecked((int)0x80070020))
        {
            string holder = HolderPid(full) is { } pid ? $"process {pid}" : "another process";
            throw new FolderBusyException($"{folder}: {holder} is writing this {what} (it holds {full}); " +
                "wait for it to finish, stop it, or choose another --out");
        }
        catch (Exception e) when (StorageException.IsStorageFailure(e))
        {
            throw StorageException.From(full, e);
        }
        try
        {
            var pid = System.Text.Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n");
            stream.SetLength(0);
            stream.Write(pid);
            stream.Flush();
        }
        catch (Exception e) when (StorageException.IsStorageFailure(e))
        {
            stream.Dispose();
            throw StorageException.From(full, e);
        }
        return new FolderLock(stream);
    }

    /// <summary>The process id written in a lock file that another process holds. .NET takes a shared flock on every
    /// file it opens, which the holder's exclusive lock refuses, so the file is read through a plain open(2).</summary>
    private static int? HolderPid(string lockPath)
    {
        try
        {
            int fd;
            try { fd = OpenGlibc(lockPath, 0 /* O_RDONLY */); }
            catch (DllNotFoundException) { fd = Open(lockPath, 0); } // not glibc (musl, macOS)
            if (fd < 0) return null;
            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            using var stream = new FileStream(handle, FileAccess.Read, 1);
            var buffer = new byte[32];
            int n = stream.Read(buffer);
            return int.TryParse(System.Text.Encoding.ASCII.GetString(buffer, 0, n).Trim(), out int pid) ? pid : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [DllImport("libc.so.6", EntryPoint = "open", SetLastError = true)]
    private static extern int OpenGlibc([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    public void Dispose() => _stream.Dispose();
}
