using Toolchain.Evaluate;

namespace Toolchain.Tests.Evaluate;

/// <summary>A Neural GPU exported with inference_step_factor runs ceil(f n) steps: its report says so, and its
/// token-step throughput counts those steps.</summary>
public class InferenceStepsReportTests
{
    private static ModelSection Model(string arch, string? config) =>
        new("m.onnx", "00", 1, "bmul", arch, 20, config, null, true, 10, 21);

    [Fact]
    public void The_report_names_the_factor_and_counts_ceil_f_n_steps()
    {
        var scaled = Model("dngpu", """{"task":"bmul","inference_step_factor":1.25}""");
        ReportBuilder.Steps(scaled, 41).Should().Be(52, "ceil(1.25 x 41) = ceil(51.25)");
        ReportBuilder.Steps(scaled, 40).Should().Be(50);
        ReportWriter.StepNote(scaled).Should().Be(", run for ceil(1.25 n) steps on length n (inference_step_factor 1.25; the references run n)");

        foreach (var plain in new[] { Model("dngpu", """{"inference_step_factor":1}"""), Model("dngpu", "{}"), Model("ngpu", null), Model("dngpu", "not json") })
        {
            ReportBuilder.Steps(plain, 41).Should().Be(41);
            ReportWriter.StepNote(plain).Should().BeEmpty();
        }
        var transformer = Model("transformer", """{"inference_step_factor":1.5}""");
        ReportBuilder.Steps(transformer, 41).Should().Be(1, "only the Neural GPUs count recurrent steps");
        ReportWriter.StepNote(transformer).Should().BeEmpty();
    }
}
