using System.Buffers.Binary;
using System.IO.Compression;

namespace Toolchain.Evaluate.Visualization;

/// <summary>An RGB image, 8 bits per channel, rows top to bottom.</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }

    /// <summary>Pixels as R, G, B bytes, row-major.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, Rgb background = default)
    {
        if (width < 1 || height < 1) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width} x {height} is empty");
        if ((long)width * height * 3 > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width} x {height} is too large");
        Width = width;
        Height = height;
        Pixels = new byte[width * height * 3];
        if (background != default) Fill(0, 0, width, height, background);
    }

    public Rgb this[int x, int y]
    {
        get
        {
            int i = (y * Width + x) * 3;
            return new Rgb(Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
        set
        {
            if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) return;
            int i = (y * Width + x) * 3;
            Pixels[i] = value.R;
            Pixels[i + 1] = value.G;
            Pixels[i + 2] = value.B;
        }
    }

    /// <summary>Fills a rectangle, clipped to the image.</summary>
    public void Fill(int x, int y, int w, int h, Rgb c)
    {
        int x0 = Math.Max(0, x), y0 = Math.Max(0, y), x1 = Math.Min(Width, x + w), y1 = Math.Min(Height, y + h);
        for (int yy = y0; yy < y1; yy++)
        {
            int i = (yy * Width + x0) * 3;
            for (int xx = x0; xx < x1; xx++, i += 3)
            {
                Pixels[i] = c.R;
                Pixels[i + 1] = c.G;
                Pixels[i + 2] = c.B;
            }
        }
    }

    /// <summary>A one-pixel rectangle outline.</summary>
    /// <summary>This image with every pixel drawn as a <paramref name="factor"/> x <paramref name="factor"/> block
    /// (nearest neighbour: cells and 5x7 glyphs stay sharp, just larger).</summary>
    public RgbImage Scaled(int factor)
    {
        if (factor <= 1) return this;
        var big = new RgbImage(Width * factor, Height * factor);
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
                big.Fill(x * factor, y * factor, factor, factor, this[x, y]);
        return big;
    }

    public void Frame(int x, int y, int w, int h, Rgb c)
    {
        Fill(x, y, w, 1, c);
        Fill(x, y + h - 1, w, 1, c);
        Fill(x, y, 1, h, c);
        Fill(x + w - 1, y, 1, h, c);
    }
}

public readonly record struct Rgb(byte R, byte G, byte B)
{
    public static readonly Rgb White = new(255, 255, 255);
    public static readonly Rgb Black = new(0, 0, 0);
}

/// <summary>
/// A minimal PNG encoder: signature, IHDR (8-bit RGB, no interlace), one IDAT (zlib via
/// <see cref="ZLibStream"/>, filter type 0 on every row) and IEND, each chunk with its CRC-32.
/// </summary>
public static class PngWriter
{
    public static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static byte[] Encode(RgbImage image)
    {
        using var png = new MemoryStream();
        png.Write(Signature);

        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], image.Height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: truecolour RGB
        ihdr[10] = 0; // deflate
        ihdr[11] = 0; // adaptive filtering (type 0 used on every row)
        ihdr[12] = 0; // no interlace
        WriteChunk(png, "IHDR", ihdr);

        using (var raw = new MemoryStream())
        {
            using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
            {
                int stride = image.Width * 3;
                for (int y = 0; y < image.Height; y++)
                {
                    z.WriteByte(0);
                    z.Write(image.Pixels, y * stride, stride);
                }
            }
            WriteChunk(png, "IDAT", raw.GetBuffer().AsSpan(0, (int)raw.Length));
        }
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>Writes the image to a file atomically (a temporary file beside it, then a rename).</summary>
    public static void Save(RgbImage image, string path)
    {
        string full = Path.GetFullPath(path);
        if (Path.GetDirectoryName(full) is { } dir) Directory.CreateDirectory(dir);
        string temp = full + $".{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temp, Encode(image));
        File.Move(temp, full, overwrite: true);
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        for (int i = 0; i < 4; i++) head[4 + i] = (byte)type[i];
        s.Write(head);
        s.Write(data);
        uint crc = Crc32.Update(Crc32.Update(Crc32.Initial, head[4..]), data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, Crc32.Finish(crc));
        s.Write(tail);
    }
}

/// <summary>CRC-32 as PNG and zlib's crc32 define it (reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF).</summary>
public static class Crc32
{
    public const uint Initial = 0xFFFFFFFFu;

    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    public static uint Finish(uint crc) => crc ^ 0xFFFFFFFFu;

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Update(Initial, data));
}
