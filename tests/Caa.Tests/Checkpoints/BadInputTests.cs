using Caa.Model.Checkpoints;
using Caa.Model.Runtime;
using Caa.Tests.Infrastructure;
using TorchSharp;
using static Caa.Tests.Checkpoints.CheckpointTestSupport;

namespace Caa.Tests.Checkpoints;

public class BadInputTests
{
    public BadInputTests() => TorchRuntime.Initialize();

    static InvalidDataException OpenFails(string path) => Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));

    [SharedFact("reference/stories260K/hf/model-00002-of-00002.safetensors")]
    public void TruncatedFileNamesTensorAndFile()
    {
        var src = Shared.Require("reference/stories260K/hf/model-00002-of-00002.safetensors");
        string last;
        using (var f = SafeTensorsFile.Open(src))
            last = f.Tensors.Values.MaxBy(t => t.End)!.Name;
        using var tmp = new TempDir();
        var cut = tmp.File("cut.safetensors");
        var bytes = File.ReadAllBytes(src);
        File.WriteAllBytes(cut, bytes[..^10]);
        var e = OpenFails(cut);
        Assert.Contains("truncated", e.Message);
        Assert.Contains(last, e.Message);
        Assert.Contains(cut, e.Message);
        Assert.Contains($"needs bytes up to {bytes.Length} but the file has {bytes.Length - 10}", e.Message);

        // Cut inside the header.
        File.WriteAllBytes(cut, bytes[..100]);
        Assert.Contains("truncated", OpenFails(cut).Message);
        File.WriteAllBytes(cut, bytes[..5]);
        Assert.Contains("8-byte header length", OpenFails(cut).Message);
    }

    [Fact]
    public void WrongByteLengthIsRejected()
    {
        using var tmp = new TempDir();
        var p = tmp.File("x.safetensors");
        WriteRaw(p, """{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""", new byte[24]);
        var e = OpenFails(p);
        Assert.Contains("'w'", e.Message);
        Assert.Contains(p, e.Message);
        Assert.Contains("needs 24 bytes", e.Message);
    }

    [Fact]
    public void UnknownDtypeListsSupportedOnes()
    {
        using var tmp = new TempDir();
        var p = tmp.File("x.safetensors");
        WriteRaw(p, """{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""", new byte[4]);
        var e = OpenFails(p);
        Assert.Contains("F8_E4M3", e.Message);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("BF16", e.Message);
        Assert.Contains(p, e.Message);
    }

    [Fact]
    public void OverlappingOffsetsAndBadJsonAreRejected()
    {
        using var tmp = new TempDir();
        var p = tmp.File("x.safetensors");
        WriteRaw(p, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", new byte[12]);
        Assert.Contains("overlaps", OpenFails(p).Message);

        WriteRaw(p, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]""", new byte[8]);
        var e = OpenFails(p);
        Assert.Contains("not valid JSON", e.Message);
        Assert.Contains(p, e.Message);

        using (var fs = File.Create(p)) fs.Write(BitConverter.GetBytes(1_000_000UL));
        Assert.Contains("header claims", OpenFails(p).Message);
    }

    [Fact]
    public void ShapeMismatchNamesTensorAndBothShapes()
    {
        using var tmp = new TempDir();
        var p = tmp.File("x.safetensors");
        using var w = torch.zeros(3, 4);
        SafeTensorsWriter.Write(p, [new("model.w", w)]);
        using var f = SafeTensorsFile.Open(p);
        using var dest = torch.zeros(4, 3);
        var e = Assert.Throws<ArgumentException>(() => f.ReadInto("model.w", dest));
        Assert.Contains("model.w", e.Message);
        Assert.Contains(p, e.Message);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[4, 3]", e.Message);
        Assert.Contains("nope", Assert.Throws<KeyNotFoundException>(() => f.Read("nope")).Message);
    }

    [Fact]
    public void IndexPointingAtMissingShard()
    {
        using var tmp = new TempDir();
        using var w = torch.zeros(4);
        SafeTensorsWriter.Write(tmp.File("model-00001-of-00002.safetensors"), [new("a", w)]);
        File.WriteAllText(tmp.File(CheckpointFolder.IndexFileName),
            """{"metadata":{"total_size":32},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        var e = Assert.Throws<FileNotFoundException>(() => CheckpointFolder.Open(tmp.Path));
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void IndexListingTensorAbsentFromItsShard()
    {
        using var tmp = new TempDir();
        using var w = torch.zeros(4);
        SafeTensorsWriter.Write(tmp.File("model-00001-of-00001.safetensors"), [new("a", w)]);
        File.WriteAllText(tmp.File(CheckpointFolder.IndexFileName),
            """{"metadata":{},"weight_map":{"a":"model-00001-of-00001.safetensors","ghost":"model-00001-of-00001.safetensors"}}""");
        var e = Assert.Throws<InvalidDataException>(() => CheckpointFolder.Open(tmp.Path));
        Assert.Contains("ghost", e.Message);
        Assert.Contains("model-00001-of-00001.safetensors", e.Message);

        File.WriteAllText(tmp.File(CheckpointFolder.IndexFileName), """{"weight_map":{"a":"../elsewhere.safetensors"}}""");
        Assert.Contains("not a plain file name", Assert.Throws<InvalidDataException>(() => CheckpointFolder.Open(tmp.Path)).Message);
    }

    [Fact]
    public void PickleOnlyFolderIsRefusedSayingWhy()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.File("pytorch_model.bin"), [0x80, 0x02]);
        File.WriteAllText(tmp.File("config.json"), "{}");
        var e = Assert.Throws<FileNotFoundException>(() => CheckpointFolder.Open(tmp.Path));
        Assert.Contains("pytorch_model.bin", e.Message);
        Assert.Contains("pickle", e.Message);
        Assert.Contains("not supported", e.Message);

        Assert.Throws<DirectoryNotFoundException>(() => CheckpointFolder.Open(tmp.File("absent")));
    }
}
