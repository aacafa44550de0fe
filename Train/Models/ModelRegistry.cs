namespace Toolchain.Train.Models;

/// <summary>The one table of architectures, by name.</summary>
public static class ModelRegistry
{
    private static readonly (string Name, string Description, Func<RunConfig, int, AlgorithmicModel> Create)[] Table =
    [
        ("ngpu", "Neural GPU (Kaiser & Sutskever 2015): w x n x m mental image, l CGRU layers per step, n steps", (c, v) => new NeuralGpu(c, v)),
        ("dngpu", "improved Neural GPU (Freivalds & Liepins 2017): 1-D state, diagonal gates, hard nonlinearities", (c, v) => new ImprovedNeuralGpu(c, v)),
        ("gru", "GRU baseline: read the input, then write the output over n more steps", (c, v) => new RecurrentBaseline(c, v)),
        ("lstm", "LSTM baseline: read the input, then write the output over n more steps", (c, v) => new RecurrentBaseline(c, v)),
        ("cnn", "fixed-depth 1-D convolution stack: a bounded receptive field", (c, v) => new ConvBaseline(c, v)),
        ("transformer", "pre-LN Transformer encoder with sinusoidal or learned positions", (c, v) => new TransformerBaseline(c, v)),
    ];

    public static IReadOnlyList<string> Names { get; } = Table.Select(t => t.Name).ToArray();

    public static string Describe(string name) => Table.First(t => t.Name == name).Description;

    public static AlgorithmicModel Create(RunConfig config, int vocab)
    {
        var entry = Table.FirstOrDefault(t => t.Name == config.Arch);
        if (entry.Create is null)
            throw new ArgumentException($"unknown architecture '{config.Arch}'; architectures: {string.Join(", ", Names)}");
        return entry.Create(config, vocab);
    }
}
