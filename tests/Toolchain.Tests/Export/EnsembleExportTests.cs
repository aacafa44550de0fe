using Google.Protobuf;
using Toolchain.Evaluate;
using Toolchain.Export;
using Toolchain.Export.Onnx;
using Toolchain.Export.Onnx.Proto;
using Toolchain.Suites;
using Toolchain.Tests.Evaluate;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;

namespace Toolchain.Tests.Export;

/// <summary>`export --ensemble`: several exported models joined into one ONNX model whose logits are the log of their
/// averaged softmax, so that any runtime grades the ensemble as `eval --ensemble` does.</summary>
[Collection("torch")]
public class EnsembleExportTests
{
    private static readonly RunnerOptions Cpu = new() { Provider = ProviderChoice.Cpu, Threads = 1 };

    private static MemberModel TinyDngpu(int seed)
    {
        torch.manual_seed(seed);
        var config = (RunConfig.Preset("tiny", "dngpu", "badd") with { Maps = 6, Seed = (ulong)seed }).Validate();
        using var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        return new MemberModel(ModelExporter.Export(model, $"seed-{seed}", new ExportOptions { ParityMultiples = [1] }).Model, $"seed-{seed}.onnx");
    }

    private static int[][] Predict(IReadOnlyList<string> models, IReadOnlyList<int[]> inputs)
    {
        var (_, runner) = models.Count == 1 ? ModelIntake.Open(models[0], null, null, Cpu) : ModelIntake.OpenEnsemble(models, null, null, Cpu);
        using (runner) return runner.Predict(inputs);
    }

    [Fact]
    public void A_joined_ensemble_of_three_dngpu_models_predicts_what_eval_ensemble_predicts()
    {
        using var tmp = new TempDir();
        var members = new[] { 3, 4, 5 }.Select(TinyDngpu).ToList();
        var joined = EnsembleWriter.Join(members);
        var parity = EnsembleWriter.CheckParity(joined, members, EnsembleWriter.ParitySizes(members[0], [1, 4]));
        parity.Select(p => p.Size).Should().Equal(6, 24);
        parity.Should().OnlyContain(p => p.MaxAbsDifference <= 1e-4);

        var paths = members.Select((m, i) => OracleModels.Save(m.Model, tmp.Path, $"m{i}.onnx")).ToList();
        string path = OracleModels.Save(joined, tmp.Path, "joined.onnx");
        var task = TaskRegistry.Get("badd");
        var rng = new Rng(11);
        foreach (int size in new[] { 6, 30 })
        {
            var inputs = Enumerable.Range(0, 12).Select(_ => task.Generate(size, AlgorithmicTask.Random, rng).Input).ToList();
            var alone = paths.Select(p => Predict([p], inputs)).ToList();
            alone[0].Should().NotBeEquivalentTo(alone[1], o => o.WithStrictOrdering(), "the members are different models, so agreeing with the ensemble means something");
            Predict([path], inputs).Should().BeEquivalentTo(Predict(paths, inputs), o => o.WithStrictOrdering(), $"size {size}: one file, the same answers as eval --ensemble");
        }

        var (info, runner) = ModelIntake.Open(path, null, null, Cpu);
        runner.Dispose();
        info.Task.Name.Should().Be("badd");
        info.Arch.Should().Be("dngpu");
        var meta = joined.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        var listed = System.Text.Json.Nodes.JsonNode.Parse(meta[EnsembleWriter.MembersKey])!.AsArray();
        listed.Select(m => (string)m!["sha256"]!).Should().Equal(members.Select(m => m.Sha256));
        listed.Select(m => (string)m!["source_checkpoint"]!).Should().Equal("seed-3", "seed-4", "seed-5");
        meta["toolchain.source"].Should().StartWith("ensemble:").And.HaveLength("ensemble:".Length + 64);
        var (ensembleInfo, ensembleRunner) = ModelIntake.OpenEnsemble(paths, null, null, Cpu);
        ensembleRunner.Dispose();
        meta["toolchain.source"].Should().Be("ensemble:" + ensembleInfo.Sha256, "the joined file names its members as eval --ensemble names the same files");
    }

