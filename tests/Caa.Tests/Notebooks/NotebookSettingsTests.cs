using Caa.Figures;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Notebooks;

/// <summary>notebooks/settings.json: defaults, path resolution, errors that name the file and key, the results folder's key.</summary>
public sealed class NotebookSettingsTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("caa-settings-").FullName;
    readonly string _model;

    public NotebookSettingsTests()
    {
        // A model folder as far as settings are concerned: config.json, a weights file and datasets in the paper's layout.
        _model = Path.Combine(_dir, "model");
        Directory.CreateDirectory(Path.Combine(_model, "datasets", "generate", "sycophancy"));
        Directory.CreateDirectory(Path.Combine(_model, "datasets", "test", "sycophancy"));
        File.WriteAllText(Path.Combine(_model, "config.json"), "{\"num_hidden_layers\": 4}");
        File.WriteAllBytes(Path.Combine(_model, "model.safetensors"), new byte[3000]);
        File.WriteAllText(Path.Combine(_model, "datasets", "generate", "sycophancy", "generate_dataset.json"), "[]");
        File.WriteAllText(Path.Combine(_model, "datasets", "test", "sycophancy", "test_dataset_ab.json"), "[]");
        Directory.CreateDirectory(Path.Combine(_model, "datasets", "generate", "refusal"));   // no test file: not a behavior with data
    }

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    string Write(string json, string name = "settings.json")
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, json);
        return p;
    }

    [Fact]
    public void ShippedSettingsUseTheEmbeddedOrganismOnTheCpu()
    {
        var s = NotebookSettings.Load(Path.Combine(Shared.RepoRoot, "notebooks", "settings.json"));
        Assert.True(s.IsEmbeddedOrganism);
        Assert.Equal(Path.Combine(Shared.RepoRoot, "data", "organism"), s.Model);
        Assert.Equal(Path.Combine(s.Model, "datasets"), s.Datasets);
        Assert.Equal(("cpu", "fp32", 1), (s.Device, s.DType, s.Threads));
        Assert.Equal(Path.Combine(Shared.RepoRoot, "artifacts", "notebooks"), s.Output);
        Assert.Empty(s.Layers);
    }

    [Fact]
    public void PathsResolveAgainstTheRepositoryAndDefaultsApply()
    {
        var s = NotebookSettings.Load(Write($$"""{ "model": "{{_model}}", "output": "artifacts/elsewhere", "layers": [3, 1], "dtype": "bf16", "device": "cuda" }"""));
        Assert.False(s.IsEmbeddedOrganism);
        Assert.Equal(_model, s.Model);
        Assert.Equal(Path.Combine(Shared.RepoRoot, "artifacts", "elsewhere"), s.Output);   // the temp folder has no Caa.sln: the repo comes from the current folder / assembly
        Assert.Equal(new[] { 1, 3 }, s.SweepLayers(4));
        Assert.Equal(new[] { "sycophancy" }, s.BehaviorIds());
        Assert.Equal(("organism", 10, 40), (s.Judge, s.OpenEndedQuestions, s.MaxNewTokens));
        Assert.StartsWith(Path.Combine(s.Output, "results") + Path.DirectorySeparatorChar, s.ResultsFolder);
    }

    [Fact]
    public void ErrorsNameTheFileAndTheKey()
    {
        var unknown = Assert.Throws<InvalidDataException>(() => NotebookSettings.Load(Write($$"""{ "model": "{{_model}}", "layer": [1] }""")));
        Assert.Contains("settings.json", unknown.Message);
        Assert.Contains("\"layer\": unknown key", unknown.Message);
        var dtype = Assert.Throws<InvalidDataException>(() => NotebookSettings.Load(Write($$"""{ "model": "{{_model}}", "dtype": "fp8" }""")));
        Assert.Contains("\"dtype\"", dtype.Message);
        var model = Assert.Throws<InvalidDataException>(() => NotebookSettings.Load(Write("""{ "model": "/nonexistent/Llama-2-7b-chat-hf" }""")));
        Assert.Contains("\"model\": /nonexistent/Llama-2-7b-chat-hf is not a Hugging Face model folder", model.Message);
        var layers = NotebookSettings.Load(Write($$"""{ "model": "{{_model}}", "layers": [2, 9] }"""));
        Assert.Contains("9 outside the model's layers 0…3", Assert.Throws<InvalidDataException>(() => layers.SweepLayers(4)).Message);
        var behaviors = NotebookSettings.Load(Write($$"""{ "model": "{{_model}}", "behaviors": ["refusal"] }"""));
        Assert.Contains("refusal", Assert.Throws<InvalidDataException>(() => behaviors.BehaviorIds()).Message);
        Assert.Throws<InvalidDataException>(() => NotebookSettings.Load(Write("{ not json")));
        Assert.Throws<FileNotFoundException>(() => NotebookSettings.Load(Path.Combine(_dir, "missing.json")));
    }

    [Fact]
    public void EnvironmentVariableNamesTheFile()
    {
        var path = Write($$"""{ "model": "{{_model}}", "threads": 0 }""", "other.json");
        var before = Environment.GetEnvironmentVariable(NotebookSettings.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(NotebookSettings.EnvironmentVariable, path);
            Assert.Equal(path, NotebookSettings.Load().SettingsFile);
        }
        finally { Environment.SetEnvironmentVariable(NotebookSettings.EnvironmentVariable, before); }
    }

    [Fact]
    public void ResultsFolderChangesWithWhatResultsDependOn()
    {
        string Key(string json) => NotebookSettings.Load(Write(json)).ResultsFolder;
        var baseline = Key($$"""{ "model": "{{_model}}" }""");
        Assert.Equal(baseline, Key($$"""{ "model": "{{_model}}", "threads": 2, "device": "cpu" }"""));   // threads and device do not change results
        Assert.NotEqual(baseline, Key($$"""{ "model": "{{_model}}", "dtype": "bf16" }"""));
        Assert.NotEqual(baseline, Key($$"""{ "model": "{{_model}}", "layers": [1] }"""));
        File.WriteAllBytes(Path.Combine(_model, "model.safetensors"), Enumerable.Repeat((byte)1, 3000).ToArray());   // a replaced model
        Assert.NotEqual(baseline, Key($$"""{ "model": "{{_model}}" }"""));
    }

    [Fact]
    public void RequireNamesTheNotebookThatProducesAMissingFile()
    {
        var s = NotebookSettings.Load(Write($$"""{ "model": "{{_model}}" }"""));
        var e = Assert.Throws<FileNotFoundException>(() => s.Require(Path.Combine(_dir, "nothing.csv"), "03-layer-sweeps.ipynb"));
        Assert.Contains("run notebooks/03-layer-sweeps.ipynb first", e.Message);
        Assert.Equal(_dir, s.Require(_dir, "x"));
    }
}
