using Caa.Model.Runtime;
using TorchSharp;

namespace Caa.Tests.Model;

public class RuntimeTests
{
    [Fact]
    public void TorchLoadsAndComputes()
    {
        TorchRuntime.Initialize();
        Assert.DoesNotContain("failed", TorchRuntime.Status);
        using var t = torch.arange(1, 5, dtype: torch.float32);
        Assert.Equal(10f, t.sum().item<float>());
    }

    [Fact]
    public void ElfPatchMarksOnlyTheNamedVersion()
    {
        var so = Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault();
        Assert.NotNull(so);
        var bytes = File.ReadAllBytes(so!);
        var before = (byte[])bytes.Clone();
        Assert.True(ElfVersionPatch.MarkVersionNeedWeak(bytes, "GLIBCXX_3.4.32"));
        var changed = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] != before[i]).ToList();
        Assert.Single(changed); // one flags byte
        Assert.Equal(before[changed[0]] | 2, bytes[changed[0]]);
        Assert.False(ElfVersionPatch.MarkVersionNeedWeak((byte[])before.Clone(), "GLIBCXX_9.9.9"));
    }
}
