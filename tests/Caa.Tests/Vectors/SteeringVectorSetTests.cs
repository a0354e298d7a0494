using Caa.Interpret.Steering;
using Caa.Interpret.Vectors;
using Caa.Model.Checkpoints;
using Caa.Model.Llama;
using Caa.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Caa.Tests.Vectors;

/// <summary>The on-disk format of steering vectors and the refusal of mismatched models.</summary>
public class SteeringVectorSetTests
{
    readonly LlamaForCausalLM _model = TinyModels.Create(seed: 2, config: TinyModels.Config(layers: 3, hidden: 32));

    SteeringVectorSet RandomSet(string behavior = "sycophancy", int seed = 1) => new(
        VectorMetadata.For(_model, behavior, new string('a', 64), items: 7, systemPrompt: "Be nice.\nÜber-nice."),
        new Dictionary<int, Tensor> { [2] = randn(32, generator: new TorchSharp.torch.Generator((ulong)seed)), [0] = randn(32) * 1e-30, [1] = -randn(32) * 1e30 });

    [Fact]
    public void SaveThenLoadIsBitExactAndKeepsTheMetadata()
    {
        using var dir = new VectorTestSupport.Scratch();
        using var set = RandomSet();
        var path = set.Save(dir.Path);
        Assert.Equal(Path.Combine(dir.Path, "sycophancy.safetensors"), path);
        using var loaded = SteeringVectorSet.Load(path);
        Assert.Equal(set.Metadata, loaded.Metadata);
        Assert.Equal([0, 1, 2], loaded.Layers);
        foreach (var l in set.Layers)
            Assert.Equal(set[l].data<float>().ToArray(), loaded[l].data<float>().ToArray()); // exact, element by element

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.2.hook_resid_post"], file.Tensors.Keys.Order());
        Assert.Equal("0,1,2", file.Metadata["layers"]);
        Assert.Equal(_model.Config.ArchitectureHash, file.Metadata["model_architecture_hash"]);
        Assert.Equal("none", file.Metadata["normalization"]);
        Assert.Equal("answer-letter token of '(X)' after [/INST]", file.Metadata["read_position"]);
    }

    [Fact]
    public void ActivationsRoundTrip()
    {
        using var dir = new VectorTestSupport.Scratch();
        var meta = VectorMetadata.For(_model, "b", "00", 2);
        var acts = new SortedDictionary<int, (Tensor, Tensor)> { [1] = (randn(2, 32).DetachFromDisposeScope(), randn(2, 32).DetachFromDisposeScope()) };
        using var a = new ItemActivations(meta, ['B', 'A'], acts);
        var path = a.Save(dir.Path);
        Assert.EndsWith("b.activations.safetensors", path);
        using var b = ItemActivations.Load(path);
        Assert.Equal(("BA", meta), (new string(b.MatchingLetters.ToArray()), b.Metadata));
        Assert.Equal(a.Matching(1).data<float>().ToArray(), b.Matching(1).data<float>().ToArray());
        Assert.Equal(a.NotMatching(1).data<float>().ToArray(), b.NotMatching(1).data<float>().ToArray());
        // A folder of vectors ignores activation files.
        using var set = RandomSet("b");
        set.Save(dir.Path);
        Assert.Equal([Path.Combine(dir.Path, "b.safetensors")], SteeringVectorSet.FilesIn(dir.Path));
    }

