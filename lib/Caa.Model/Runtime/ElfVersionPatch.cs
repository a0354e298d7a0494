using System.Buffers.Binary;
using System.Text;

namespace Caa.Model.Runtime;

/// <summary>Marks one version requirement of a 64-bit little-endian ELF shared object as weak (see <see cref="TorchRuntime"/>).</summary>
internal static class ElfVersionPatch
{
    const uint SHT_GNU_verneed = 0x6ffffffe;
    const ushort VER_FLG_WEAK = 0x2;

    /// <summary>Returns true when <paramref name="elf"/> needed <paramref name="version"/> and now needs it weakly.</summary>
    public static bool MarkVersionNeedWeak(byte[] elf, string version)
    {
        var s = elf.AsSpan();
        if (s.Length < 64 || s[0] != 0x7f || s[1] != (byte)'E' || s[2] != (byte)'L' || s[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (s[4] != 2 || s[5] != 1) throw new InvalidDataException("only 64-bit little-endian ELF is supported");
        var shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(s[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3C..]);
        var found = false;
        for (var i = 0; i < shnum; i++)
        {
            var sh = s.Slice((int)(shoff + (long)i * shentsize), shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != SHT_GNU_verneed) continue;
            var off = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            var link = BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var count = BinaryPrimitives.ReadUInt32LittleEndian(sh[0x2C..]);
            var strsh = s.Slice((int)(shoff + link * shentsize), shentsize);
            var stroff = (long)BinaryPrimitives.ReadUInt64LittleEndian(strsh[0x18..]);
            var vn = off;
            for (var n = 0; n < count; n++)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(s[(int)(vn + 2)..]);
                var aux = vn + BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(vn + 8)..]);
                for (var a = 0; a < cnt; a++)
                {
                    var name = ReadCString(s, stroff + BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(aux + 8)..]));
                    if (name == version)
                    {
                        var flags = BinaryPrimitives.ReadUInt16LittleEndian(s[(int)(aux + 4)..]);
                        BinaryPrimitives.WriteUInt16LittleEndian(s[(int)(aux + 4)..], (ushort)(flags | VER_FLG_WEAK));
                        found = true;
                    }
                    aux += BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(aux + 12)..]);
                }
                vn += BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(vn + 12)..]);
            }
        }
        return found;
    }

    static string ReadCString(ReadOnlySpan<byte> s, long at)
    {
        var start = (int)at;
        var end = s[start..].IndexOf((byte)0);
        return Encoding.ASCII.GetString(s.Slice(start, end));
    }
}
