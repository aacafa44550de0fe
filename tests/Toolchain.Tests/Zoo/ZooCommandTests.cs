using System.Text.Json.Nodes;

namespace Toolchain.Tests.Zoo;

/// <summary>`toolchain zoo` goes on past a model it cannot grade and says so in its exit code.</summary>
[Collection("torch")]
public class ZooCommandTests
{
    [Fact]
    public void Every_entry_of_the_shipped_zoo_resolves_and_every_committed_run_resumes_under_it()
    {
        string root = ZooTests.RepoRoot();
        var entries = Toolchain.Cli.Commands.ZooCommand.Load(Path.Combine(root, "zoo", "zoo.yaml"));
        entries.Select(e => e.Name).Should().OnlyHaveUniqueItems();
        // an ensemble's members are entries of their own, each made in runs/NAME/member-i
        var runs = entries.SelectMany(e => e.Members is null
            ? [(Entry: e, Run: Path.Combine(root, "zoo", "runs", e.Name))]
            : e.Members.Select((_, i) => (Entry: e.Member(i), Run: Toolchain.Cli.Commands.ZooEntry.MemberDir(Path.Combine(root, "zoo", "runs", e.Name), i))));
        foreach (var (e, run) in runs)
        {
            var config = Toolchain.Cli.Commands.ZooCommand.Config(e, threads: 1); // throws on a bad preset or setting
            if (Toolchain.Train.Checkpoint.InDirectory(run).Count == 0) continue;
            // a run directory's newest checkpoint must be resumable with the entry's configuration (TryResume
            // throws on a different one); nothing is written
            using var trainer = new Toolchain.Train.Trainer(config, run);
            trainer.TryResume().Should().BeTrue($"{e.Name}'s committed checkpoint resumes");
            trainer.Step.Should().BeLessThanOrEqualTo(e.Steps, e.Name);
        }
    }

