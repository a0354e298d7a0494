using System.Text.Json;
using Caa.Model.Checkpoints;
using Caa.Model.Runtime;
using FsCheck.Xunit;
using TorchSharp;
using static Caa.Tests.Checkpoints.CheckpointTestSupport;

namespace Caa.Tests.Checkpoints;

public class RoundTripTests
{
    public RoundTripTests() => TorchRuntime.Initialize();

    static List<KeyValuePair<string, torch.Tensor>> Sample(int seed)
    {
        var gen = new torch.Generator((ulong)seed);
        return
        [
            new("a.f32", Random([3, 5], torch.ScalarType.Float32, gen)),
            new("b.bf16", Random([7], torch.ScalarType.BFloat16, gen)),
            new("c.f16", Random([2, 3, 4], torch.ScalarType.Float16, gen)),
            new("d.i64", Random([5], torch.ScalarType.Int64, gen)),
            new("e.scalar", Random([], torch.ScalarType.Float32, gen)),
            new("f.empty", Random([0, 4], torch.ScalarType.BFloat16, gen)),
            new("g.bool", Random([3], torch.ScalarType.Bool, gen)),
        ];
    }

    static void DisposeAll(IEnumerable<KeyValuePair<string, torch.Tensor>> ts)
    {
        foreach (var kv in ts) kv.Value.Dispose();
    }

