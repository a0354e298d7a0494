using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Cli.Commands;
using Caa.Cli.Common;
using Caa.Interpret.Vectors;
using Caa.Model.Llama;
using Caa.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Caa.Tests.Vectors;

/// <summary><c>caa vectors extract|normalize|inspect</c> on a tiny model saved to a temp folder with Llama 2's tokenizer.</summary>
public sealed class VectorCliTests : IDisposable
{
    readonly VectorTestSupport.Scratch _dir = new();
    string ModelDir => _dir.Sub("model");
    string Dataset => _dir.Sub("ab.json");

    public VectorCliTests()
    {
        if (Shared.Path(VectorTestSupport.TokenizerPath) is not { } tokenizer) return; // tests are skipped
        using var model = VectorTestSupport.ChatModel(seed: 9);
        model.SavePretrained(ModelDir);
        File.Copy(tokenizer, Path.Combine(ModelDir, "tokenizer.model")); // at test time only: never committed
        File.WriteAllText(Dataset, JsonSerializer.Serialize(VectorTestSupport.Items));
    }

    public void Dispose() => _dir.Dispose();

    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var code = new RootCommand { VectorCommands.Create() }.Parse(args)
            .Invoke(new InvocationConfiguration { Output = TextWriter.Synchronized(o), Error = TextWriter.Synchronized(e), EnableDefaultExceptionHandler = false });
        return (code, o.ToString(), e.ToString());
    }

    [SharedFact(VectorTestSupport.TokenizerPath)]
    public void ExtractWritesTheVectorsAndAManifestThenInspectPrintsTheNorms()
    {
        var outDir = _dir.Sub("raw");
        var (code, stdout, stderr) = Run("vectors", "extract", "--behavior", "sycophancy", "--dataset", Dataset, "--layers", "0,2",
            "--batch-size", "4", "--out", outDir, "--model", ModelDir, "--keep-activations");
        Assert.True(code == 0, stderr);
        Assert.Contains("sycophancy.safetensors", stdout);
        Assert.DoesNotContain("sycophancy: 6 items", stdout); // the progress bar's label: it goes to stderr, never into the output
        Assert.Equal(["manifest.json", "sycophancy.activations.safetensors", "sycophancy.safetensors"],
            Directory.GetFiles(outDir).Select(Path.GetFileName).Order());

        // The file holds what the library computes for the same model and data.
        using var set = SteeringVectorSet.Load(Path.Combine(outDir, "sycophancy.safetensors"));
        using var model = LlamaForCausalLM.FromPretrained(ModelDir);
        using var expected = VectorExtractor.Extract(model, VectorTestSupport.Tok, "sycophancy", VectorTestSupport.Items, new ExtractionOptions { Layers = [0, 2] });
        Assert.Equal([0, 2], set.Layers);
        foreach (var l in set.Layers) Assert.True(TinyModels.MaxAbsDiff(set[l], expected.Vectors[l]) <= 1e-6);
        Assert.Equal(Path.GetFullPath(ModelDir), set.Metadata.ModelSource);
        Assert.Equal(Caa.Model.IO.AtomicFile.Sha256(Dataset), set.Metadata.DatasetSha256);
        Assert.Equal(6, set.Metadata.Items);
        using (var acts = ItemActivations.Load(Path.Combine(outDir, "sycophancy.activations.safetensors"))) Assert.Equal(6, acts.Items);

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal("vectors extract", (string?)manifest["command"]);
        Assert.Equal("0,2", (string?)manifest["options"]!["layers"]);
        Assert.Contains(manifest["inputs"]!.AsArray(), i => (string?)i!["role"] == "dataset" && (string?)i["sha256"] == set.Metadata.DatasetSha256);
        Assert.Equal(Math.Round(set.Norm(2), 6), (double)manifest["results"]!["norms"]!["2"]!, 6);

        var inspect = Run("vectors", "inspect", Path.Combine(outDir, "sycophancy.safetensors"));
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Contains("behavior      sycophancy", inspect.Out);
        Assert.Contains("normalization none", inspect.Out);
        Assert.Contains("6 items", inspect.Out);
        foreach (var l in set.Layers)
            Assert.Matches($@"(?m)^\s+{l}\s+{System.Text.RegularExpressions.Regex.Escape(set.Norm(l).ToString("G6", System.Globalization.CultureInfo.InvariantCulture))}\s", inspect.Out);
    }

    [SharedFact(VectorTestSupport.TokenizerPath)]
    public void NormalizeEqualizesNormsAcrossTheBehaviorsOfAFolder()
    {
        var raw = _dir.Sub("raw");
        foreach (var (behavior, items) in new[] { ("a", VectorTestSupport.Items.Take(3)), ("b", VectorTestSupport.Items.Skip(2)) })
        {
            var data = _dir.Sub(behavior + ".json");
            File.WriteAllText(data, JsonSerializer.Serialize(items));
            var r = Run("vectors", "extract", "--behavior", behavior, "--dataset", data, "--out", Path.Combine(raw, behavior), "--model", ModelDir);
            Assert.True(r.Code == 0, r.Err);
        }
        var outDir = _dir.Sub("normalized");
        var (code, stdout, stderr) = Run("vectors", "normalize", "--in", raw, "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("normalized 2 behaviors (a, b)", stdout);
        var sets = SteeringVectorSet.LoadFolder(outDir);
        var originals = SteeringVectorSet.LoadFolder(raw);
        foreach (var l in Enumerable.Range(0, 3))
        {
            var mean = originals.Average(s => s.Norm(l));
            Assert.All(sets, s => Assert.Equal(mean, s.Norm(l), 4));
        }
        Assert.All(sets, s => Assert.Equal(VectorNormalization.MeanNormAcrossBehaviors, s.Metadata.Normalization));
        Assert.True(File.Exists(Path.Combine(outDir, "manifest.json")));
        Assert.Contains("normalization mean-norm-across-behaviors", Run("vectors", "inspect", outDir).Out);
        foreach (var s in sets.Concat(originals)) s.Dispose();

        Assert.Throws<CliException>(() => Run("vectors", "normalize", "--in", raw, "--out", raw + "/"));
    }

    [SharedFact(VectorTestSupport.TokenizerPath)]
    public void BadInputsGetClearErrorsAndWriteNothing()
    {
        var outDir = _dir.Sub("out");
        string Fails(params string[] extra)
        {
            var e = Assert.ThrowsAny<Exception>(() => Run(["vectors", "extract", "--behavior", "sycophancy", "--out", outDir, "--model", ModelDir, .. extra]));
            Assert.False(Directory.Exists(outDir), "a failed run must leave --out untouched");
            return e.Message;
        }
        Assert.Contains("'x7' is not a layer index or range", Fails("--dataset", Dataset, "--layers", "0,x7"));
        Assert.Contains("--layers: 3 outside the model's blocks 0…2", Fails("--dataset", Dataset, "--layers", "1-3"));
        Assert.Contains("--batch-size must be at least 1", Fails("--dataset", Dataset, "--batch-size", "0"));
        Assert.Contains("pass --dataset FILE", Fails());
        var broken = _dir.Sub("broken.json");
        File.WriteAllText(broken, "[{\"question\": \"Q\", \"answer_matching_behavior\": \"(A)\", \"answer_not_matching_behavior\": \"(C\"}]");
        Assert.Contains("item 0: answer_not_matching_behavior \"(C\"", Fails("--dataset", broken));
        File.WriteAllText(broken, "{not json");
        Assert.Contains("broken.json", Fails("--dataset", broken));
        Assert.Contains("file not found", Fails("--dataset", _dir.Sub("absent.json")));
    }

    [Fact]
    public void LayerSpecsParse()
    {
        Assert.Equal([0, 1, 2, 3], VectorCommands.ParseLayers("all", 4));
        Assert.Equal([0, 3, 10, 11, 12], VectorCommands.ParseLayers(" 12, 0,3 ,10-12", 32));
        Assert.Throws<CliException>(() => VectorCommands.ParseLayers("5-3", 32));
        Assert.Throws<CliException>(() => VectorCommands.ParseLayers("-1", 32));
        Assert.Throws<CliException>(() => VectorCommands.ParseLayers(",", 32));
    }
}
