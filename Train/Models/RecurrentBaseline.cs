using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Toolchain.Train.Models;

/// <summary>
/// `gru` and `lstm`: the recurrent baselines. The network reads the n input tokens, then runs n more steps
/// on zero input and emits the logits for position k at step n + k ("read, then write"), so the answer
/// may depend on the whole input. `layers` stacked single-layer recurrences, with a residual connection
/// around every layer after the first. The state has a fixed size m, whatever the input length: the point
/// the lecture makes about RNN memory.
/// </summary>
public sealed class RecurrentBaseline : AlgorithmicModel
{
    private readonly bool _lstm;
    private readonly int _m;

    private Parameter embedding;                       // [V, m]
    private readonly ModuleList<nn.Module<Tensor, Tensor>> layers; // nn.GRU / nn.LSTM, one layer each
    private Parameter out_weight;                      // [V, m]
    private Parameter out_bias;                        // [V]

    public RecurrentBaseline(RunConfig c, int vocab) : base(c.Arch, c, vocab)
    {
        _lstm = c.Arch == "lstm";
        _m = c.Maps;
        embedding = Uniform(_m, vocab, _m);
        layers = new ModuleList<nn.Module<Tensor, Tensor>>();
        for (int i = 0; i < c.Layers; i++)
            layers.Add(_lstm ? new LstmLayer(_m) : new GruLayer(_m));
        out_weight = Uniform(_m, vocab, _m);
        out_bias = Constant(0.0, vocab);
        RegisterComponents();
    }

    public override ModelOutput Run(Tensor tokens, bool keepStates)
    {
        long b = tokens.shape[0], n = tokens.shape[1];
        var x = torch.cat([Embed(embedding, tokens), torch.zeros(b, n, _m, device: tokens.device)], 1); // [B, 2n, m]
        var states = keepStates ? new List<Tensor>() : null;
        for (int i = 0; i < layers.Count; i++)
        {
            var y = layers[i].forward(x);
            x = i == 0 ? y : x + y;
            states?.Add(x.narrow(1, n, n));
        }
        var logits = torch.matmul(x.narrow(1, n, n), out_weight.t()) + out_bias;
        return new ModelOutput(logits, states is null ? null : torch.stack(states, 1));
    }

    /// <summary>One GRU layer, batch first, zero initial state; parameters in PyTorch's [r, z, n] gate order.</summary>
    public sealed class GruLayer : nn.Module<Tensor, Tensor>
    {
        private readonly GRU gru;
        public GruLayer(int m) : base("gru_layer")
        {
            gru = nn.GRU(m, m, numLayers: 1, batchFirst: true);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => gru.forward(x, null).Item1;
    }

    /// <summary>One LSTM layer, batch first, zero initial state; PyTorch's [i, f, g, o] gate order.</summary>
    public sealed class LstmLayer : nn.Module<Tensor, Tensor>
    {
        private readonly LSTM lstm;
        public LstmLayer(int m) : base("lstm_layer")
        {
            lstm = nn.LSTM(m, m, numLayers: 1, batchFirst: true);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => lstm.forward(x, null).Item1;
    }
}
