using System.CommandLine;
using Toolchain.Suites;

namespace Toolchain.Cli;

/// <summary>An error the user can fix: printed as one line, exit code 2, no stack trace.</summary>
public sealed class UserError(string message) : Exception(message);

public static class Cli
{
    /// <summary>Exit code for bad input (malformed files, unknown names, impossible requests).</summary>
    public const int BadInput = 2;

    /// <summary>Exit code for a check that ran and failed (a gate rule).</summary>
    public const int CheckFailed = 1;

    public static int Invoke(RootCommand root, string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        // Ctrl+C cancels the command's token; give a training step time to finish and save its checkpoint
        // (SIGTERM is not routed to the token: commands that train register it with CancelOnSignals)
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        if (stdout is not null) config.Output = stdout;
        if (stderr is not null) config.Error = stderr;
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (Exception e) when (IsUserError(e))
        {
            (stderr ?? Console.Error).WriteLine("error: " + e.Message);
            return BadInput;
        }
    }

    private static bool IsUserError(Exception e) =>
        e is UserError or Toolchain.Evaluate.EvaluationException or SuiteFormatException or Toolchain.Train.CheckpointException or FormatException or KeyNotFoundException or FileNotFoundException
            or DirectoryNotFoundException or ArgumentException or InvalidDataException or NotSupportedException;

    /// <summary>SIGTERM (a job scheduler, `timeout`, a shutdown) and Ctrl+C cancel <paramref name="stop"/> instead of
    /// ending the process, so training finishes its step and saves a checkpoint; <paramref name="signalled"/> says
    /// whether one came. Dispose the result to restore the default handling.</summary>
    public static IDisposable CancelOnSignals(CancellationTokenSource stop, out Func<bool> signalled)
    {
        bool seen = false;
        void OnSignal(System.Runtime.InteropServices.PosixSignalContext c) { c.Cancel = true; seen = true; stop.Cancel(); }
        var registrations = new[] { System.Runtime.InteropServices.PosixSignal.SIGTERM, System.Runtime.InteropServices.PosixSignal.SIGINT }
            .Select(s => System.Runtime.InteropServices.PosixSignalRegistration.Create(s, OnSignal)).ToList();
        signalled = () => seen;
        return new Registrations(registrations);
    }

    private sealed class Registrations(List<System.Runtime.InteropServices.PosixSignalRegistration> all) : IDisposable
    {
        public void Dispose() => all.ForEach(r => r.Dispose());
    }

    /// <summary>An exception as one line: its message's first line (with the type when it is not one of ours).</summary>
    public static string OneLine(Exception x)
    {
        string first = Toolchain.Evaluate.OnnxRunner.FirstLine(x.Message);
        return x is Toolchain.Evaluate.EvaluationException or UserError ? first : $"{x.GetType().Name}: {first}";
    }

    /// <summary>Writes text with '\n' line endings whatever the platform, so outputs are byte-identical everywhere.</summary>
    public static void Line(TextWriter w, string text = "")
    {
        w.Write(text);
        w.Write('\n');
    }
}
