using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Toolchain.Train.Models;

/// <summary>What one forward pass produces: logits [batch, length, vocab]; optionally the state at every step
/// [batch, steps+1, length, channels] for visualization; optionally a saturation cost (DNGPU).</summary>
public sealed record ModelOutput(Tensor Logits, Tensor? States = null, Tensor? Saturation = null);

/// <summary>
/// Every architecture fits one aligned interface: int64 tokens [batch, length] in, logits for every input
/// position out. The whole model lives in one file per architecture, readable top to bottom.
/// </summary>
public abstract class AlgorithmicModel : nn.Module<Tensor, Tensor>
{
    protected AlgorithmicModel(string name, RunConfig config, int vocab) : base(name)
    {
        Config = config;
        Vocab = vocab;
    }

    public RunConfig Config { get; }
    public int Vocab { get; }

    public override Tensor forward(Tensor tokens) => Run(tokens, keepStates: false).Logits;

    public abstract ModelOutput Run(Tensor tokens, bool keepStates);

    /// <summary>Steps a recurrent model runs on an input of length n: ceil(train_step_factor n) while training (n by
    /// default, as the references train), ceil(inference_step_factor n) in eval mode.</summary>
    public long RecurrentSteps(long n) => training ? Config.TrainSteps(n) : Config.InferenceSteps(n);

    /// <summary>Number of relaxation parameter sets still separate (1 once averaged, or when relaxation is off).</summary>
    public virtual int ParameterSets => 1;

    /// <summary>Sum of squared distances of the relaxation parameter sets from their mean (0 without relaxation).</summary>
    public virtual Tensor RelaxationDistance() => torch.zeros(1, device: Device).squeeze();

    /// <summary>Replaces the relaxation parameter sets by their mean: afterwards one parameter set remains.</summary>
    public virtual void AverageParameterSets() { }

    public Device Device => parameters().First().device;

    /// <summary>Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) initial values, drawn from torch's seeded generator.</summary>
    protected static Parameter Uniform(long fanIn, params long[] shape) => UniformWithin(1.0 / Math.Sqrt(fanIn), shape);

    /// <summary>Glorot: Uniform(-sqrt(6/(fan_in + fan_out)), +sqrt(...)), TensorFlow's default initializer.</summary>
    protected static Parameter Glorot(long fanIn, long fanOut, params long[] shape) => UniformWithin(Math.Sqrt(6.0 / (fanIn + fanOut)), shape);

    private static Parameter UniformWithin(double a, long[] shape) => new(torch.empty(shape).uniform_(-a, a));

    protected static Parameter Constant(double value, params long[] shape) => new(torch.full(shape, value));

    /// <summary>Embeds tokens [B, L] with table [V, m] into [B, L, m].</summary>
    protected static Tensor Embed(Tensor table, Tensor tokens)
    {
        long b = tokens.shape[0], l = tokens.shape[1];
        return table.index_select(0, tokens.reshape(-1)).reshape(b, l, table.shape[1]);
    }
}