    [Fact]
    public void A_model_that_cannot_be_graded_is_reported_and_the_zoo_goes_on_to_the_next_then_exits_1()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["zoo.yaml"], """
            models:
              - {name: bad-copy, task: copy, arch: cnn, preset: tiny, steps: 2}
              - {name: good-copy, task: copy, arch: cnn, preset: tiny, steps: 2, parity: "1,2", note: "trained on a test machine"}
            """);
        string models = tmp["models"];
        Directory.CreateDirectory(models);
        // a file where bad-copy's report folder goes: grading it fails when the report folder is made
        File.WriteAllText(Path.Combine(models, "bad-copy.report"), "in the way");

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05");

        code.Should().Be(1, output + err);
        output.Should().MatchRegex(@"== bad-copy: not graded: [^\n]*bad-copy\.report[^\n]* is a file, not a folder[^\n]*\n");
        output.Should().Contain("== good-copy: exported at step 2");
        output.Should().MatchRegex(@"== good-copy: k4 [0-9.]+%, 1x [0-9.]+%");
        output.Should().EndWith("== 1 zoo model failed: bad-copy\n");
        var card = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(models, "good-copy.card.json")))!;
        card["note"]!.GetValue<string>().Should().Be("trained on a test machine", "a zoo entry's note is copied to its card");
        card["steps"]!.GetValue<long>().Should().Be(2);
        card["export_parity_multiples"]!.GetValue<string>().Should().Be("1,2", "the entry's parity lengths are recorded on the card");
        File.Exists(Path.Combine(models, "good-copy.report", "results.json")).Should().BeTrue();
        // --regrade grades the published model again and keeps what the card says about training
        File.WriteAllText(Path.Combine(models, "good-copy.report", "stale.txt"), "from the first grading");
        var (code2, output2, err2) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05", "--only", "good-copy", "--regrade");
        code2.Should().Be(0, output2 + err2);
        output2.Should().MatchRegex(@"== good-copy: regraded: k4 [0-9.]+%, 1x [0-9.]+%").And.NotContain("exported");
        var card2 = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(models, "good-copy.card.json")))!;
        card2["note"]!.GetValue<string>().Should().Be("trained on a test machine");
        card2["checkpoint_sha256"]!.GetValue<string>().Should().Be(card["checkpoint_sha256"]!.GetValue<string>());
        card2["levels"]!["1x"].Should().NotBeNull();
        File.Exists(Path.Combine(models, "good-copy.report", "stale.txt")).Should().BeFalse("the report is written afresh");
        CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--only", "bad-copy", "--regrade").Code.Should().Be(1, "bad-copy has no published model");
        // the model that could not be graded is not left behind without a card
        File.Exists(Path.Combine(models, "bad-copy.onnx")).Should().BeFalse();
        File.Exists(Path.Combine(models, "bad-copy.card.json")).Should().BeFalse();
    }

    [Fact]
    public void Packed_zoo_training_trains_the_seeds_of_one_recipe_together_into_their_own_runs()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["zoo.yaml"], """
            models:
              - {name: ref-s1, task: badd, arch: dngpu, steps: 3, set: [seed=1, maps=6, train_length=3, batch_size=4]}
              - {name: ref-s2, task: badd, arch: dngpu, steps: 3, set: [seed=2, maps=6, train_length=3, batch_size=4]}
              - {name: other, task: badd, arch: dngpu, steps: 3, set: [seed=3, maps=9, train_length=3, batch_size=4]}
              - {name: gru-copy, task: copy, arch: gru, preset: tiny, steps: 2}
            """);
        var entries = Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]);
        Toolchain.Cli.Commands.ZooCommand.SeedGroups(entries, 1).Select(g => g.Select(e => e.Name)).Should()
            .ContainSingle().Which.Should().Equal("ref-s1", "ref-s2");
        string models = tmp["models"];
        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05", "--packed");
        code.Should().Be(0, output + err);
        output.Should().Contain("== ref-s1, ref-s2: training dngpu on badd to step 3, 2 seeds packed in one process")
            .And.Contain("== other: training dngpu").And.Contain("== gru-copy: training gru");
        output.Should().NotContain("== ref-s1: training").And.Contain("seed 2: step");
        foreach (var (name, seed) in new[] { ("ref-s1", 1UL), ("ref-s2", 2UL) })
        {
            var ckpt = Toolchain.Train.Checkpoint.Load(Toolchain.Train.Checkpoint.InDirectory(Path.Combine(tmp.Path, "runs", name))[0]);
            (ckpt.Config.Seed, Toolchain.Train.TrainerState.FromJson(ckpt.State).Step).Should().Be((seed, 3L));
            File.Exists(Path.Combine(models, name + ".card.json")).Should().BeTrue();
        }
    }

    [Fact]
    public void Compacting_drops_the_optimizer_state_of_finished_runs_only_and_a_compacted_run_exports_but_does_not_train_on()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["zoo.yaml"], """
            models:
              - {name: done, task: copy, arch: cnn, preset: tiny, steps: 2}
              - {name: going, task: copy, arch: cnn, preset: tiny, steps: 4}
            """);
        var entries = Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]);
        foreach (var e in entries)
        {
            // both runs stop at step 2: "done" has finished, "going" has 2 steps left
            using var trainer = new Toolchain.Train.Trainer(Toolchain.Cli.Commands.ZooCommand.Config(e, threads: 1) with { Steps = 2 }, Path.Combine(tmp.Path, "runs", e.Name));
            trainer.Run();
        }
        string doneFile = Toolchain.Train.Checkpoint.InDirectory(Path.Combine(tmp.Path, "runs", "done"))[0];
        string goingFile = Toolchain.Train.Checkpoint.InDirectory(Path.Combine(tmp.Path, "runs", "going"))[0];
        var full = Toolchain.Train.Checkpoint.Load(doneFile);
        full.HasOptimizerState.Should().BeTrue();
        long fullBytes = new FileInfo(doneFile).Length, goingBytes = new FileInfo(goingFile).Length;

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--compact");

        code.Should().Be(0, output + err);
        output.Should().Contain("== done: compacted ckpt-00000002.tckpt: ").And.Contain($"sha256 {full.FileHash}")
            .And.Contain("== going: not compacted: at step 2 of 4, it still trains").And.NotContain("exported");
        new FileInfo(goingFile).Length.Should().Be(goingBytes, "an unfinished run keeps its optimizer state");
        var compacted = Toolchain.Train.Checkpoint.Load(doneFile);
        compacted.HasOptimizerState.Should().BeFalse();
        compacted.CompactedFrom.Should().Be(full.FileHash);
        long optimBytes = full.Section("optim/").Values.Sum(t => t.numel() * 4);
        optimBytes.Should().BeGreaterThan(full.Section("model/").Values.Sum(t => t.numel() * 4), "Adam keeps two moments per weight");
        new FileInfo(doneFile).Length.Should().BeLessThan(fullBytes - optimBytes + 200, "the moments are gone; the header names the full checkpoint's hash");
        compacted.Config.Should().Be(full.Config);
        compacted.State.ToJsonString().Should().Be(full.State.ToJsonString());
        foreach (var (name, t) in full.Section("model/"))
            compacted.Section("model/")[name].eq(t).all().item<bool>().Should().BeTrue($"weight {name} is kept bit for bit");

        CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--compact", "--only", "done").Out.Should().Contain("== done: ckpt-00000002.tckpt is already compacted");
        var refused = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--compact", "--regrade");
        refused.Code.Should().Be(2);
        refused.Err.Trim().Should().StartWith("error: ").And.Contain("--compact");

        // resuming the finished run trains nothing and writes nothing over it, even when stopped at once
        string hash = compacted.FileHash!;
        using (var trainer = new Toolchain.Train.Trainer(Toolchain.Cli.Commands.ZooCommand.Config(entries[0], threads: 1), Path.Combine(tmp.Path, "runs", "done")))
        {
            trainer.TryResume().Should().BeTrue();
            using var stopped = new CancellationTokenSource();
            stopped.Cancel();
            trainer.Run(stopped.Token);
        }
        Toolchain.Train.Checkpoint.Load(doneFile).FileHash.Should().Be(hash);
        // training it further is refused with the reason and what to do
        using (var longer = new Toolchain.Train.Trainer(Toolchain.Cli.Commands.ZooCommand.Config(entries[0], threads: 1) with { Steps = 3 }, Path.Combine(tmp.Path, "runs", "done")))
            longer.Invoking(t => t.TryResume()).Should().Throw<Toolchain.Train.CheckpointException>()
                .WithMessage("*holds the weights only*cannot train on to step 3*start a new run*");
        // it exports and grades like the full checkpoint
        var export = CliRunner.InProcess("export", Path.Combine(tmp.Path, "runs", "done"), "--out", tmp["done.onnx"]);
        export.Code.Should().Be(0, export.Out + export.Err);
        File.Exists(tmp["done.onnx"]).Should().BeTrue();
    }

    [Fact]
    public void A_warm_started_model_card_names_the_checkpoint_it_started_from()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        string source = Path.Combine(tmp.Path, "runs", "short", Toolchain.Train.Checkpoint.FileName(2));
        File.WriteAllText(tmp["zoo.yaml"], $$"""
            models:
              - {name: short, task: copy, arch: cnn, preset: tiny, steps: 2}
              - {name: warm, task: copy, arch: cnn, preset: tiny, steps: 3, set: [train_length=8, "init_from={{source}}"]}
            """);
        string models = tmp["models"];

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05");

        code.Should().Be(0, output + err);
        output.Should().Contain($"init_from: starting from {source} (task copy, train length 6, step 2, seed 1; weights and optimizer state, 2 optimizer steps)");
        JsonNode Card(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(models, name + ".card.json")))!;
        var warm = Card("warm");
        warm["steps"]!.GetValue<long>().Should().Be(3, "the card's steps are the warm run's own");
        warm["config"]!["init_from"]!.GetValue<string>().Should().Be(source);
        var from = warm["init_from"]!;
        from["path"]!.GetValue<string>().Should().Be(source);
        from["sha256"]!.GetValue<string>().Should().Be(Card("short")["checkpoint_sha256"]!.GetValue<string>(), "the source is the short run's published checkpoint");
        from["task"]!.GetValue<string>().Should().Be("copy");
        from["train_length"]!.GetValue<int>().Should().Be(6);
        from["steps"]!.GetValue<long>().Should().Be(2);
        from["wall_time_seconds"]!.GetValue<double>().Should().BeGreaterThanOrEqualTo(0);
        Card("short")["init_from"].Should().BeNull("a fresh run has no origin");
        from["earlier"]!.AsArray().Should().BeEmpty("the short run started fresh");
        from["chain_end"]!.GetValue<string>().Should().Be("a fresh initialization");
        from["settings_differing"]!["train_length"]!.GetValue<int>().Should().Be(6, "the source run trained at size 6, this one at 8");
        from["all_stages"]!["steps"]!.GetValue<long>().Should().Be(5);
    }

    [Fact]
    public void A_card_names_every_stage_of_a_chain_of_warm_starts_back_to_the_fresh_start()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        string first = Path.Combine(tmp.Path, "runs", "first", Toolchain.Train.Checkpoint.FileName(2));
        string second = Path.Combine(tmp.Path, "runs", "second", Toolchain.Train.Checkpoint.FileName(3));
        File.WriteAllText(tmp["zoo.yaml"], $$"""
            models:
              - {name: first, task: copy, arch: cnn, preset: tiny, steps: 2}
              - {name: second, task: copy, arch: cnn, preset: tiny, steps: 3, set: [train_length=7, seed=2, "init_from={{first}}"]}
              - {name: third, task: copy, arch: cnn, preset: tiny, steps: 1, set: [train_length=8, "init_from={{second}}"]}
            """);
        string models = tmp["models"];

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05");

        code.Should().Be(0, output + err);
        JsonNode Card(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(models, name + ".card.json")))!;
        var from = Card("third")["init_from"]!;
        from["path"]!.GetValue<string>().Should().Be(second);
        from["steps"]!.GetValue<long>().Should().Be(3);
        from["settings_differing"]!["seed"]!.GetValue<int>().Should().Be(2);
        var earlier = from["earlier"]!.AsArray();
        earlier.Should().HaveCount(1, "second started from first, which started fresh");
        earlier[0]!["path"]!.GetValue<string>().Should().Be(first);
        earlier[0]!["sha256"]!.GetValue<string>().Should().Be(Card("first")["checkpoint_sha256"]!.GetValue<string>());
        earlier[0]!["steps"]!.GetValue<long>().Should().Be(2);
        earlier[0]!["train_length"]!.GetValue<int>().Should().Be(6);
        earlier[0]!["settings_differing"]!["train_length"]!.GetValue<int>().Should().Be(6);
        from["chain_end"]!.GetValue<string>().Should().Be("a fresh initialization");
        from["all_stages"]!["stages"]!.GetValue<int>().Should().Be(3);
        from["all_stages"]!["steps"]!.GetValue<long>().Should().Be(6, "2 + 3 + 1 steps");
        from["all_stages"]!["complete"]!.GetValue<bool>().Should().BeTrue();
    }

    [Fact]
    public void An_entry_with_a_bar_is_graded_on_it_too_and_its_card_counts_every_family()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["bar.yaml"], """
            name: copy-bar
            description: three of every family at 1x and 2x
            seed: 77
            levels:
              - {multiple: 1, samples: {random: 3, hard: 3}}
              - {multiple: 2, samples: {random: 3, hard: 3}}
            """);
        File.WriteAllText(tmp["zoo.yaml"], $$"""
            models:
              - {name: c, task: copy, arch: cnn, preset: tiny, steps: 2, parity: "1,2", bar: "{{tmp["bar.yaml"]}}"}
              - {name: r, task: reverse, arch: cnn, preset: tiny, steps: 2, parity: "1,2", bar: "{{tmp["bar.yaml"]}}"}
            """);
        string models = tmp["models"];

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.2", "--bar-minutes", "0.5");

        code.Should().Be(0, output + err);
        var card = JsonNode.Parse(File.ReadAllText(Path.Combine(models, "c.card.json")))!;
        card["levels"]!["1x"]!["families"]!["random"]!["samples"]!.GetValue<int>().Should().BeGreaterThan(0, "the standard grading is still there, with family counts");
        var bar = card["bar"]!;
        bar["suite"]!["name"]!.GetValue<string>().Should().Be("copy-bar");
        bar["suite"]!["seed"]!.GetValue<ulong>().Should().Be(77);
        bar["suite"]!["source"]!.GetValue<string>().Should().Be(tmp["bar.yaml"]);
        var levels = bar["levels"]!.AsObject();
        levels.Select(l => l.Key).Should().Equal("1x", "2x");
        var task = Toolchain.Suites.TaskRegistry.Get("copy");
        int exact = 0, samples = 0;
        foreach (var (_, level) in levels)
        {
            var families = level!["families"]!.AsObject();
            families.Select(f => f.Key).Should().BeEquivalentTo(task.Families.Except(task.OptInFamilies));
            foreach (var (family, counts) in families)
            {
                counts!["samples"]!.GetValue<int>().Should().Be(3, family);
                exact += counts["exact"]!.GetValue<int>();
                samples += 3;
            }
            families.Sum(f => f.Value!["samples"]!.GetValue<int>()).Should().Be(level["samples"]!.GetValue<int>());
        }
        // copying is within a 2-step convolution's reach (every example exact: the bar is met); reversing is not, and
        // the verdict names the shortfalls
        exact.Should().Be(samples);
        bar["met"]!.GetValue<bool>().Should().BeTrue();
        bar["verdict"]!.GetValue<string>().Should().Be("met: every example exact");
        var barR = JsonNode.Parse(File.ReadAllText(Path.Combine(models, "r.card.json")))!["bar"]!;
        barR["met"]!.GetValue<bool>().Should().BeFalse();
        barR["verdict"]!.GetValue<string>().Should().StartWith("not met: ").And.MatchRegex(@"(1x|2x) [a-z_]+ \d of 3 exact");
        output.Should().Contain("== r: bar not met: ");
        File.Exists(Path.Combine(models, "c.bar", "results.json")).Should().BeTrue();
        // the standard grading's results are still the standard suite's (what `toolchain report` reuses)
        JsonNode.Parse(File.ReadAllText(Path.Combine(models, "c.report", "results.json")))!["suite"]!["name"]!.GetValue<string>().Should().Be("standard");

        // a relative bar not found from the working directory is looked for beside the zoo file and in the folder above it
        Directory.CreateDirectory(tmp["sub"]);
        File.WriteAllText(Path.Combine(tmp["sub"], "zoo.yaml"), """
            models:
              - {name: c, task: copy, arch: cnn, preset: tiny, steps: 2, bar: bar.yaml}
            """);
        var beside = Toolchain.Cli.Commands.ZooCommand.Load(Path.Combine(tmp["sub"], "zoo.yaml")).Single();
        beside.Bar.Should().Be("bar.yaml", "the card names the bar as written");
        beside.BarSuite()!.Name.Should().Be("copy-bar");

        // a bar that is not there is refused when the zoo file is read, before any training
        File.WriteAllText(tmp["zoo2.yaml"], """
            models:
              - {name: c, task: copy, arch: cnn, preset: tiny, steps: 2}
              - {name: d, task: copy, arch: cnn, preset: tiny, steps: 2, bar: no/such/suite.yaml}
            """);
        var (code2, output2, err2) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo2.yaml"], "--models", tmp["models2"]);
        code2.Should().Be(2, output2 + err2);
        err2.Should().MatchRegex(@"^error: [^\n]*zoo2\.yaml:3: bar 'no/such/suite\.yaml' of d: [^\n]*no such file[^\n]*\n$");
        Directory.Exists(tmp["models2"]).Should().BeFalse("nothing was trained or written");
    }

    [Fact]
    public void A_bar_with_gates_is_met_by_its_rules_not_by_every_example_and_the_card_lists_each_rule_with_its_value()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["bar.yaml"], """
            name: reverse-bar
            description: four random examples at 1x
            seed: 78
            levels:
              - {multiple: 1, samples: {random: 4}}
            """);
        // a 2-step convolution cannot reverse: some examples are wrong, but more than nothing of the symbols is right
        File.WriteAllText(tmp["loose.yaml"], "- {level: 1x, metric: symbol_accuracy, min: 0.01}\n");
        File.WriteAllText(tmp["strict.yaml"], "gates:\n  - {level: 1x, family: random, metric: sequence_accuracy, min: 1}\n  - {level: 1x, metric: symbol_accuracy, min: 0.01}\n");
        File.WriteAllText(tmp["zoo.yaml"], $$"""
            models:
              - {name: loose, task: reverse, arch: cnn, preset: tiny, steps: 2, parity: "1,2", bar: "{{tmp["bar.yaml"]}}", bar_gates: "{{tmp["loose.yaml"]}}"}
              - {name: strict, task: reverse, arch: cnn, preset: tiny, steps: 2, parity: "1,2", bar: "{{tmp["bar.yaml"]}}", bar_gates: "{{tmp["strict.yaml"]}}"}
            """);
        string models = tmp["models"];

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05", "--bar-minutes", "0.5");

        code.Should().Be(0, output + err);
        JsonNode Bar(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(models, name + ".card.json")))!["bar"]!;
        var loose = Bar("loose");
        int exact = loose["levels"]!["1x"]!["families"]!["random"]!["exact"]!.GetValue<int>();
        exact.Should().BeLessThan(4, "a 2-step convolution does not reverse 1x inputs");
        double symbols = loose["levels"]!["1x"]!["symbol_accuracy"]!.GetValue<double>();
        symbols.Should().BeGreaterThan(0.01);
        loose["met"]!.GetValue<bool>().Should().BeTrue("its one rule asks for 1% of the symbols, not exact examples");
        loose["verdict"]!.GetValue<string>().Should().StartWith("met: every rule passes (*/* 1x symbol_accuracy >= 0.01: ");
        var rule = loose["gates"]!["rules"]!.AsArray().Single()!;
        rule["passed"]!.GetValue<bool>().Should().BeTrue();
        rule["value"]!.GetValue<double>().Should().BeApproximately(symbols, 1e-4);
        loose["gates"]!["source"]!.GetValue<string>().Should().Be(tmp["loose.yaml"]);

        var strict = Bar("strict");
        strict["met"]!.GetValue<bool>().Should().BeFalse();
        strict["verdict"]!.GetValue<string>().Should().Be($"not met: */* 1x/random sequence_accuracy >= 1: {exact / 4.0:0.####} is out of bounds");
        strict["gates"]!["rules"]!.AsArray().Select(r => r!["passed"]!.GetValue<bool>()).Should().Equal(false, true);
        output.Should().Contain("== strict: bar not met: ");
    }

    [Fact]
    public void Bar_gates_without_a_bar_an_empty_or_missing_gates_file_and_an_unknown_field_are_refused_when_the_zoo_is_read()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["bar.yaml"], "name: b\ndescription: d\nseed: 1\nlevels:\n  - {multiple: 1, samples: {random: 1}}\n");
        File.WriteAllText(tmp["gates.yaml"], "- {level: 1x, metric: symbol_accuracy, min: 0.99}\n");
        File.WriteAllText(tmp["empty.yaml"], "[]\n");
        void Refused(string entry, string message)
        {
            File.WriteAllText(tmp["zoo.yaml"], "models:\n  - " + entry + "\n");
            FluentActions.Invoking(() => Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]))
                .Should().Throw<Toolchain.Cli.UserError>().WithMessage(message);
        }
        Refused($"{{name: a, task: copy, arch: cnn, steps: 2, bar_gates: \"{tmp["gates.yaml"]}\"}}", "*zoo.yaml:2: a has bar_gates but no bar*");
        Refused($"{{name: a, task: copy, arch: cnn, steps: 2, bar: \"{tmp["bar.yaml"]}\", bar_gates: \"{tmp["empty.yaml"]}\"}}", "*zoo.yaml:2: bar_gates '*empty.yaml' of a has no rules*");
        Refused($"{{name: a, task: copy, arch: cnn, steps: 2, bar: \"{tmp["bar.yaml"]}\", bar_gates: no/such/gates.yaml}}", "*zoo.yaml:2: bar_gates 'no/such/gates.yaml' of a: *does not exist*");
        Refused($"{{name: a, task: copy, arch: cnn, steps: 2, bar: \"{tmp["bar.yaml"]}\", bar_gate: \"{tmp["gates.yaml"]}\"}}", "*zoo.yaml:2: unknown field 'bar_gate' in a zoo entry; the fields are: *bar_gates*");

        File.WriteAllText(tmp["zoo.yaml"], $"models:\n  - {{name: a, task: copy, arch: cnn, steps: 2, bar: \"{tmp["bar.yaml"]}\", bar_gates: \"{tmp["gates.yaml"]}\"}}\n");
        var e = Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]).Single();
        e.BarRules!.Single().Describe().Should().Be("*/* 1x symbol_accuracy >= 0.99");
        e.BarGatesSha256.Should().Be(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(tmp["gates.yaml"]))));

        // a byte-order mark is read as `toolchain compare --gate` reads it; the hash is of the file's bytes, mark included
        File.WriteAllBytes(tmp["gates.yaml"], [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("- {level: 1x, metric: symbol_accuracy, min: 0.99}\n")]);
        var marked = Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]).Single();
        marked.BarRules!.Single().Describe().Should().Be(Toolchain.Evaluate.Gates.Load(tmp["gates.yaml"]).Single().Describe());
        marked.BarGatesSha256.Should().Be(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(tmp["gates.yaml"]))))
            .And.NotBe(e.BarGatesSha256);
    }

    [Fact]
    public void An_ensemble_entry_makes_its_members_joins_them_into_one_model_and_its_card_lists_every_member()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        string a = Path.Combine(tmp.Path, "runs", "a", Toolchain.Train.Checkpoint.FileName(2));
        string b = Path.Combine(tmp.Path, "runs", "b", Toolchain.Train.Checkpoint.FileName(3));
        File.WriteAllText(tmp["zoo.yaml"], $$"""
            models:
              - {name: a, task: copy, arch: cnn, preset: tiny, steps: 2, set: [seed=1]}
              - {name: b, task: copy, arch: cnn, preset: tiny, steps: 3, set: [seed=2]}
              - {name: ens, task: copy, arch: cnn, preset: tiny, steps: 0, members: ["{{a}}", "{{b}}"], set: [seed=1]}
            """);
        string models = tmp["models"];

        var (code, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05");

        code.Should().Be(0, output + err);
        output.Should().Contain("== ens: the ensemble of 2 exported (parity against the members");
        foreach (int i in new[] { 1, 2 })
            Toolchain.Train.Checkpoint.InDirectory(Path.Combine(tmp.Path, "runs", "ens", $"member-{i}")).Should().ContainSingle($"member {i} is made in its own run folder");
        JsonNode Card(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(models, name + ".card.json")))!;
        var members = Card("ens")["ensemble"]!.AsArray();
        members.Select(m => m!["init_from"]!["path"]!.GetValue<string>()).Should().Equal(a, b);
        members.Select(m => m!["init_from"]!["sha256"]!.GetValue<string>()).Should().Equal(Card("a")["checkpoint_sha256"]!.GetValue<string>(), Card("b")["checkpoint_sha256"]!.GetValue<string>());
        members.Select(m => m!["init_from"]!["steps"]!.GetValue<long>()).Should().Equal(2, 3);
        var model = Toolchain.Export.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(models, "ens.onnx")));
        var listed = JsonNode.Parse(model.MetadataProps.Single(p => p.Key == Toolchain.Export.Onnx.EnsembleWriter.MembersKey).Value)!.AsArray();
        listed.Select(m => m!["sha256"]!.GetValue<string>()).Should().Equal(members.Select(m => m!["model_sha256"]!.GetValue<string>()));
        Card("ens")["levels"]!["1x"]!["samples"]!.GetValue<int>().Should().BeGreaterThan(0, "the joined model was graded");
        File.Exists(Path.Combine(models, "ens.report", "results.json")).Should().BeTrue();
    }

    [Fact]
    public void A_model_whose_run_folder_another_process_holds_is_not_published_and_the_zoo_says_so()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["zoo.yaml"], """
            models:
              - {name: a, task: copy, arch: cnn, preset: tiny, steps: 2}
            """);
        string models = tmp["models"];
        var (trained, output, err) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--eval-minutes", "0.05");
        trained.Should().Be(0, output + err);
        string card = Path.Combine(models, "a.card.json");
        string before = File.ReadAllText(card);

        // a second zoo (or a training run) holds the run folder: this one neither exports over it nor grades
        using (Toolchain.Suites.FolderLock.Take(Path.Combine(tmp.Path, "runs", "a"), "another zoo"))
        {
            var (code, busy, busyErr) = CliRunner.InProcess("zoo", "--zoo", tmp["zoo.yaml"], "--models", models, "--no-train", "--eval-minutes", "0.05");
            code.Should().Be(1, busy + busyErr);
            busy.Should().Contain("== a: not published:").And.Contain("== 1 zoo model failed: a");
        }
        File.ReadAllText(card).Should().Be(before, "the published card was left as it was");
    }

    [Fact]
    public void A_malformed_ensemble_entry_is_refused_when_the_zoo_is_read()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        void Refused(string entry, string message)
        {
            File.WriteAllText(tmp["zoo.yaml"], "models:\n  - " + entry + "\n");
            FluentActions.Invoking(() => Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]))
                .Should().Throw<Toolchain.Cli.UserError>().WithMessage(message);
        }
        Refused("{name: e, task: copy, arch: cnn, steps: 0, members: [a.tckpt]}", "*zoo.yaml:2: e has 1 member; an ensemble needs at least two*");
        Refused("{name: e, task: copy, arch: cnn, steps: 5, members: [a.tckpt, b.tckpt]}", "*zoo.yaml:2: e is an ensemble with steps: 5*steps: 0*");
        Refused("{name: e, task: copy, arch: cnn, steps: 0, members: [a.tckpt, b.tckpt], set: [init_from=c.tckpt]}", "*e sets init_from and has members*");
        Refused("{name: e, task: copy, arch: cnn, steps: 0, members: a.tckpt}", "*zoo.yaml:2: members must be a list of checkpoint files*");
    }

    [Fact]
    public void A_malformed_parity_entry_is_refused_with_the_file_and_line()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        File.WriteAllText(tmp["zoo.yaml"], """
            models:
              - {name: a, task: copy, arch: cnn, preset: tiny, steps: 2, parity: "1,x"}
            """);
        FluentActions.Invoking(() => Toolchain.Cli.Commands.ZooCommand.Load(tmp["zoo.yaml"]))
            .Should().Throw<Toolchain.Cli.UserError>().WithMessage("*zoo.yaml:2: parity: 'x' is not a positive number*");
    }
}

/// <summary>`toolchain report` (the README's main command) grades every model it can and names the ones it cannot.</summary>
public class ReportCommandTests
{
    [Fact]
    public void A_corrupt_model_is_named_not_graded_and_the_other_models_are_still_reported_with_exit_code_1()
    {
        using var tmp = new Toolchain.Tests.Evaluate.TempDir();
        string models = tmp["models"];
        Directory.CreateDirectory(models);
        File.WriteAllBytes(Path.Combine(models, "copy-oracle.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(Toolchain.Tests.Evaluate.OracleModels.Copy()));
        File.WriteAllText(Path.Combine(models, "broken.onnx"), "not a protobuf at all");

        var (code, output, err) = CliRunner.InProcess("report", "--models", models, "--out", tmp["out"], "--budget-minutes", "0.2", "--suite", "quick");

        code.Should().Be(1, output + err);
        err.Should().Contain("broken: not graded").And.Contain("broken.onnx");
        output.Should().Contain("copy-oracle").And.Contain("graded 1 models");
        File.ReadAllText(Path.Combine(tmp["out"], "index.html")).Should().Contain("broken").And.Contain("not graded");
        File.Exists(Path.Combine(tmp["out"], "copy-oracle", "results.json")).Should().BeTrue();
    }
}