    [Fact]
    public void MixedDtypesRoundTripBitExactWithAlignedData()
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.safetensors");
        var tensors = Sample(1);
        try
        {
            SafeTensorsWriter.Write(path, tensors);
            Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp-*"));
            using var f = SafeTensorsFile.Open(path);
            Assert.Equal(0, f.DataOffset % 8);
            Assert.Empty(f.Metadata);
            Assert.Equal(tensors.Select(t => t.Key).Order(), f.Tensors.Keys.Order());
            foreach (var (name, t) in tensors)
            {
                var info = f.Tensors[name];
                Assert.Equal(SafeTensorDTypes.FromScalarType(t.dtype), info.DType);
                Assert.Equal(0, info.Begin % t.element_size()); // laid out by element size, so each tensor is aligned
                using var r = f.Read(name);
                AssertBitEqual(t, r);
            }
            // The raw header is what HF writes: space padding after the JSON.
            var bytes = File.ReadAllBytes(path);
            var n = (int)BitConverter.ToUInt64(bytes, 0);
            using var doc = JsonDocument.Parse(bytes.AsMemory(8, n));
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        }
        finally { DisposeAll(tensors); }
    }

    [Fact]
    public void ReadWithConversionEqualsTo()
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.safetensors");
        using var f32 = torch.randn(4, 6);
        using var i64 = torch.arange(10L);
        SafeTensorsWriter.Write(path, [new("w", f32), new("i", i64)]);
        using var f = SafeTensorsFile.Open(path);
        foreach (var dt in new[] { torch.ScalarType.BFloat16, torch.ScalarType.Float16, torch.ScalarType.Float64 })
        {
            using var r = f.Read("w", dt);
            using var e = f32.to(dt);
            AssertBitEqual(e, r);
        }
        using var asFloat = f.Read("i", torch.ScalarType.Float32);
        using var iExpected = i64.to(torch.ScalarType.Float32);
        AssertBitEqual(iExpected, asFloat);

        using var dest = torch.empty([4, 6], torch.ScalarType.BFloat16);
        f.ReadInto("w", dest);
        using var bf = f32.to(torch.ScalarType.BFloat16);
        AssertBitEqual(bf, dest);
    }

    [Fact]
    public void ParametersThatRequireGradCanBeLoaded()
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.safetensors");
        using var w = torch.randn(3, 3);
        SafeTensorsWriter.Write(path, [new("w", w)]);
        using var f = SafeTensorsFile.Open(path);
        using var p32 = torch.zeros([3, 3], requires_grad: true);
        f.ReadInto("w", p32); // fast path
        using var p16 = torch.zeros([3, 3], torch.ScalarType.BFloat16, requires_grad: true);
        f.ReadInto("w", p16); // copy_ path
        Assert.True(p32.eq(w).all().item<bool>());
    }

    [Fact]
    public void MetadataRoundTripsAndOverwriteIsAtomicReplace()
    {
        using var tmp = new TempDir();
        var path = tmp.File("m.safetensors");
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "über \"quoted\" + <tag>" };
        using var a = torch.ones(2);
        File.WriteAllText(path, new string('x', 10_000)); // an existing, longer file is fully replaced
        SafeTensorsWriter.Write(path, [new("a", a)], meta);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(meta, f.Metadata);
        Assert.Equal(f.DataOffset + 8, new FileInfo(path).Length);
        Assert.Single(Directory.GetFiles(tmp.Path));
    }

    [Fact]
    public void NonContiguousAndStrangeTensorsAreWrittenAsTheirValues()
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.safetensors");
        using var big = torch.randn(5, 7);
        using var t = big.t();
        using var slice = big.narrow(0, 2, 2);
        SafeTensorsWriter.Write(path, [new("t", t), new("slice", slice)]);
        using var f = SafeTensorsFile.Open(path);
        using var rt = f.Read("t");
        using var rs = f.Read("slice");
        using var et = t.contiguous();
        using var es = slice.contiguous();
        AssertBitEqual(et, rt);
        AssertBitEqual(es, rs);
    }

    [Fact]
    public void ShardedWriteRoundTripsThroughCheckpointFolder()
    {
        using var tmp = new TempDir();
        var tensors = Enumerable.Range(0, 5).Select(i => KeyValuePair.Create($"layer.{i}.weight", torch.randn(16, 16))).ToList(); // 1 KiB each
        tensors.Add(new("small.bias", torch.randn(8).to(torch.ScalarType.BFloat16)));
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        try
        {
            // A stale single-file checkpoint must not shadow the new shards.
            File.WriteAllText(tmp.File(CheckpointFolder.SingleFileName), "stale");
            CheckpointFolder.Write(tmp.Path, tensors, maxShardBytes: 2048, metadata: meta);
            var files = Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order().ToArray();
            Assert.Equal(new[]
            {
                "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                CheckpointFolder.IndexFileName,
            }, files);

            using var index = JsonDocument.Parse(File.ReadAllText(tmp.File(CheckpointFolder.IndexFileName)));
            Assert.Equal(5 * 1024 + 16, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            Assert.Equal("model-00003-of-00003.safetensors", index.RootElement.GetProperty("weight_map").GetProperty("small.bias").GetString());

            using (var ckpt = CheckpointFolder.Open(tmp.Path))
            {
                Assert.Equal(meta, ckpt.Metadata);
                Assert.Equal(tensors.Count, ckpt.Tensors.Count);
                foreach (var (n, t) in tensors)
                {
                    using var r = ckpt.Read(n);
                    AssertBitEqual(t, r);
                }
            }

            // Rewriting as one file removes the old shards and index.
            CheckpointFolder.Write(tmp.Path, tensors);
            Assert.Equal(new[] { CheckpointFolder.SingleFileName }, Directory.GetFiles(tmp.Path).Select(Path.GetFileName).ToArray());
            using var single = CheckpointFolder.Open(tmp.Path);
            using var r0 = single.Read("layer.0.weight");
            AssertBitEqual(tensors[0].Value, r0);
        }
        finally { DisposeAll(tensors); }
    }

    /// <summary>Any shape (rank 0–4, zero-sized dims included) and any supported dtype round-trips bit-exactly.</summary>
    [Property(MaxTest = 60)]
    public void ArbitraryShapesAndDtypesRoundTrip(byte[] dims, byte dtypeIndex, int seed)
    {
        TorchRuntime.Initialize();
        var shape = (dims ?? []).Take(4).Select(d => (long)(d % 7)).ToArray();
        var dtype = AllTypes[dtypeIndex % AllTypes.Length];
        var gen = new torch.Generator((ulong)(uint)seed);
        using var t = Random(shape, dtype, gen);
        using var tmp = new TempDir();
        var path = tmp.File("p.safetensors");
        SafeTensorsWriter.Write(path, [new("t", t)]);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(shape, f.Tensors["t"].Shape);
        using var r = f.Read("t");
        AssertBitEqual(t, r);
    }
}

public class ChunkingTests
{
    public ChunkingTests() => TorchRuntime.Initialize();

    /// <summary>Large tensors are streamed in chunks; shrink the chunk so small tensors take that path (odd size: chunks end mid-row).</summary>
    [Fact]
    public void MultiChunkReadsAndWritesAreExact()
    {
        var saved = TensorBytes.ChunkBytes;
        TensorBytes.ChunkBytes = 7;
        try
        {
            using var tmp = new TempDir();
            var path = tmp.File("c.safetensors");
            using var a = torch.randn(13, 11);
            using var b = torch.randn(5, 9).to(torch.ScalarType.BFloat16);
            using var c = torch.arange(17L);
            SafeTensorsWriter.Write(path, [new("a", a), new("b", b), new("c", c)]);
            using var f = SafeTensorsFile.Open(path);
            foreach (var (n, t) in new[] { ("a", a), ("b", b), ("c", c) })
            {
                using var r = f.Read(n);
                AssertBitEqual(t, r);
            }
            using var converted = f.Read("a", torch.ScalarType.Float16);
            using var expected = a.to(torch.ScalarType.Float16);
            AssertBitEqual(expected, converted);
        }
        finally { TensorBytes.ChunkBytes = saved; }
    }
}
