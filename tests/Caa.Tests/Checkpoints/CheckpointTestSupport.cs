using System.Text;
using Caa.Model.Runtime;
using TorchSharp;

namespace Caa.Tests.Checkpoints;

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "caa-ckpt-" + Guid.NewGuid().ToString("N")[..12]);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

static class CheckpointTestSupport
{
    static CheckpointTestSupport() => TorchRuntime.Initialize();

    public static readonly torch.ScalarType[] AllTypes =
    [
        torch.ScalarType.Float64, torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16,
        torch.ScalarType.Int64, torch.ScalarType.Int32, torch.ScalarType.Int16, torch.ScalarType.Int8,
        torch.ScalarType.Byte, torch.ScalarType.Bool,
    ];

    /// <summary>Random values of any supported dtype (floats from a normal, integers in range, bools from coin flips).</summary>
    public static torch.Tensor Random(long[] shape, torch.ScalarType dtype, torch.Generator? gen = null)
    {
        switch (dtype)
        {
            case torch.ScalarType.Float64:
            case torch.ScalarType.Float32:
                return torch.randn(shape, dtype, generator: gen);
            case torch.ScalarType.Float16:
            case torch.ScalarType.BFloat16:
                {
                    using var f = torch.randn(shape, torch.ScalarType.Float32, generator: gen);
                    return f.to(dtype);
                }
            case torch.ScalarType.Bool:
                {
                    using var i = torch.randint(0, 2, shape, torch.ScalarType.Int64, generator: gen);
                    return i.to(dtype);
                }
            case torch.ScalarType.Byte:
                return torch.randint(0, 256, shape, dtype, generator: gen);
            case torch.ScalarType.Int8:
                return torch.randint(-128, 128, shape, dtype, generator: gen);
            default:
                return torch.randint(-30000, 30000, shape, dtype, generator: gen);
        }
    }

    /// <summary>Raw bytes of a tensor (via a contiguous CPU copy).</summary>
    public static byte[] Bytes(torch.Tensor t)
    {
        using var c = t.cpu().contiguous();
        return c.bytes.ToArray();
    }

    public static void AssertBitEqual(torch.Tensor expected, torch.Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(Bytes(expected), Bytes(actual));
    }

    /// <summary>Writes a safetensors file by hand (header padded to 8 bytes), for malformed-input tests.</summary>
    public static void WriteRaw(string path, string headerJson, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var padded = (header.Length + 8 + 7) / 8 * 8 - 8;
        using var fs = System.IO.File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)padded));
        fs.Write(header);
        for (var i = header.Length; i < padded; i++) fs.WriteByte((byte)' ');
        fs.Write(data);
    }
}
