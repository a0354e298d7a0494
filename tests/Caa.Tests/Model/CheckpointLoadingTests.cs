using Caa.Model;
using Caa.Model.Llama;
using Caa.Tests.Checkpoints;
using Caa.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Caa.Tests.Model;

/// <summary>Random-weight HF checkpoints written by the test load into the model (or fail clearly).</summary>
public class CheckpointLoadingTests
{
    static (LlamaForCausalLM Model, TempDir Dir) SaveRandomBf16Sharded()
    {
        var model = TinyModels.Create(seed: 21, dtype: ScalarType.BFloat16, config: TinyModels.Config(tied: false));
        var dir = new TempDir();
        model.SavePretrained(dir.Path, maxShardBytes: 20_000);
        return (model, dir);
    }

    [Fact]
    public void ARandomBf16ShardedUntiedCheckpointLoadsAndRuns()
    {
        var (original, dir) = SaveRandomBf16Sharded();
        using var _d = dir;
        Assert.True(File.Exists(dir.File("model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(dir.Path, "model-*-of-*.safetensors").Length > 1);
        using var _ = no_grad();
        var ids = tensor(TinyModels.RandomIds(9, 61, 3)).unsqueeze(0);
        using var expected = original.Forward(ids);
        foreach (var dtype in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            using var loaded = LlamaForCausalLM.FromPretrained(dir.Path, dtype);
            Assert.NotNull(loaded.lm_head);
            Assert.Equal(dtype, loaded.model.embed_tokens.weight.dtype);
            using var got = loaded.Forward(ids);
            // bf16 → bf16 is bit-exact; bf16 weights computed in fp32 differ only by activation rounding.
            var diff = TinyModels.MaxAbsDiff(expected, got);
            Assert.True(dtype == ScalarType.BFloat16 ? diff == 0 : diff < 0.5, $"{dtype}: max diff {diff}");
        }
    }

    [Fact]
    public void ATruncatedShardFailsNamingTheFileAndTensor()
    {
        var (_, dir) = SaveRandomBf16Sharded();
        using var _d = dir;
        var shard = Directory.GetFiles(dir.Path, "model-*-of-*.safetensors").Order().Last();
        var bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..^100]);
        var e = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(dir.Path));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(Path.GetFileName(shard), e.Message);
    }

    [Fact]
    public void ARenamedTensorFailsListingMissingAndUnexpectedNames()
    {
        var model = TinyModels.Create(seed: 2);
        using var dir = new TempDir();
        var tensors = model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(
            p.name == "model.layers.1.mlp.up_proj.weight" ? "model.layers.1.mlp.upproj.weight" : p.name, p.parameter)).ToList();
        model.Config.Save(dir.Path);
        Caa.Model.Checkpoints.CheckpointFolder.Write(dir.Path, tensors);
        var e = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(dir.Path));
        Assert.Contains("missing tensors: model.layers.1.mlp.up_proj.weight", e.Message);
        Assert.Contains("unexpected tensors: model.layers.1.mlp.upproj.weight", e.Message);
    }

    [Fact]
    public void AConfigThatContradictsTheWeightsFailsNamingTheTensorAndShapes()
    {
        var model = TinyModels.Create(seed: 2);
        using var dir = new TempDir();
        model.SavePretrained(dir.Path);
        (model.Config with { IntermediateSize = 80 }).Save(dir.Path);
        var e = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(dir.Path));
        Assert.Contains("contradicts", e.Message);
        Assert.Contains("gate_proj.weight", e.Message);
        Assert.Contains("[70, 32]", e.Message);
        Assert.Contains("[80, 32]", e.Message);
    }

    [Fact]
    public void UnsupportedConfigSettingsAreRejected()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), """{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4,"vocab_size":10,"rope_scaling":{"type":"linear","factor":2.0}}""");
        var e = Assert.Throws<InvalidDataException>(() => LlamaConfig.Load(dir.Path));
        Assert.Contains("rope_scaling", e.Message);
        File.WriteAllText(dir.File("config.json"), """{"model_type":"llama","hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":5,"vocab_size":10}""");
        Assert.Contains("not divisible", Assert.Throws<InvalidDataException>(() => LlamaConfig.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("config.json"), "{not json");
        Assert.Contains("config.json", Assert.Throws<InvalidDataException>(() => LlamaConfig.Load(dir.Path)).Message);
    }

    [Fact]
    public void ConfigRoundTripsThroughJson()
    {
        using var dir = new TempDir();
        var c = TinyModels.Config() with { EosTokenIds = [2, 7] };
        c.Save(dir.Path);
        var back = LlamaConfig.Load(dir.Path);
        Assert.Equal(c.ToJson(), back.ToJson());
        Assert.Equal(c.ArchitectureHash, back.ArchitectureHash);
        Assert.NotEqual(c.ArchitectureHash, (c with { HiddenSize = 64 }).ArchitectureHash);
    }
}
