using System.CommandLine;
using Toolchain.Suites;

namespace Toolchain.Cli;

/// <summary>An error the user can fix: printed as one line, exit code 2, no stack trace.</summary>
public sealed class UserError(string message) : Exception(message);

public static class Cli
{
    /// <summary>Exit code for a check that ran and failed (a gate rule), and for nothing else.</summary>
    public const int CheckFailed = 1;

    /// <summary>Exit code for bad input or usage: a typo on the command line, malformed files, unknown names,
    /// impossible requests, a folder that holds files the command did not write.</summary>
    public const int BadInput = 2;

    /// <summary>Exit code for a refusal of the environment: a full disk, a read-only folder, missing permission,
    /// a folder another process is writing. Rerunning after fixing the machine works.</summary>
    public const int EnvironmentFailure = 3;

    /// <summary>Exit code for a defect of the toolchain itself: an exception nothing expected.</summary>
    public const int InternalError = 4;

    /// <summary>Exit code of a command stopped by Ctrl+C or SIGTERM before it finished (128 + SIGINT).</summary>
    public const int Cancelled = 130;

    public static int Invoke(RootCommand root, string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        // Ctrl+C cancels the command's token; give a training step time to finish and save its checkpoint
        // (SIGTERM is not routed to the token: commands that train register it with CancelOnSignals)
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        if (stdout is not null) config.Output = stdout;
        if (stderr is not null) config.Error = stderr;
        var error = stderr ?? Console.Error;
        int Fail(int code, string message)
        {
            Line(error, "error: " + Flatten(message));
            return code;
        }
        try
        {
            var parsed = root.Parse(args);
            // a parse error is one line and exit 2, so a script can tell a typo from a failed gate (exit 1);
            // help is printed only when asked for
            if (parsed.Errors.Count > 0 && parsed.Action is System.CommandLine.Invocation.ParseErrorAction)
                return Fail(BadInput, ParseErrorLine(parsed));
            return parsed.Invoke(config);
        }
        catch (Exception e) when (e is FolderBusyException || StorageException.IsStorageFailure(e))
        {
            return Fail(EnvironmentFailure, e is FolderBusyException ? e.Message : StorageException.Describe(e));
        }
        catch (Exception e) when (IsUserError(e))
        {
            return Fail(BadInput, e.Message);
        }
        catch (OperationCanceledException)
        {
            return Fail(Cancelled, "cancelled before the command finished");
        }
        catch (Exception e)
        {
            return Fail(InternalError, $"internal error ({e.GetType().Name}: {Toolchain.Evaluate.OnnxRunner.FirstLine(e.Message)}); " +
                "this is a defect of toolchain: please report it with the command line");
        }
    }

    private static bool IsUserError(Exception e) =>
        e is UserError or Toolchain.Evaluate.EvaluationException or SuiteFormatException or Toolchain.Train.CheckpointException
            or Toolchain.Train.TrainingDivergedException or FormatException or KeyNotFoundException or FileNotFoundException
            or DirectoryNotFoundException or ArgumentException or InvalidDataException or NotSupportedException;

    /// <summary>Refuses an output folder option that names a file (or a device such as /dev/null).</summary>
    public static string RequireFolder(string dir, string option = "--out")
    {
        if (File.Exists(dir)) throw new UserError($"{option} '{dir}' is a file, not a folder; choose a folder");
        return dir;
    }

    /// <summary>A message as one line: line breaks become spaces.</summary>
    private static string Flatten(string message) =>
        string.Join(" ", message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The parse errors as one line, each unmatched word with the nearest command or option name.</summary>
    private static string ParseErrorLine(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name)
            .Concat(command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Append(o.Name))).Distinct().ToList();
        var parts = new List<string>();
        // the words it could not place first: "Required command was not provided" is their consequence
        bool AboutUnmatched(System.CommandLine.Parsing.ParseError e) => parsed.UnmatchedTokens.Any(t => e.Message.Contains($"'{t}'", StringComparison.Ordinal));
        var errors = parsed.Errors.OrderBy(e => AboutUnmatched(e) ? 0 : 1).ToList();
        foreach (var e in errors)
        {
            string message = e.Message.TrimEnd('.');
            string? token = parsed.UnmatchedTokens.FirstOrDefault(t => message.Contains($"'{t}'", StringComparison.Ordinal));
            if (token is not null && Nearest(token, names) is { } hint) message += $" (did you mean '{hint}'?)";
            if (!parts.Contains(message)) parts.Add(message);
        }
        string help = command == parsed.RootCommandResult.Command ? "toolchain --help" : $"toolchain {command.Name} --help";
        return string.Join("; ", parts) + $"; see `{help}`";
    }

    /// <summary>The known name closest to a mistyped word, when it is close (a third of its letters or fewer differ).</summary>
    public static string? Nearest(string word, IEnumerable<string> names)
    {
        var best = names.Select(n => (Name: n, Distance: EditDistance(word.ToLowerInvariant(), n.ToLowerInvariant())))
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault();
        return best.Name is not null && best.Distance <= Math.Max(1, best.Name.Length / 3) ? best.Name : null;
    }

    private static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

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
