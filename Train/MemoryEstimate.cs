using System.Globalization;
using Toolchain.Suites;

namespace Toolchain.Train;

/// <summary>
/// A rough upper estimate of the memory a training run needs, made from the configuration alone (before any
/// tensor is allocated), so a configuration far too large for the machine is refused with numbers instead of
/// crashing in the allocator. Parameters: every architecture is a stack of layers of maps x maps weights
/// (convolutions with kernel_height x kernel_width taps, three gates for the Neural GPUs, four matrices for the
/// recurrent and attention layers), times the relaxation sets; with gradients and two optimizer moments, four
/// copies. Activations: the training batch at the longest training length, width x maps floats per position,
/// kept for the backward pass at each of n steps (Neural GPUs) or each layer, eight tensors per step.
/// </summary>
public sealed record MemoryEstimate(long Parameters, long ParameterBytes, long ActivationBytes)
{
    public long TotalBytes => ParameterBytes + ActivationBytes;

    public static MemoryEstimate For(RunConfig c, AlgorithmicTask task)
    {
        double maps = c.Maps, vocab = task.Vocab.Count;
        bool gpu = c.Arch is "ngpu" or "dngpu";
        double perLayer = maps * maps * Math.Max(3.0 * c.KernelHeight * c.KernelWidth, 12);
        double parameters = (double)c.Relaxation * c.Layers * perLayer + 2 * vocab * maps + c.MaxPositions * maps;
        int length = task.LengthForSize(Math.Max(task.MinSize, c.TrainLength));
        double steps = gpu ? (double)length * c.Layers : c.Layers;
        double activations = (double)c.BatchSize * length * Math.Max(1, c.Width) * maps * steps * 8 * sizeof(float);
        return new MemoryEstimate(Saturate(parameters), Saturate(parameters * 4 * sizeof(float)), Saturate(activations));
    }

    /// <summary>"1.2 GiB (N parameters: ... with gradients and optimizer state; activations ...)".</summary>
    public string Describe() =>
        $"{Gib(TotalBytes)} ({Parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters: {Gib(ParameterBytes)} " +
        $"with gradients and optimizer state; activations {Gib(ActivationBytes)})";

    /// <summary>Refuses a configuration whose estimate exceeds <paramref name="available"/> bytes.</summary>
    public void Check(long available)
    {
        if (TotalBytes <= available) return;
        throw new ArgumentException($"this configuration needs about {Describe()} but only {Gib(available)} " +
            "is available; lower maps, layers, width, batch_size or train_length");
    }

    /// <summary>Memory the machine has available now (MemAvailable), or long.MaxValue where that is unknown.</summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out long kib))
                    return kib * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return long.MaxValue;
    }

    public static string Gib(long bytes) => bytes < 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.#} MiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.##} GiB");

    private static long Saturate(double v) => v >= long.MaxValue ? long.MaxValue : (long)v;
}
