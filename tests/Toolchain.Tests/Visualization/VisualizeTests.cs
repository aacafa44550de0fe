using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Toolchain.Evaluate.Visualization;
using Toolchain.Export;
using Toolchain.Export.Onnx;
using Toolchain.Suites;
using Toolchain.Train;
using Toolchain.Train.Models;
using TorchSharp;

namespace Toolchain.Tests.Visualization;

[Collection("torch")]
public class VisualizeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "toolchain-visualize-" + Guid.NewGuid().ToString("N"));

    public VisualizeTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>An untrained tiny model of the task exported to ONNX (states on request).</summary>
    private string TinyModel(string arch, string task, bool withStates)
    {
        torch.manual_seed(5);
        var config = RunConfig.Preset("tiny", arch, task).Validate();
        using var model = ModelRegistry.Create(config, TaskRegistry.Get(task).Vocab.Count);
        model.eval();
        var result = ModelExporter.Export(model, "test", new ExportOptions { WithStates = withStates, ParityMultiples = [1] });
        string path = Path.Combine(_dir, $"{arch}-{task}{(withStates ? "-states" : "")}.onnx");
        ModelWriter.Save(result.Model, path);
        return path;
    }

    [Theory]
    [InlineData("dngpu", "reverse", 6, 1, 8)]    // 7 states of 6 positions x 8 channels
    [InlineData("dngpu", "badd", 5, 3, 8)]       // 12 states, every 3rd (and the last)
    [InlineData("ngpu", "duplicate", 4, 1, 16)]  // (column, channel) image: 2 tape columns x 8 maps
    public void Visualize_writes_a_png_of_the_layout_size(string arch, string taskName, int size, int every, int channels)
    {
        string model = TinyModel(arch, taskName, withStates: true);
        string png = Path.Combine(_dir, "out", "mental.png");
        var (code, output, err) = CliRunner.InProcess("visualize", model, "--task", taskName, "--length", size.ToString(),
            "--sample", "2", "--steps-every", every.ToString(), "--out", png, "--scale", "1");
        code.Should().Be(0, err);
        output.Should().Contain($"{taskName} / {arch}").And.Contain("wrote");

        var task = TaskRegistry.Get(taskName);
        int length = task.LengthForSize(size);
        var layout = MentalImageLayout.Compute(length, length + 1, channels, arch == "ngpu" ? 2 : 1, every);
        layout.Shown[0].Should().Be(0);
        layout.Shown[^1].Should().Be(length, "the last state is always drawn");
        if (every > 1) layout.Shown.Should().OnlyContain(t => t % every == 0 || t == length);
        layout.Symbols.Should().BeTrue("short examples get rows tall enough for token symbols");
        output.Should().Contain($"{layout.Width} x {layout.Height} px");

        var decoded = MiniPng.Decode(File.ReadAllBytes(png));
        decoded.Width.Should().Be(layout.Width);
        decoded.Height.Should().Be(layout.Height);
        decoded.Raw.Length.Should().Be(layout.Height * (1 + 3 * layout.Width));
        Directory.GetFiles(Path.GetDirectoryName(png)!).Should().ContainSingle("the PNG is written atomically");

        // every shown step's map sits where the layout says: its frame's top-left corner is frame grey
        for (int i = 0; i < layout.Shown.Count; i++)
        {
            var (sx, sy) = layout.Slot(i);
            decoded.Pixel(sx, sy + MentalImageLayout.LabelHeight).Should().Be((150, 150, 150), $"slot {i}");
            decoded.Pixel(sx + layout.MapWidth - 1, sy + MentalImageLayout.LabelHeight + layout.MapHeight - 1).Should().Be((150, 150, 150), $"slot {i}");
        }
    }

    [Fact]
    public void The_time_view_draws_a_panel_per_shift_group_and_scale_enlarges_every_pixel()
    {
        // dngpu maps that divide by 3 are its shift groups (up, down, none): three panels of positions x steps
        torch.manual_seed(5);
        var config = RunConfig.Preset("tiny", "dngpu", "reverse").Validate() with { Maps = 12 };
        using var model = ModelRegistry.Create(config, TaskRegistry.Get("reverse").Vocab.Count);
        model.eval();
        string path = Path.Combine(_dir, "dngpu12.onnx");
        ModelWriter.Save(ModelExporter.Export(model, "test", new ExportOptions { WithStates = true, ParityMultiples = [1] }).Model, path);

        string time = Path.Combine(_dir, "time.png");
        var (code, output, err) = CliRunner.InProcess("visualize", path, "--length", "6", "--view", "time", "--scale", "1", "--out", time);
        code.Should().Be(0, err);
        output.Should().Contain("time view");
        var image = MentalImageRenderer.RenderTime(MentalImageRenderer.Run(new VisualizeRequest { ModelPath = path, Size = 6 }));
        var decoded = MiniPng.Decode(File.ReadAllBytes(time));
        (decoded.Width, decoded.Height).Should().Be((image.Width, image.Height));

        string steps = Path.Combine(_dir, "steps.png");
        (code, output, err) = CliRunner.InProcess("visualize", path, "--length", "6", "--out", steps);
        code.Should().Be(0, err);
        output.Should().Contain("scale 2");
        var run = MentalImageRenderer.Run(new VisualizeRequest { ModelPath = path, Size = 6 });
        run.ChannelGroups.Should().Be(3);
        var layout = MentalImageRenderer.LayoutFor(run, 1);
        var big = MiniPng.Decode(File.ReadAllBytes(steps));
        (big.Width, big.Height).Should().Be((2 * layout.Width, 2 * layout.Height), "the default scale of 2 makes the token text readable");
    }

    [Fact]
    public void A_model_without_states_is_refused_with_the_re_export_hint()
    {
        string model = TinyModel("dngpu", "reverse", withStates: false);
        string png = Path.Combine(_dir, "none.png");
        var (code, _, err) = CliRunner.InProcess("visualize", model, "--task", "reverse", "--length", "6", "--out", png);
        code.Should().Be(2);
        err.Should().StartWith("error: ").And.Contain("no 'states' output").And.Contain("re-export with `toolchain export RUN --with-states`");
        err.TrimEnd('\n').Should().NotContain("\n", "the error is one line");
        File.Exists(png).Should().BeFalse();
    }

    [Fact]
    public void Bad_requests_fail_with_one_line()
    {
        string model = TinyModel("dngpu", "reverse", withStates: true);
        string png = Path.Combine(_dir, "bad.png");
        var cases = new (string[] Args, string Says)[]
        {
            (["visualize", model, "--task", "nosuch", "--length", "6", "--out", png], "unknown task 'nosuch'"),
            (["visualize", model, "--task", "badd", "--length", "6", "--out", png], "solves task 'reverse' but --task is 'badd'"),
            (["visualize", model, "--task", "reverse", "--length", "0", "--out", png], "below the smallest size"),
            (["visualize", model, "--task", "reverse", "--length", "9000", "--out", png], "at most"),
            (["visualize", model, "--length", "6", "--family", "carry", "--out", png], "no case family 'carry'"),
            (["visualize", model, "--length", "6", "--steps-every", "0", "--out", png], "--steps-every"),
            (["visualize", Path.Combine(_dir, "missing.onnx"), "--task", "reverse", "--length", "6", "--out", png], "does not exist"),
        };
        foreach (var (args, says) in cases)
        {
            var (code, _, err) = CliRunner.InProcess(args);
            code.Should().Be(2, string.Join(" ", args));
            err.Should().StartWith("error: ").And.Contain(says);
            err.TrimEnd('\n').Should().NotContain("\n");
        }
        File.Exists(png).Should().BeFalse();
    }

    [Fact]
    public void Long_runs_are_decimated_to_evenly_spaced_steps_with_first_and_last()
    {
        var layout = MentalImageLayout.Compute(length: 201, steps: 202, channels: 48);
        layout.Shown.Should().HaveCount(MentalImageLayout.MaxShownSteps).And.BeInAscendingOrder().And.OnlyHaveUniqueItems();
        layout.Shown[0].Should().Be(0);
        layout.Shown[^1].Should().Be(201);
        layout.Decimated.Should().BeTrue();
        layout.Width.Should().BeLessThanOrEqualTo(MentalImageLayout.MaxSide);
        layout.Height.Should().BeLessThanOrEqualTo(MentalImageLayout.MaxSide);

        var huge = MentalImageLayout.Compute(length: 4001, steps: 4002, channels: 96, channelGroups: 4);
        huge.RowHeight.Should().BeLessThan(MentalImageLayout.SymbolRowHeight);
        huge.Symbols.Should().BeFalse();
        huge.Width.Should().BeLessThanOrEqualTo(MentalImageLayout.MaxSide);
        huge.Height.Should().BeLessThanOrEqualTo(MentalImageLayout.MaxSide);
        huge.Shown[^1].Should().Be(4001);

        MentalImageLayout.Decimate([0, 1, 2, 3, 4], 3).Should().Equal(0, 2, 4);
        MentalImageLayout.Compute(10, 11, 8, stepsEvery: 4).Shown.Should().Equal(0, 4, 8, 10);
    }

    [Fact]
    public void The_png_encoder_round_trips_a_known_image()
    {
        Crc32.Compute("123456789"u8).Should().Be(0xCBF43926u, "the CRC-32 check value");
        var image = new RgbImage(3, 2, Rgb.White);
        image[0, 0] = new Rgb(255, 0, 0);
        image[1, 0] = new Rgb(0, 255, 0);
        image[2, 0] = new Rgb(0, 0, 255);
        image[0, 1] = new Rgb(1, 2, 3);
        byte[] png = PngWriter.Encode(image);
        var d = MiniPng.Decode(png);
        (d.Width, d.Height).Should().Be((3, 2));
        d.Raw.Should().Equal(
            0, 255, 0, 0, 0, 255, 0, 0, 0, 255,
            0, 1, 2, 3, 255, 255, 255, 255, 255, 255);
        d.Chunks.Should().Equal("IHDR", "IDAT", "IEND");
        png.AsSpan(16, 13).ToArray().Should().Equal(0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0);
        png.AsSpan(png.Length - 12).ToArray().Should().Equal(0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82);
    }

    [Fact]
    public void The_font_has_every_task_symbol_and_the_diverging_map_is_white_at_zero()
    {
        foreach (var t in TaskRegistry.All)
            foreach (var s in t.Vocab)
                BitmapFont.HasGlyph(s[0]).Should().BeTrue($"task {t.Name} symbol '{s}'");
        MentalImageRenderer.Diverging(0).Should().Be(Rgb.White);
        MentalImageRenderer.Diverging(1).Should().Be(new Rgb(103, 0, 31));
        MentalImageRenderer.Diverging(-1).Should().Be(new Rgb(5, 48, 97));
    }

    /// <summary>A minimal PNG reader for 8-bit RGB, filter 0: checks the signature and every chunk's CRC
    /// (its own bitwise CRC-32, independent of the encoder's table) and inflates the IDAT data.</summary>
    private sealed record MiniPng(int Width, int Height, byte[] Raw, List<string> Chunks)
    {
        public (int R, int G, int B) Pixel(int x, int y)
        {
            Raw[y * (1 + 3 * Width)].Should().Be(0, "filter type 0");
            int i = y * (1 + 3 * Width) + 1 + 3 * x;
            return (Raw[i], Raw[i + 1], Raw[i + 2]);
        }

        public static MiniPng Decode(byte[] png)
        {
            png.AsSpan(0, 8).ToArray().Should().Equal(0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A);
            int pos = 8, width = 0, height = 0;
            var idat = new MemoryStream();
            var chunks = new List<string>();
            while (pos < png.Length)
            {
                int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
                string type = Encoding.ASCII.GetString(png, pos + 4, 4);
                var data = png.AsSpan(pos + 8, len);
                uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len));
                crc.Should().Be(BitwiseCrc(png.AsSpan(pos + 4, 4 + len)), $"CRC of {type}");
                chunks.Add(type);
                if (type == "IHDR")
                {
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    data[8..].ToArray().Should().Equal(8, 2, 0, 0, 0);
                }
                else if (type == "IDAT") idat.Write(data);
                pos += 12 + len;
            }
            pos.Should().Be(png.Length);
            chunks[^1].Should().Be("IEND");
            idat.Position = 0;
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            var raw = new MemoryStream();
            z.CopyTo(raw);
            return new MiniPng(width, height, raw.ToArray(), chunks);
        }

        private static uint BitwiseCrc(ReadOnlySpan<byte> data)
        {
            uint c = 0xFFFFFFFF;
            foreach (byte b in data)
            {
                c ^= b;
                for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1));
            }
            return ~c;
        }
    }
}
