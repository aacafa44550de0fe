using System.Text.RegularExpressions;
using Toolchain.Tests.Evaluate;
using Toolchain.Tests.Zoo;

namespace Toolchain.Tests.Docs;

/// <summary>The README and the manuals in docs/ run as written: every repository path they name exists, every
/// `toolchain` command in their examples is one the program has, and the sample CI gate passes on the zoo.</summary>
public partial class ReadmeTests
{
    private static IEnumerable<string> Pages()
    {
        string root = ZooTests.RepoRoot();
        return Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Order(StringComparer.Ordinal).Prepend(Path.Combine(root, "README.md"));
    }

    /// <summary>Paths under the repository's folders, also as a container mounts them (/models/x.onnx).</summary>
    [GeneratedRegex(@"(?<![\w.$-])/?((?:models|docs|tools|zoo|Suites|Train|Export|Evaluate|build|tests|\.ci|reports/bench)/[\w./-]*\w)")]
    private static partial Regex RepositoryPath();

    [GeneratedRegex(@"^\s*(?:- run: )?toolchain ([a-z][a-z-]*)", RegexOptions.Multiline)]
    private static partial Regex ToolchainCommand();

    [Fact]
    public void Every_repository_path_in_the_readme_and_the_manuals_exists()
    {
        string root = ZooTests.RepoRoot();
        var missing = new List<string>();
        var checkedPaths = new HashSet<string>();
        foreach (string page in Pages())
            foreach (Match m in RepositoryPath().Matches(File.ReadAllText(page)))
            {
                string path = m.Groups[1].Value.TrimEnd('.');
                if (path.Contains("NAME", StringComparison.Ordinal)) continue; // a placeholder
                if (path.Contains("/bin/", StringComparison.Ordinal)) continue; // build output, there after a Release build only
                checkedPaths.Add(path);
                if (!File.Exists(Path.Combine(root, path)) && !Directory.Exists(Path.Combine(root, path)))
                    missing.Add($"{Path.GetFileName(page)}: {path}");
            }
        checkedPaths.Should().Contain(["models/dngpu-badd.onnx", "models/dngpu-reverse.onnx", "docs/gates.example.yaml", ".ci/run"]);
        missing.Should().BeEmpty("the README's examples must run as written");
        File.ReadAllText(Path.Combine(root, "README.md")).Should().NotContain("badd-dngpu");
    }

    [Fact]
    public void Every_toolchain_command_in_the_examples_exists_and_the_sample_gate_passes_on_the_zoo()
    {
        var known = Toolchain.Cli.Commands.Root.Create().Subcommands.Select(c => c.Name).ToHashSet();
        var used = Pages().SelectMany(p => ToolchainCommand().Matches(File.ReadAllText(p)).Select(m => m.Groups[1].Value)).ToHashSet();
        used.Should().NotBeEmpty().And.BeSubsetOf(known);

        string root = ZooTests.RepoRoot();
        string ci = File.ReadAllText(Path.Combine(root, "docs", "report-and-ci.md"));
        ci.Should().MatchRegex(@"toolchain eval models/dngpu-badd\.onnx [^\n]*--break-point", "the sample gate checks the break point");
        using var tmp = new TempDir();
        var (code, output, err) = CliRunner.InProcess("compare", Path.Combine(root, "models", "dngpu-badd.report", "results.json"),
            "--gate", Path.Combine(root, "docs", "gates.example.yaml"), "--out", tmp.Path);
        code.Should().Be(0, output + err);
    }
}
