using System.Diagnostics;
using Google.Protobuf;
using Toolchain.Export;
using Toolchain.Export.Onnx;
using Toolchain.Export.Onnx.Proto;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;

namespace Toolchain.Tests.Export;

[Collection("torch")]
public class NeuralGpuExportTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-export-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static AlgorithmicModel Tiny(string arch, int relaxation = 1, int seed = 3)
    {
        torch.manual_seed(seed);
        var config = (RunConfig.Preset("tiny", arch, "badd") with { Relaxation = relaxation, Maps = 6, Width = 3 }).Validate();
        var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        return model;
    }

    [Theory]
    [InlineData("dngpu", 1)]
    [InlineData("ngpu", 1)]
    [InlineData("ngpu", 3)] // relaxation sets not yet averaged: picked per step inside the graph
    public void Loop_and_unrolled_exports_match_TorchSharp_at_1x_4x_and_16x(string arch, int sets)
    {
        using var model = Tiny(arch, sets);
        model.ParameterSets.Should().Be(sets);
        var task = TaskRegistry.Get("badd");
        var loop = ModelExporter.Export(model, "test", new ExportOptions());
        loop.Parity.Select(p => p.Size).Should().Equal(6, 24, 96);
        loop.Parity.Should().OnlyContain(p => p.MaxAbsDifference <= 1e-4);
        foreach (int size in new[] { 6, 24, 96 })
        {
            var unrolled = ModelExporter.Export(model, "test", new ExportOptions { Mode = ExportMode.Unrolled, Length = task.LengthForSize(size) });
            unrolled.Parity.Should().ContainSingle().Which.MaxAbsDifference.Should().BeLessThanOrEqualTo(1e-4);
        }
    }

    [Fact]
    public void A_loop_export_has_the_same_nodes_for_every_length_and_weights_are_stored_once()
    {
        using var model = Tiny("ngpu");
        var loop = ModelExporter.Export(model, "test", new ExportOptions { ParityMultiples = [1] });
        using var longer = Tiny("ngpu");
        var loopAgain = ModelExporter.Export(longer, "test", new ExportOptions { ParityMultiples = [8] });
        loop.Model.Graph.Node.Count.Should().Be(loopAgain.Model.Graph.Node.Count);
        CountNodes(loop.Model.Graph).Should().Be(CountNodes(loopAgain.Model.Graph));

        var short13 = ModelExporter.Export(model, "test", new ExportOptions { Mode = ExportMode.Unrolled, Length = 13 });
        var long49 = ModelExporter.Export(model, "test", new ExportOptions { Mode = ExportMode.Unrolled, Length = 49 });
        long49.Model.Graph.Node.Count.Should().BeGreaterThan(3 * short13.Model.Graph.Node.Count, "unrolled graphs grow with the length");
        long parameters = model.parameters().Sum(p => p.numel());
        FloatCount(short13.Model.Graph).Should().Be(FloatCount(long49.Model.Graph)).And.BeLessThan(parameters + 64);
        FloatCount(loop.Model.Graph).Should().BeLessThan(parameters + 64);
    }

    private static int CountNodes(GraphProto g) =>
        g.Node.Count + g.Node.SelectMany(n => n.Attribute).Where(a => a.G is not null).Sum(a => CountNodes(a.G));

    private static long FloatCount(GraphProto g) =>
        g.Initializer.Where(t => t.DataType == (int)ElementType.Float).Sum(t => t.RawData.Length / 4L);

    [Fact]
    public void States_output_equals_the_TorchSharp_states()
    {
        foreach (var arch in new[] { "ngpu", "dngpu" })
        {
            using var model = Tiny(arch);
            var result = ModelExporter.Export(model, "test", new ExportOptions { WithStates = true, ParityMultiples = [1] });
            var tokens = new long[] { 1, 2, 2, 1, 2, 1, 3, 2, 2, 1, 1, 2, 1 };
            float[] expected;
            long[] expectedShape;
            using (torch.no_grad())
            {
                var states = model.Run(torch.tensor(tokens, [1, 13]), keepStates: true).States!;
                expected = states.contiguous().data<float>().ToArray();
                expectedShape = states.shape;
            }
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(result.Model.ToByteArray());
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(tokens, [1, 13]);
            using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["tokens"], [input], ["logits", "states"]);
            outputs[1].GetTensorTypeAndShape().Shape.Should().Equal(expectedShape);
            var got = outputs[1].GetTensorDataAsSpan<float>().ToArray();
            got.Zip(expected, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f, arch);
        }
    }

    [Theory]
    [InlineData("dngpu", 1)]
    [InlineData("ngpu", 1)]
    [InlineData("ngpu", 3)] // relaxation sets picked per step: the extra steps go on cycling through them
    public void Inference_step_factor_runs_ceil_factor_n_steps_in_TorchSharp_and_in_both_export_modes(string arch, int sets)
    {
        using var model = Tiny(arch, sets);
        var tokens = new long[] { 1, 2, 2, 1, 2, 1, 3, 2, 2, 1, 1, 2, 1 }; // n = 13
        float[] plain;
        using (torch.no_grad()) plain = model.Run(torch.tensor(tokens, [1, 13]), keepStates: false).Logits.contiguous().data<float>().ToArray();

        var config = (model.Config with { InferenceStepFactor = 1.5 }).Validate();
        config.InferenceSteps(13).Should().Be(20, "ceil(1.5 x 13) = ceil(19.5)");
        config.InferenceSteps(41).Should().Be(62);
        (model.Config with { InferenceStepFactor = 1.25 }).InferenceSteps(40).Should().Be(50, "an exact product is not rounded up");
        using var longer = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        Trainer.LoadParameters(longer, model.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter), "test");
        longer.eval();
        float[] expected;
        using (torch.no_grad())
        {
            var output = longer.Run(torch.tensor(tokens, [1, 13]), keepStates: true);
            output.States!.shape[1].Should().Be(21, "the state before the first step and after each of the 20");
            expected = output.Logits.contiguous().data<float>().ToArray();
        }
        expected.Zip(plain, (a, b) => Math.Abs(a - b)).Max().Should().BeGreaterThan(1e-3f, "more steps change the answer of an untrained model");
        longer.train();
        using (torch.no_grad())
            longer.Run(torch.tensor(tokens, [1, 13]), keepStates: true).States!.shape[1].Should().Be(14, "training runs n steps, as the references");
        longer.eval();

        foreach (var options in new[] { new ExportOptions { WithStates = true, ParityMultiples = [1, 4] },
                     new ExportOptions { WithStates = true, Mode = ExportMode.Unrolled, Length = 13 } })
        {
            var result = ModelExporter.Export(longer, "test", options); // parity against TorchSharp at ceil(1.5 n) steps
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(result.Model.ToByteArray());
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(tokens, [1, 13]);
            using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["tokens"], [input], ["logits", "states"]);
            outputs[1].GetTensorTypeAndShape().Shape[1].Should().Be(21, options.Mode.ToString());
            outputs[0].GetTensorDataAsSpan<float>().ToArray().Zip(expected, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f, options.Mode.ToString());
        }
    }

    [Theory]
    [InlineData("dngpu")]
    [InlineData("ngpu")]
    public void Train_step_factor_runs_ceil_factor_n_steps_in_training_only(string arch)
    {
        using var model = Tiny(arch, 1);
        var tokens = torch.tensor(new long[] { 1, 2, 2, 1, 2, 1, 3, 2, 2, 1, 1, 2, 1 }, [1, 13]);
        var config = (model.Config with { TrainStepFactor = 1.25, InferenceStepFactor = 1.5 }).Validate();
        config.TrainSteps(13).Should().Be(17, "ceil(1.25 x 13) = ceil(16.25)");
        config.TrainSteps(40).Should().Be(50, "an exact product is not rounded up");
        using var longer = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        Trainer.LoadParameters(longer, model.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter), "test");
        longer.train();
        using (torch.no_grad())
            longer.Run(tokens, keepStates: true).States!.shape[1].Should().Be(18, "the state before the first step and after each of the 17");
        // the gradient path runs the same count: a loss on the longer run differs from the plain n-step one
        model.train(); longer.train();
        torch.manual_seed(3);
        var plainLoss = model.Run(tokens, keepStates: false).Logits.square().mean().item<float>();
        torch.manual_seed(3);
        var longerLoss = longer.Run(tokens, keepStates: false).Logits.square().mean().item<float>();
        Math.Abs(plainLoss - longerLoss).Should().BeGreaterThan(1e-6f, "17 steps are not 13");
        longer.eval();
        using (torch.no_grad())
            longer.Run(tokens, keepStates: true).States!.shape[1].Should().Be(21, "eval mode runs ceil(1.5 x 13) = 20 steps");
        foreach (var bad in new[] { 0.5, 1.333, 8.5, double.NaN })
            FluentActions.Invoking(() => (model.Config with { TrainStepFactor = bad }).Validate()).Should().Throw<ArgumentException>()
                .WithMessage("*train_step_factor must be a number from 1 to 8 in hundredths*");
        FluentActions.Invoking(() => (RunConfig.Preset("tiny", "gru", "badd") with { TrainStepFactor = 1.5 }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("*train_step_factor*needs arch ngpu or dngpu*");
    }

    [Fact]
    public void Inference_step_factor_is_validated()
    {
        var dngpu = RunConfig.Preset("tiny", "dngpu", "badd");
        foreach (var bad in new[] { 0.5, 1.333, 8.5, double.NaN })
            FluentActions.Invoking(() => (dngpu with { InferenceStepFactor = bad }).Validate()).Should().Throw<ArgumentException>()
                .WithMessage("*inference_step_factor must be a number from 1 to 8 in hundredths*");
        FluentActions.Invoking(() => (RunConfig.Preset("tiny", "gru", "badd") with { InferenceStepFactor = 1.5 }).Validate())
            .Should().Throw<ArgumentException>().WithMessage("*needs arch ngpu or dngpu*");
        (dngpu with { InferenceStepFactor = 1.25 }).Validate().InferenceSteps(41).Should().Be(52);
    }

    [Fact]
    public void Bin_padding_holds_the_state_at_zero_on_PAD_and_the_export_masks_the_same_way()
    {
        torch.manual_seed(5);
        var config = (RunConfig.Preset("tiny", "dngpu", "badd") with { Maps = 6, BinPadding = true }).Validate();
        using var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        var result = ModelExporter.Export(model, "test", new ExportOptions { WithStates = true, ParityMultiples = [1] });
        var tokens = new long[] { 1, 2, 2, 1, 3, 2, 1, 2, 2, 0, 0, 0, 0 };  // a 4-bit sum padded into a 13-long bin
        float[] expectedLogits, expectedStates;
        using (torch.no_grad())
        {
            var output = model.Run(torch.tensor(tokens, [1, 13]), keepStates: true);
            var padStates = output.States![.., .., 9..];  // [1, n+1, 4 PAD positions, m]
            padStates.abs().max().item<float>().Should().Be(0f, "the state on PAD positions stays zero at every step");
            output.States[.., .., ..9].abs().max().item<float>().Should().BeGreaterThan(0f);
            expectedLogits = output.Logits.contiguous().data<float>().ToArray();
            expectedStates = output.States.contiguous().data<float>().ToArray();
        }
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(result.Model.ToByteArray());
        using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(tokens, [1, 13]);
        using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["tokens"], [input], ["logits", "states"]);
        outputs[0].GetTensorDataAsSpan<float>().ToArray().Zip(expectedLogits, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f);
        outputs[1].GetTensorDataAsSpan<float>().ToArray().Zip(expectedStates, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f);

        // without the mask the padded positions compute (the test above would be vacuous otherwise)
        using var unmasked = ModelRegistry.Create(config with { BinPadding = false }, TaskRegistry.Get("badd").Vocab.Count);
        Trainer.LoadParameters(unmasked, model.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter), "test");
        unmasked.eval();
        using (torch.no_grad())
            unmasked.Run(torch.tensor(tokens, [1, 13]), keepStates: true).States![.., .., 9..].abs().max().item<float>().Should().BeGreaterThan(0f);
    }

    [Fact]
    public void Embed_clip_bounds_the_embedded_input_and_the_export_clips_the_same_way()
    {
        torch.manual_seed(6);
        var config = (RunConfig.Preset("tiny", "dngpu", "badd") with { Maps = 6, EmbedClip = true, EmbedDropout = 0.3 }).Validate();
        using var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        using (torch.no_grad()) model.named_parameters().Single(p => p.name == "embedding").parameter.mul_(8); // most entries past +-1
        model.eval();
        var tokens = new long[] { 1, 2, 2, 1, 3, 2, 1, 2, 2 };
        float[] expected;
        using (torch.no_grad())
        {
            var output = model.Run(torch.tensor(tokens, [1, 9]), keepStates: true);
            output.States![.., 0].abs().max().item<float>().Should().Be(1f, "the clipped embedding reaches but never passes 1");
            expected = output.Logits.contiguous().data<float>().ToArray();
        }
        var result = ModelExporter.Export(model, "test", new ExportOptions { ParityMultiples = [1, 4] });
        result.Parity.Should().OnlyContain(p => p.MaxAbsDifference < 1e-4);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(result.Model.ToByteArray());
        using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(tokens, [1, 9]);
        using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["tokens"], [input], ["logits"]);
        outputs[0].GetTensorDataAsSpan<float>().ToArray().Zip(expected, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f);

        // the same weights without the clip give different logits (the check above would be vacuous otherwise)
        using var unclipped = ModelRegistry.Create(config with { EmbedClip = false, EmbedDropout = 0 }, TaskRegistry.Get("badd").Vocab.Count);
        Trainer.LoadParameters(unclipped, model.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter), "test");
        unclipped.eval();
        using (torch.no_grad())
            unclipped.Run(torch.tensor(tokens, [1, 9]), keepStates: false).Logits.contiguous().data<float>().ToArray()
                .Zip(expected, (a, b) => Math.Abs(a - b)).Max().Should().BeGreaterThan(1e-3f);
    }

    [Fact]
    public void A_model_whose_graph_disagrees_with_TorchSharp_is_refused()
    {
        using var model = Tiny("dngpu");
        var act = () => ModelExporter.Export(model, "test", new ExportOptions { Tolerance = 1e-12, Float64Reference = false });
        // float32 graphs never agree to 1e-12 at every logit: the refusal path and its message
        act.Should().Throw<ParityException>().WithMessage("parity check failed at size 6 (length 13)*exceeds*not written*");
    }

    [Fact]
    public void Rounding_noise_over_the_tolerance_passes_by_the_float64_rule_but_a_wrong_graph_does_not()
    {
        using var model = Tiny("dngpu");
        var options = new ExportOptions { Tolerance = 1e-12 };
        var result = ModelExporter.Export(model, "test", options);
        // points over 1e-12 have a float64 measurement, and there ONNX Runtime is within float32 noise
        var over = result.Parity.Where(p => p.MaxAbsDifference > 1e-12).ToList();
        over.Should().NotBeEmpty("float32 graphs do not agree to 1e-12 at every logit");
        over.Should().OnlyContain(p => !double.IsNaN(p.OnnxFloat32Error) && p.WithinFloat32Noise(1e-12));
        over.Should().OnlyContain(p => p.TorchFloat32Error < 1e-5 && p.OnnxFloat32Error < 1e-5);
        // the sensitivity (one float32 epsilon on every parameter, in float64) is of rounding size: not 0, tiny
        over.Should().OnlyContain(p => p.Float32Sensitivity > 1e-10 && p.Float32Sensitivity < 1e-5);

        // the same graph against a model whose output bias moved by 1e-3: far beyond rounding, refused
        using (torch.no_grad())
            model.named_parameters().Single(p => p.name == "out_bias").parameter.add_(1e-3);
        var act = () => ModelExporter.CheckParity(model, result.Model, options, TaskRegistry.Get(model.Config.Task));
        act.Should().Throw<ParityException>().WithMessage("*against a float64 run ONNX Runtime is off by 0.001*not written*");
    }

    [Fact]
    public void The_float64_rule_uses_the_larger_of_TorchSharps_own_error_and_the_models_float32_sensitivity()
    {
        // the figures of the dngpu-duplicate checkpoint at length 640: TorchSharp float32 happened to round luckily
        var point = new ParityPoint(320, 640, 2.24e-4, TorchFloat32Error: 2.71e-5, OnnxFloat32Error: 2.47e-4);
        point.Passes(1e-4).Should().BeFalse("2.47e-4 > 2 x 2.71e-5 + 1e-4 with no sensitivity measured");
        (point with { Float32Sensitivity = 1.40e-4 }).Passes(1e-4).Should().BeTrue("2.47e-4 <= 2 x 1.40e-4 + 1e-4");
        (point with { Float32Sensitivity = 1e-6 }).Passes(1e-4).Should().BeFalse();
        (point with { OnnxFloat32Error = 1e-3, Float32Sensitivity = 1.40e-4 }).Passes(1e-4).Should().BeFalse("1e-3 is beyond twice the noise");
    }

    [Fact]
    public void A_parity_failure_at_a_chaotic_length_names_the_shorter_lengths_to_check_instead()
    {
        var options = new ExportOptions();
        // dngpu-bmul at step 6,000, size 320 (16x of 20): TorchSharp float32 itself is 0.085 from float64
        var chaotic = new ParityPoint(320, 641, 0.615, TorchFloat32Error: 0.0854, OnnxFloat32Error: 0.529, Float32Sensitivity: 0.0806);
        ModelExporter.ChaoticHint(chaotic, options, trainLength: 20).Should().Contain("numerically chaotic").And.Contain("--parity-multiples 1,4");
        ModelExporter.ChaoticHint(chaotic with { Size = 80 }, options, trainLength: 20).Should().Contain("--parity-multiples 1 ");
        // an ordinary failure (float32 close to float64) gets no such advice: the graph is what is wrong
        ModelExporter.ChaoticHint(chaotic with { TorchFloat32Error = 2e-5 }, options, trainLength: 20).Should().BeEmpty();

        ExportOptions.ParseMultiples(" 1, 4 ", "--parity-multiples").Should().Equal(1, 4);
        FluentActions.Invoking(() => ExportOptions.ParseMultiples("1,0", "--parity-multiples"))
            .Should().Throw<ArgumentException>().WithMessage("--parity-multiples: '0' is not a positive number*");
        FluentActions.Invoking(() => ExportOptions.ParseMultiples(",", "--parity-multiples"))
            .Should().Throw<ArgumentException>().WithMessage("--parity-multiples: no multiples given*");
    }

    [Fact]
    public void Export_command_writes_a_model_that_runs_in_a_process_without_TorchSharp()
    {
        var config = RunConfig.Preset("tiny", "dngpu", "copy") with { Steps = 2, CheckpointEvery = 2 };
        using (var t = new Trainer(config, _dir)) t.Run();
        string onnx = Path.Combine(_dir, "model.onnx");
        var (code, output, err) = CliRunner.InProcess("export", _dir, "--out", onnx);
        code.Should().Be(0, err);
        output.Should().Contain("parity").And.Contain("wrote");
        Directory.GetFiles(_dir, "*.tmp").Should().BeEmpty("the model is written atomically");

        var probe = RunProbe(onnx, 6, [1, 2, 2, 1, 1, 2]);
        probe.Should().EndWith("torch: absent\n");
        probe.Split('\n')[0].Split(' ').Should().HaveCount(6);
    }

    [Fact]
    public void Export_of_a_corrupt_checkpoint_fails_clearly()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllBytes(Path.Combine(_dir, Checkpoint.FileName(5)), "TCKPT001 and then 64 bytes of nothing useful: 0123456789abcdef0123456789abcdef"u8.ToArray());
        var (code, _, err) = CliRunner.InProcess("export", _dir, "--out", Path.Combine(_dir, "m.onnx"));
        code.Should().Be(2);
        err.Should().StartWith("error: ").And.Contain("truncated or corrupt");
        File.Exists(Path.Combine(_dir, "m.onnx")).Should().BeFalse();
        var (code2, _, err2) = CliRunner.InProcess("export", Path.Combine(_dir, "nothing-here"), "--out", Path.Combine(_dir, "m.onnx"));
        code2.Should().Be(2);
        err2.Should().Contain("no checkpoint");
    }

    /// <summary>Runs tests/OnnxProbe (ONNX Runtime only) as a separate process.</summary>
    public static string RunProbe(string model, int length, long[] tokens)
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Toolchain.sln"))) dir = Path.GetDirectoryName(dir);
        dir.Should().NotBeNull("the tests run inside the repository");
        string configuration = AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug";
        string probe = Path.Combine(dir!, "tests", "OnnxProbe", "bin", configuration, "net10.0", "OnnxProbe.dll");
        File.Exists(probe).Should().BeTrue($"{probe} is built with the tests");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(probe);
        psi.ArgumentList.Add(model);
        psi.ArgumentList.Add(length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var t in tokens) psi.ArgumentList.Add(t.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        p.ExitCode.Should().Be(0, stderr);
        return stdout;
    }
}
