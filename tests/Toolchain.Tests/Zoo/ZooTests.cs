using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Toolchain.Evaluate;
using Toolchain.Suites;

namespace Toolchain.Tests.Zoo;

/// <summary>Every shipped model satisfies the contract and still earns its card's claim at 1x.</summary>
public class ZooTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "toolchain-zoo-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    public static string RepoRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Toolchain.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("tests must run inside the repository");
    }

    public static TheoryData<string> Cards()
    {
        var data = new TheoryData<string>();
        string models = Path.Combine(RepoRoot(), "models");
        if (Directory.Exists(models))
            foreach (var card in Directory.GetFiles(models, "*.card.json").Order(StringComparer.Ordinal)) data.Add(Path.GetFileName(card));
        return data;
    }

    [Fact]
    public void Every_model_has_a_card_and_a_report_and_the_zoo_stays_small()
    {
        string models = Path.Combine(RepoRoot(), "models");
        var onnx = Directory.Exists(models) ? Directory.GetFiles(models, "*.onnx").Select(Path.GetFileNameWithoutExtension).Order().ToList() : [];
        var cards = Directory.Exists(models)
            ? Directory.GetFiles(models, "*.card.json").Select(c => Path.GetFileName(c).Replace(".card.json", "")).Order().ToList()
            : [];
        onnx.Should().Equal(cards);
        foreach (var name in onnx)
            File.Exists(Path.Combine(models, name + ".report", "results.json")).Should().BeTrue($"{name} ships its graded report");
        long bytes = new[] { "models", "zoo" }.Select(d => Path.Combine(RepoRoot(), d)).Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories)).Sum(f => new FileInfo(f).Length);
        bytes.Should().BeLessThan(20L * 1024 * 1024, "the whole zoo stays under 20 MiB");
    }

    [Theory]
    [MemberData(nameof(Cards))]
    public void A_zoo_model_satisfies_the_contract_and_its_claim_at_1x(string cardFile)
    {
        string models = Path.Combine(RepoRoot(), "models");
        var card = JsonNode.Parse(File.ReadAllText(Path.Combine(models, cardFile)))!.AsObject();
        string path = Path.Combine(models, (string)card["model"]!);
        Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))).Should().Be((string)card["model_sha256"]!);

        var (info, runner) = ModelIntake.Open(path, null, null, new RunnerOptions { Provider = ProviderChoice.Cpu });
        using (runner)
        {
            info.Task.Name.Should().Be((string)card["task"]!);
            info.Arch.Should().Be((string)card["arch"]!);
            info.TrainLength.Should().Be((int)card["train_length"]!);
            var claim = card["claim"]!.AsObject();
            int samples = Math.Max(1, (int)claim["samples"]!);
            var standard = SuiteFile.LoadBuiltIn("standard");
            // the same examples as the card's report: same seed and level name, random family only
            var oneX = new SuiteDefinition("claim", "1x random", standard.Seed,
                [new SuiteLevel("1x", 1, null, new Dictionary<string, int> { ["random"] = samples }, false)], []);
            var results = Evaluator.Run(info, runner, new EvalOptions { Suite = oneX, OutDir = _out });
            var level = results.Levels.Single();
            level.Total!.Samples.Should().Be(samples);
            level.Total.SequenceAccuracy.Should().BeGreaterThanOrEqualTo((double)claim["min_sequence_accuracy"]!, $"{cardFile} claims it");
        }
    }
}
