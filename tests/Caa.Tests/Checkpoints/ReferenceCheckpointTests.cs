using System.Text.Json;
using Caa.Model.Checkpoints;
using Caa.Model.Runtime;
using Caa.Tests.Infrastructure;
using TorchSharp;
using static Caa.Tests.Checkpoints.CheckpointTestSupport;

namespace Caa.Tests.Checkpoints;

/// <summary>Reads the real sharded HF checkpoint of stories260K in ../shared.</summary>
public class ReferenceCheckpointTests
{
    const string Hf = "reference/stories260K/hf";

    public ReferenceCheckpointTests() => TorchRuntime.Initialize();

    [SharedFact(Hf)]
    public void AllIndexedTensorsArePresentWithShapesFromConfig()
    {
        var dir = Shared.Require(Hf);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json")));
        var c = config.RootElement;
        long hidden = c.GetProperty("hidden_size").GetInt64(), inter = c.GetProperty("intermediate_size").GetInt64();
        long layers = c.GetProperty("num_hidden_layers").GetInt64(), heads = c.GetProperty("num_attention_heads").GetInt64();
        long kvHeads = c.GetProperty("num_key_value_heads").GetInt64(), vocab = c.GetProperty("vocab_size").GetInt64();
        Assert.Equal((64L, 172L, 5L, 8L, 4L, 512L), (hidden, inter, layers, heads, kvHeads, vocab));
        var kv = hidden / heads * kvHeads;
        Assert.Equal(32, kv);

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, CheckpointFolder.IndexFileName)));
        var listed = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).ToHashSet();

        using var ckpt = CheckpointFolder.Open(dir);
        Assert.Equal(dir, ckpt.FolderPath);
        Assert.Equal(2, ckpt.Files.Count);
        Assert.Equal(listed.Order(), ckpt.Tensors.Keys.Order());

        void Shape(string name, params long[] shape) => Assert.Equal(shape, ckpt.Tensors[name].Shape);
        Shape("model.embed_tokens.weight", vocab, hidden);
        Shape("model.norm.weight", hidden);
        for (var l = 0; l < layers; l++)
        {
            var p = $"model.layers.{l}.";
            Shape(p + "self_attn.q_proj.weight", hidden, hidden);
            Shape(p + "self_attn.k_proj.weight", kv, hidden);
            Shape(p + "self_attn.v_proj.weight", kv, hidden);
            Shape(p + "self_attn.o_proj.weight", hidden, hidden);
            Shape(p + "mlp.gate_proj.weight", inter, hidden);
            Shape(p + "mlp.up_proj.weight", inter, hidden);
            Shape(p + "mlp.down_proj.weight", hidden, inter);
            Shape(p + "input_layernorm.weight", hidden);
            Shape(p + "post_attention_layernorm.weight", hidden);
        }
        Assert.All(ckpt.Tensors.Values, t => Assert.Equal("F32", t.DType));
        Assert.All(ckpt.Files, f => Assert.Equal(0, f.DataOffset % 8)); // HF pads its headers too
        Assert.Equal(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), ckpt.Tensors.Values.Sum(t => t.ByteLength));
    }

    [SharedTheory(Hf)]
    [InlineData("model.layers.0.self_attn.k_proj.weight")]
    [InlineData("model.layers.4.mlp.down_proj.weight")]
    [InlineData("model.norm.weight")]
    public void F32TensorEqualsBytesReadWithBinaryReader(string name)
    {
        using var ckpt = CheckpointFolder.Open(Shared.Require(Hf));
        var info = ckpt.Tensors[name];
        var file = ckpt.FileOf(name);

        var expected = new float[info.ElementCount];
        using (var br = new BinaryReader(File.OpenRead(file.Path)))
        {
            // Independent of our header parser: re-derive the data start from the length prefix and the relative offsets.
            var headerLength = (long)br.ReadUInt64();
            using var header = JsonDocument.Parse(br.ReadBytes((int)headerLength));
            var rel = header.RootElement.GetProperty(name).GetProperty("data_offsets")[0].GetInt64();
            br.BaseStream.Position = 8 + headerLength + rel;
            for (var i = 0; i < expected.Length; i++) expected[i] = br.ReadSingle();
        }

        using var t = ckpt.Read(name);
        Assert.Equal(torch.ScalarType.Float32, t.dtype);
        Assert.Equal(info.Shape, t.shape);
        Assert.Equal(expected, t.data<float>().ToArray());

        // And into an existing (contiguous, same-dtype) destination: the in-place fast path.
        using var dest = torch.zeros(info.Shape, torch.ScalarType.Float32);
        ckpt.ReadInto(name, dest);
        Assert.Equal(expected, dest.data<float>().ToArray());
    }

    [SharedFact(Hf)]
    public void ReadIntoBf16AndTransposedDestinationsConverts()
    {
        using var ckpt = CheckpointFolder.Open(Shared.Require(Hf));
        const string name = "model.layers.2.mlp.gate_proj.weight";
        using var f32 = ckpt.Read(name);
        using var bf16 = torch.empty(f32.shape, torch.ScalarType.BFloat16);
        ckpt.ReadInto(name, bf16);
        using var expected = f32.to(torch.ScalarType.BFloat16);
        AssertBitEqual(expected, bf16);

        // A non-contiguous destination takes the temporary + copy_ path.
        using var backing = torch.zeros(f32.shape[1], f32.shape[0]);
        using var transposed = backing.t();
        Assert.False(transposed.is_contiguous());
        ckpt.ReadInto(name, transposed);
        Assert.True(transposed.eq(f32).all().item<bool>());
    }

    [SharedFact(Hf)]
    public void RewritingTheHfCheckpointShardedReproducesEveryTensor()
    {
        using var src = CheckpointFolder.Open(Shared.Require(Hf));
        using var tmp = new TempDir();
        var tensors = src.Tensors.Keys.Order().Select(n => KeyValuePair.Create(n, src.Read(n))).ToList();
        try
        {
            CheckpointFolder.Write(tmp.Path, tensors, maxShardBytes: 400_000);
            using var back = CheckpointFolder.Open(tmp.Path);
            Assert.Equal(3, back.Files.Count);
            Assert.True(File.Exists(tmp.File("model-00003-of-00003.safetensors")));
            foreach (var (n, t) in tensors)
            {
                using var r = back.Read(n);
                AssertBitEqual(t, r);
            }
        }
        finally
        {
            foreach (var kv in tensors) kv.Value.Dispose();
        }
    }
}