    [Fact]
    public void The_majority_of_the_members_decides_and_two_disagreeing_members_do_not_invent_answers()
    {
        using var tmp = new TempDir();
        var right = new MemberModel(OracleModels.Copy(trainLength: 10), "right.onnx");
        // right before position 6, PAD (one-hot, as confident as the copy) from there on
        var wrong = new MemberModel(OracleModels.BrokenCopy(goodPositions: 6, trainLength: 10), "wrong.onnx");
        var task = TaskRegistry.Get("copy");
        var rng = new Rng(5);
        var inputs = Enumerable.Range(0, 16).Select(_ => task.Generate(10, AlgorithmicTask.Random, rng).Input).ToList();
        int[][] Joined(params MemberModel[] members) => Predict([OracleModels.Save(EnsembleWriter.Join(members), tmp.Path, Guid.NewGuid().ToString("N") + ".onnx")], inputs);

        Joined(right, wrong, right).Should().BeEquivalentTo(inputs, o => o.WithStrictOrdering());
        var majorityWrong = Joined(wrong, right, wrong);
        var pair = Joined(right, wrong);
        for (int i = 0; i < inputs.Count; i++)
            for (int j = 0; j < 10; j++)
            {
                majorityWrong[i][j].Should().Be(j < 6 ? inputs[i][j] : AlgorithmicTask.Pad, "two wrong members outvote one right one");
                if (j < 6) pair[i][j].Should().Be(inputs[i][j], "where both members agree the pair agrees");
            }
    }

    [Fact]
    public void Models_that_cannot_be_joined_are_refused_with_the_reason()
    {
        var copy = new MemberModel(OracleModels.Copy(trainLength: 10), "copy.onnx");
        var act = () => EnsembleWriter.Join([copy]);
        act.Should().Throw<ArgumentException>().WithMessage("*at least two models*");
        act = () => EnsembleWriter.Join([copy, new MemberModel(OracleModels.Reverse(trainLength: 10), "reverse.onnx")]);
        act.Should().Throw<ArgumentException>().WithMessage("*'reverse.onnx' has toolchain.task = reverse*one task*");
        act = () => EnsembleWriter.Join([copy, new MemberModel(OracleModels.Copy(trainLength: 20), "copy20.onnx")]);
        act.Should().Throw<ArgumentException>().WithMessage("*toolchain.train_length*");
        act = () => EnsembleWriter.Join([copy, new MemberModel(OracleModels.NoMetadata(), "bare.onnx")]);
        act.Should().Throw<ArgumentException>().WithMessage("*'bare.onnx' has no 'toolchain.contract' metadata*");
        var odd = OracleModels.Metadata("copy", 10);
        odd["toolchain.task"] = "nosuch";
        act = () => EnsembleWriter.Join([new MemberModel(OracleModels.Copy(metadata: odd), "odd.onnx"), copy]);
        act.Should().Throw<ArgumentException>().WithMessage("*'odd.onnx' is a model of task 'nosuch'*known tasks*");
        odd["toolchain.task"] = "copy";
        odd["toolchain.train_length"] = "ten";
        act = () => EnsembleWriter.Join([new MemberModel(OracleModels.Copy(metadata: odd), "odd.onnx"), copy]);
        act.Should().Throw<ArgumentException>().WithMessage("*'odd.onnx' has toolchain.train_length = 'ten'*");
        var joined = new MemberModel(EnsembleWriter.Join([copy, copy]), "joined.onnx");
        act = () => EnsembleWriter.Join([joined, copy]);
        act.Should().Throw<ArgumentException>().WithMessage("*'joined.onnx' is already an ensemble*");

        torch.manual_seed(1);
        var config = (RunConfig.Preset("tiny", "dngpu", "badd") with { Maps = 6 }).Validate();
        using var model = ModelRegistry.Create(config, TaskRegistry.Get("badd").Vocab.Count);
        model.eval();
        var withStates = new MemberModel(ModelExporter.Export(model, "s", new ExportOptions { ParityMultiples = [1], WithStates = true }).Model, "states.onnx");
        var plain = new MemberModel(ModelExporter.Export(model, "s", new ExportOptions { ParityMultiples = [1] }).Model, "plain.onnx");
        act = () => EnsembleWriter.Join([plain, withStates]);
        act.Should().Throw<ArgumentException>().WithMessage("*'states.onnx' has the 'states' output*without --with-states*");
    }

