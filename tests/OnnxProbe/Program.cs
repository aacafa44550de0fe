// Usage: OnnxProbe MODEL.onnx LENGTH TOKEN...  -> prints the argmax token per position, then whether any
// libtorch library is mapped into this process (it must not be).
using Microsoft.ML.OnnxRuntime;

string path = args[0];
int length = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
long[] tokens = args[2..].Select(a => long.Parse(a, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
using var session = new InferenceSession(path);
using var input = OrtValue.CreateTensorValueFromMemory(tokens, [tokens.Length / length, length]);
using var runOptions = new RunOptions();
using var outputs = session.Run(runOptions, ["tokens"], [input], ["logits"]);
var shape = outputs[0].GetTensorTypeAndShape().Shape;
var logits = outputs[0].GetTensorDataAsSpan<float>();
long vocab = shape[^1];
var argmax = new List<long>();
for (long i = 0; i < logits.Length / vocab; i++)
{
    long best = 0;
    for (long v = 1; v < vocab; v++) if (logits[(int)(i * vocab + v)] > logits[(int)(i * vocab + best)]) best = v;
    argmax.Add(best);
}
Console.WriteLine(string.Join(" ", argmax));
bool torchLoaded = File.ReadLines("/proc/self/maps").Any(l => l.Contains("libtorch", StringComparison.Ordinal) || l.Contains("LibTorchSharp", StringComparison.Ordinal));
Console.WriteLine(torchLoaded ? "torch: loaded" : "torch: absent");
