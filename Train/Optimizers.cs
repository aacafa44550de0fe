using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Toolchain.Train;

/// <summary>
/// AdaMax and Adam, written out so that their whole state is named tensors that checkpoints save and
/// restore exactly (resume is bit-for-bit), and so that beta2 may follow a schedule.
///   AdaMax: m = b1 m + (1-b1) g;  u = max(b2 u, |g| + eps);  p -= lr / (1 - b1^t) * m / u
///   Adam:   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * m^ / (sqrt(v^) + eps)
///   adamax-dngpu, the DNGPU reference's AdaMax: each gradient element is first clipped to +-(1.2 u + 1e-4)
///   with the previous u (so u grows at most 1.2x per step, from 1e-4), then m = b1 m + (1-b1) g;
///   u = max(b2 u, |g|);  p -= lr * m / (u + eps), with no bias correction.
/// </summary>
public sealed class Optimizer(string kind)
{
    private readonly Dictionary<string, Tensor> _first = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _second = new(StringComparer.Ordinal);

    public string Kind { get; } = kind is "adamax" or "adam" or "adamax-dngpu" ? kind : throw new ArgumentException($"unknown optimizer '{kind}'");
    public long StepCount { get; set; }

    public void Step(IEnumerable<(string Name, Parameter Param)> parameters, double lr, double beta1, double beta2, double eps)
    {
        using var _ = torch.no_grad();
        StepCount++;
        double bias1 = 1 - Math.Pow(beta1, StepCount);
        double bias2 = 1 - Math.Pow(beta2, StepCount);
        foreach (var (name, p) in parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            var m = State(_first, name, p);
            var v = State(_second, name, p);
            if (Kind == "adamax-dngpu")
            {
                var limit = v * 1.2 + 1e-4;
                var clipped = torch.minimum(torch.maximum(g, -limit), limit);
                m.mul_(beta1).add_(clipped, alpha: 1 - beta1);
                v.copy_(torch.maximum(v.mul_(beta2), clipped.abs()));
                p.addcdiv_(m, v + eps, value: -lr);
                continue;
            }
            m.mul_(beta1).add_(g, alpha: 1 - beta1);
            if (Kind == "adamax")
            {
                v.copy_(torch.maximum(v.mul_(beta2), g.abs().add_(eps)));
                p.addcdiv_(m, v, value: -lr / bias1);
            }
            else
            {
                v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
                var denom = (v / bias2).sqrt_().add_(eps);
                p.addcdiv_(m, denom, value: -lr / bias1);
            }
        }
    }

    /// <summary>Moment tensors survive every dispose scope; a parameter whose shape changed (relaxation
    /// averaging) starts from fresh moments.</summary>
    private static Tensor State(Dictionary<string, Tensor> table, string name, Parameter p)
    {
        if (table.TryGetValue(name, out var t) && t.shape.SequenceEqual(p.shape)) return t;
        t?.Dispose();
        t = torch.zeros_like(p).DetachFromDisposeScope();
        table[name] = t;
        return t;
    }

    /// <summary>The state as named tensors ("first/NAME", "second/NAME").</summary>
    public IEnumerable<(string Name, Tensor Value)> StateTensors() =>
        _first.Select(kv => ("first/" + kv.Key, kv.Value)).Concat(_second.Select(kv => ("second/" + kv.Key, kv.Value)));

    public void LoadState(IReadOnlyDictionary<string, Tensor> tensors, Device device)
    {
        foreach (var t in _first.Values.Concat(_second.Values)) t.Dispose();
        _first.Clear();
        _second.Clear();
        foreach (var (name, value) in tensors)
        {
            if (name.StartsWith("first/", StringComparison.Ordinal)) _first[name[6..]] = value.to(device).DetachFromDisposeScope();
            else if (name.StartsWith("second/", StringComparison.Ordinal)) _second[name[7..]] = value.to(device).DetachFromDisposeScope();
        }
    }
}
