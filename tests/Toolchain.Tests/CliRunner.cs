using System.Diagnostics;

namespace Toolchain.Tests;

/// <summary>Runs the `toolchain` command line, in-process or as a separate process.</summary>
public static class CliRunner
{
    public static (int Code, string Out, string Err) InProcess(params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        int code = Toolchain.Cli.Cli.Invoke(Toolchain.Cli.Commands.Root.Create(), args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A fresh `dotnet toolchain.dll` process: proves results do not depend on process state.</summary>
    public static (int Code, string Out, string Err) Process(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "toolchain.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("toolchain did not finish in 120 s"); }
        return (p.ExitCode, outTask.Result, errTask.Result);
    }
}