    [Fact]
    public void VectorsForAnotherHiddenSizeOrArchitectureAreRefusedNamingBoth()
    {
        using var dir = new VectorTestSupport.Scratch();
        using var set = RandomSet();
        var path = set.Save(dir.Path);

        using var wider = TinyModels.Create(config: TinyModels.Config(hidden: 64));
        var e = Assert.Throws<InvalidOperationException>(() => SteeringVectorSet.Load(path, wider));
        Assert.Contains("hidden size 32", e.Message);
        Assert.Contains("hidden size 64", e.Message);
        Assert.Contains(_model.Config.ArchitectureHash, e.Message);
        Assert.Contains(wider.Config.ArchitectureHash, e.Message);

        using var deeper = TinyModels.Create(config: TinyModels.Config(layers: 4)); // same width, other architecture
        Assert.NotEqual(_model.Config.ArchitectureHash, deeper.Config.ArchitectureHash);
        e = Assert.Throws<InvalidOperationException>(() => SteeringVectorSet.Load(path, deeper));
        Assert.Contains($"architecture hash {_model.Config.ArchitectureHash}", e.Message);
        Assert.Contains($"architecture hash {deeper.Config.ArchitectureHash}", e.Message);

        // Steering goes through the same check and attaches nothing.
        Assert.Throws<InvalidOperationException>(() => Steer.Apply(deeper, set, 2, 1.0, [-1]));
        Assert.Equal(0, deeper.Hooks.Count);
        using var ok = SteeringVectorSet.Load(path, _model);
        using (Steer.Apply(_model, ok, 2, 1.0, [-1])) Assert.Equal(1, _model.Hooks.Count);
        Assert.Equal(0, _model.Hooks.Count);
    }

    [Fact]
    public void FilesThatAreNotVectorSetsAreRefused()
    {
        using var dir = new VectorTestSupport.Scratch();
        var plain = dir.Sub("plain.safetensors");
        SafeTensorsWriter.Write(plain, [new("blocks.0.hook_resid_post", zeros(32))]);
        Assert.Contains("lacks \"format\"", Assert.Throws<InvalidDataException>(() => SteeringVectorSet.Load(plain)).Message);

        using var set = RandomSet();
        var meta = set.Metadata.ToDictionary();
        meta["layers"] = "0";
        var wrongShape = dir.Sub("wrong.safetensors");
        SafeTensorsWriter.Write(wrongShape, [new("blocks.0.hook_resid_post", zeros(16))], meta);
        Assert.Contains("expected F32 [32]", Assert.Throws<InvalidDataException>(() => SteeringVectorSet.Load(wrongShape)).Message);
        var wrongName = dir.Sub("name.safetensors");
        SafeTensorsWriter.Write(wrongName, [new("blocks.0.hook_mlp_out", zeros(32))], meta);
        Assert.Contains("not at a resid_post hook point", Assert.Throws<InvalidDataException>(() => SteeringVectorSet.Load(wrongName)).Message);
        meta["layers"] = "0,1";
        var missing = dir.Sub("missing.safetensors");
        SafeTensorsWriter.Write(missing, [new("blocks.0.hook_resid_post", zeros(32))], meta);
        Assert.Contains("metadata lists layers '0,1'", Assert.Throws<InvalidDataException>(() => SteeringVectorSet.Load(missing)).Message);
        Assert.Throws<FileNotFoundException>(() => SteeringVectorSet.Load(dir.Sub("absent.safetensors")));
    }

    [Fact]
    public void AFolderLoadsEveryBehaviorOnceAndSortsThem()
    {
        using var dir = new VectorTestSupport.Scratch();
        using (var b = RandomSet("refusal")) b.Save(dir.Path);
        using (var a = RandomSet("corrigible-neutral-HHH")) a.Save(Path.Combine(dir.Path, "sub"));
        var sets = SteeringVectorSet.LoadFolder(dir.Path);
        Assert.Equal(["corrigible-neutral-HHH", "refusal"], sets.Select(s => s.Behavior));
        foreach (var s in sets) s.Dispose();
        using (var twin = RandomSet("refusal")) twin.Save(Path.Combine(dir.Path, "other"));
        Assert.Contains("two files hold vectors for behavior 'refusal'", Assert.Throws<InvalidDataException>(() => SteeringVectorSet.LoadFolder(dir.Path)).Message);
        Assert.Throws<DirectoryNotFoundException>(() => SteeringVectorSet.LoadFolder(dir.Sub("nope")));
    }
}
