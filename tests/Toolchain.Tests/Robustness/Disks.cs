using System.Diagnostics;

namespace Toolchain.Tests.Robustness;

/// <summary>Folders on which writes really fail: a read-only or a tiny tmpfs (mounting needs root), or a folder
/// without write permission (for other users; root ignores permissions).</summary>
public sealed class BrokenFolder : IDisposable
{
    public string Path { get; }
    private readonly bool _mounted;

    private BrokenFolder(string path, bool mounted) => (Path, _mounted) = (path, mounted);

    public static bool IsRoot => Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root";

    /// <summary>A folder nothing can be written into: a read-only tmpfs as root, else a folder with mode 555.</summary>
    public static BrokenFolder ReadOnly(string parent)
    {
        string dir = System.IO.Path.Combine(parent, "readonly");
        Directory.CreateDirectory(dir);
        if (IsRoot)
        {
            Skip.IfNot(Mount(dir, "ro,size=64k", out string why), "cannot mount a read-only tmpfs: " + why);
            return new BrokenFolder(dir, mounted: true);
        }
        Skip.If(OperatingSystem.IsWindows(), "Unix file modes only");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        return new BrokenFolder(dir, mounted: false);
    }

    /// <summary>A tmpfs of <paramref name="kib"/> KiB (root only; skips otherwise).</summary>
    public static BrokenFolder Tiny(string parent, int kib)
    {
        Skip.IfNot(IsRoot, "a full disk is simulated with a small tmpfs, which needs root; the injected-fault test covers the same path");
        string dir = System.IO.Path.Combine(parent, "tiny");
        Directory.CreateDirectory(dir);
        Skip.IfNot(Mount(dir, $"size={kib}k", out string why), "cannot mount a tmpfs: " + why);
        return new BrokenFolder(dir, mounted: true);
    }

    private static bool Mount(string dir, string options, out string why)
    {
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir);
        why = output.Trim();
        return code == 0;
    }

    private static (int Code, string Output) Run(string file, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }
        catch (System.ComponentModel.Win32Exception e) { return (-1, e.Message); }
    }

    public void Dispose()
    {
        if (_mounted) Run("umount", "-l", Path);
        else if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}

/// <summary>Checks shared by the fault tests.</summary>
public static class Expect
{
    /// <summary>One `error:` line on stderr, the given exit code, no stack trace.</summary>
    public static void OneError(this (int Code, string Out, string Err) r, int code, params string[] contains)
    {
        r.Code.Should().Be(code, r.Err + r.Out);
        // progress lines may come before it on stderr; the failure is the one `error:` line, and the last
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).Should().ContainSingle(r.Err);
        lines.Should().NotBeEmpty().And.Subject.Last().Should().StartWith("error: ");
        foreach (var c in contains) r.Err.Should().Contain(c);
        r.Err.Should().NotContain("   at ").And.NotContain("Usage:");
    }

    /// <summary>No temp file of an atomic write anywhere under <paramref name="dir"/>.</summary>
    public static void NoTempFiles(string dir) =>
        Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories).Should().BeEmpty("a failed write removes its temp file");

    /// <summary>Paths and contents of every file under a folder (to prove nothing changed).</summary>
    public static Dictionary<string, string> Snapshot(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => System.IO.Path.GetRelativePath(dir, f), f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));
}
