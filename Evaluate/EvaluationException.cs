namespace Toolchain.Evaluate;

/// <summary>
/// A problem the user can fix (a corrupt or non-conforming model, an impossible request, a run folder that
/// does not match): the command line prints its message as one line and exits with code 2.
/// </summary>
public sealed class EvaluationException(string message, Exception? inner = null) : Exception(message, inner);