    [Fact]
    public void The_cli_joins_files_checks_parity_and_refuses_bad_input_in_one_line()
    {
        using var tmp = new TempDir();
        string right = OracleModels.Save(OracleModels.Copy(trainLength: 10), tmp.Path, "right.onnx");
        string wrong = OracleModels.Save(OracleModels.BrokenCopy(goodPositions: 30, trainLength: 10), tmp.Path, "wrong.onnx");
        var (code, output, err) = CliRunner.InProcess("export", "--ensemble", right, wrong, right, "--out", tmp["e.onnx"]);
        code.Should().Be(0, err);
        output.Should().Contain("parity  size     10").And.Contain("parity  size     40").And.Contain("the ensemble of 3 models");
        var (graded, _, gradeErr) = CliRunner.InProcess("eval", tmp["e.onnx"], "--levels", "1x,10x", "--out", tmp["out"], "--provider", "cpu", "--threads", "1");
        graded.Should().Be(0, gradeErr);
        var r = EvalTests.ReadResults(tmp["out"]);
        r["model"]!["ensemble"]!.AsArray().Select(m => m!["file"]!.GetValue<string>()).Should().Equal(right, wrong, right);
        r["model"]!["file"]!.GetValue<string>().Should().Be("e.onnx", "one file, graded as itself");
        r["levels"]!.AsArray().Should().OnlyContain(l => l!["total"]!["sequence_accuracy"]!.GetValue<double>() == 1.0, "two of three members are right everywhere");

        var (drawn, _, drawErr) = CliRunner.InProcess("visualize", tmp["e.onnx"], "--length", "5", "--out", tmp["v.png"]);
        drawn.Should().Be(2);
        drawErr.Should().StartWith("error:").And.Contain("an ensemble of 3 in one file").And.Contain("visualize one member");

        var wrongBytes = File.ReadAllBytes(wrong);
        File.WriteAllText(tmp["junk.onnx"], "not a model");
        foreach (var args in new[]
        {
            new[] { "export", "--ensemble", right, "--out", tmp["x.onnx"] },
            new[] { "export", "--ensemble", right, tmp["junk.onnx"], "--out", tmp["x.onnx"] },
            new[] { "export", "--ensemble", right, tmp["missing.onnx"], "--out", tmp["x.onnx"] },
            new[] { "export", tmp.Path, "--ensemble", right, wrong, "--out", tmp["x.onnx"] },
            new[] { "export", "--ensemble", right, wrong, "--with-states", "--out", tmp["x.onnx"] },
            new[] { "export", "--out", tmp["x.onnx"] },
            new[] { "export", "--ensemble", right, wrong, "--out", wrong },
        })
        {
            var (c, _, e) = CliRunner.InProcess(args);
            c.Should().Be(2, string.Join(' ', args));
            e.Should().StartWith("error:").And.NotContain("   at ");
            e.Trim().Split('\n').Should().HaveCount(1);
        }
        File.Exists(tmp["x.onnx"]).Should().BeFalse("a refused export writes nothing");
        File.ReadAllBytes(wrong).Should().Equal(wrongBytes, "a member named as --out is left as it was");
    }
}
