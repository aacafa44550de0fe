namespace Toolchain.Evaluate;

/// <summary>
/// A problem the user can fix (a corrupt or non-conforming model, an impossible request, a run folder that
/// does not match): the command line prints its message as one line and exits with code 2.
/// </summary>
public class EvaluationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// ONNX Runtime could not allocate the memory to run even one example of <see cref="Length"/> tokens (the
/// sub-batch was already halved down to <see cref="Batch"/> = 1). The evaluator records the level, and every
/// longer one, as not graded; the break-point search stops there.
/// </summary>
public sealed class ModelOutOfMemoryException(string message, int length, int batch, Exception? inner = null)
    : EvaluationException(message, inner)
{
    public int Length { get; } = length;
    public int Batch { get; } = batch;

    /// <summary>The status note of what could not be graded, e.g. "out of memory at length 40,001 (batch 1)".</summary>
    public string Reason => $"out of memory at length {Length.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} (batch {Batch})";
}
