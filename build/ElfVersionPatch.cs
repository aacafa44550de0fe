// Marks one symbol-version requirement of an ELF shared library as weak (VER_FLG_WEAK), so the dynamic
// loader accepts a system library that lacks that version. Used by TorchSharpPatch.targets on the copy of
// libLibTorchSharp.so in the build output (never on the NuGet cache): TorchSharp 0.107.0 is linked against
// GCC 13's libstdc++ and requires GLIBCXX_3.4.32 for `std::ios_base_library_init`, a link-time marker with no
// relocation, so older systems (Debian 12: GLIBCXX_3.4.30) load it fine once the requirement is weak.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenElfVersionRequirement : Task
{
    [Required] public string Library { get; set; } = "";
    [Required] public string Version { get; set; } = "";
    /// <summary>Semicolon-separated candidate paths of the system library that may provide the version.</summary>
    public string SystemLibraries { get; set; } = "";

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    public override bool Execute()
    {
        if (!File.Exists(Library)) return true;
        foreach (var candidate in SystemLibraries.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
        {
            if (File.Exists(candidate) && Contains(File.ReadAllBytes(candidate), Encoding.ASCII.GetBytes(Version + "\0")))
            {
                Log.LogMessage(MessageImportance.Low, $"{candidate} provides {Version}; {Path.GetFileName(Library)} needs no patch");
                return true;
            }
        }
        byte[] elf = File.ReadAllBytes(Library);
        int offset = FindRequirement(elf, Version);
        if (offset < 0)
        {
            Log.LogMessage(MessageImportance.Low, $"{Library} does not require {Version}; nothing to patch");
            return true;
        }
        ushort flags = BitConverter.ToUInt16(elf, offset + 4);
        if ((flags & VerFlgWeak) != 0) return true; // already patched: idempotent
        flags |= VerFlgWeak;
        elf[offset + 4] = (byte)(flags & 0xff);
        elf[offset + 5] = (byte)(flags >> 8);
        string temp = Library + ".patch.tmp";
        File.WriteAllBytes(temp, elf);
        File.Delete(Library); // unlink, then rename: never writes through a hard link into a package cache
        File.Move(temp, Library);
        Log.LogMessage(MessageImportance.High, $"TorchSharp: the system libstdc++ lacks {Version}; marked that requirement weak in {Library}");
        return true;
    }

    /// <summary>Byte offset of the Vernaux entry naming <paramref name="version"/>, or -1.</summary>
    public static int FindRequirement(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2 || elf[5] != 1)
            return -1; // only 64-bit little-endian ELF
        long shoff = BitConverter.ToInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)(shoff + (long)i * shentsize));
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            int secOffset = checked((int)BitConverter.ToInt64(elf, sh + 24));
            int link = (int)BitConverter.ToUInt32(elf, sh + 40);
            int count = (int)BitConverter.ToUInt32(elf, sh + 44);
            int strtab = checked((int)BitConverter.ToInt64(elf, checked((int)(shoff + (long)link * shentsize)) + 24));
            int vn = secOffset;
            for (int n = 0; n < count; n++)
            {
                int auxCount = BitConverter.ToUInt16(elf, vn + 2);
                int aux = vn + (int)BitConverter.ToUInt32(elf, vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    int name = strtab + (int)BitConverter.ToUInt32(elf, aux + 8);
                    if (NameAt(elf, name) == version) return aux;
                    aux += (int)BitConverter.ToUInt32(elf, aux + 12);
                }
                vn += (int)BitConverter.ToUInt32(elf, vn + 12);
            }
        }
        return -1;
    }

    private static string NameAt(byte[] data, int start)
    {
        int end = start;
        while (end < data.Length && data[end] != 0) end++;
        return Encoding.ASCII.GetString(data, start, end - start);
    }

    private static bool Contains(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i <= haystack.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return true;
        }
        return false;
    }
}
