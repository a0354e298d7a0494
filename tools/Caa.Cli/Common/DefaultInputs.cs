using System.Text.RegularExpressions;
using Caa.Interpret.Datasets;
using Caa.Interpret.Vectors;
using Caa.Model;
using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using Caa.Model.IO;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Spectre.Console;
using static TorchSharp.torch;

namespace Caa.Cli.Common;

/// <summary>
/// What commands use when --dataset or --vectors is omitted: the datasets shipped beside the model (the organism's
/// <c>data/organism/datasets</c>, in the paper's layout) and vectors extracted from their generation split.
/// </summary>
public static class DefaultInputs
{
    /// <summary>&lt;model folder&gt;/datasets, or a clear error naming what is missing.</summary>
    public static string DatasetsRoot(string modelFolder, string forWhat)
    {
        var root = Path.Combine(modelFolder, "datasets");
        return Directory.Exists(root) ? root
            : throw new CliException($"no {forWhat} given and the model folder has no datasets/ ({root}); pass {forWhat} FILE (build the paper's datasets with `caa dataset build`)");
    }

    /// <summary>A file of the default datasets: &lt;model&gt;/datasets/&lt;relative&gt;, which must exist.</summary>
    public static string File(string modelFolder, string forWhat, params string[] relative)
    {
        var path = Path.Combine([DatasetsRoot(modelFolder, forWhat), .. relative]);
        return System.IO.File.Exists(path) ? path : throw new CliException($"no {forWhat} given and the default {path} does not exist; pass {forWhat} FILE");
    }

    public static string TestSet(string modelFolder, string behavior) => File(modelFolder, "--dataset", "test", behavior, "test_dataset_ab.json");
    public static string GenerateSet(string modelFolder, string behavior) => File(modelFolder, "--dataset", "generate", behavior, "generate_dataset.json");
    public static string OpenEndedSet(string modelFolder, string behavior) => File(modelFolder, "--dataset", "test", behavior, "test_dataset_open_ended.json");

    /// <summary>Behaviors with a generation split in &lt;model&gt;/datasets/generate, in ordinal order.</summary>
    public static IReadOnlyList<string> Behaviors(string modelFolder) =>
        Directory.EnumerateDirectories(Path.Combine(DatasetsRoot(modelFolder, "--dataset"), "generate")).Select(Path.GetFileName).OfType<string>()
            .Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// The paper's vectors for every behavior of the default datasets, extracted from their generation splits and normalized
    /// across behaviors (per layer), written to &lt;<paramref name="dir"/>&gt;/&lt;behavior&gt;.safetensors. Files already there
    /// are reused, so a rerun extracts nothing. Returns <paramref name="dir"/>.
    /// </summary>
    public static string EnsureVectors(LlamaForCausalLM model, Llama2Tokenizer tok, string modelFolder, string dir, IAnsiConsole console)
    {
        var behaviors = Behaviors(modelFolder);
        if (behaviors.All(b => System.IO.File.Exists(SteeringVectorSet.FileIn(dir, b)))) return dir;
        var rawDir = Path.Combine(dir, "raw");
        foreach (var b in behaviors)
        {
            if (System.IO.File.Exists(SteeringVectorSet.FileIn(rawDir, b))) continue;
            var file = GenerateSet(modelFolder, b);
            var items = AbDataset.Load(file);
            console.MarkupLine($"[grey]no --vectors given: extracting {Markup.Escape(b)} from {Markup.Escape(file)} ({items.Count} items)[/]");
            using var result = VectorExtractor.Extract(model, tok, b, items, new ExtractionOptions { DatasetSha256 = AtomicFile.Sha256(file) });
            result.Vectors.Save(rawDir);
        }
        var raw = behaviors.Select(b => SteeringVectorSet.Load(SteeringVectorSet.FileIn(rawDir, b), model)).ToList();
        try
        {
            foreach (var n in VectorNormalization.AcrossBehaviors(raw)) using (n) n.Save(dir);
        }
        finally { foreach (var s in raw) s.Dispose(); }
        console.MarkupLine($"[grey]vectors normalized across {behaviors.Count} behaviors: {Markup.Escape(dir)}[/]");
        return dir;
    }
}

/// <summary>Reading steering vectors given on the command line (files written by <c>caa vectors</c>, or any safetensors file of resid_post vectors).</summary>
public static partial class VectorFiles
{
    /// <summary>The vector file: <paramref name="vectors"/> itself when it is a file, else &lt;dir&gt;/&lt;behavior&gt;.safetensors.</summary>
    public static string Resolve(string vectors, string behavior)
    {
        if (System.IO.File.Exists(vectors)) return Path.GetFullPath(vectors);
        if (!Directory.Exists(vectors)) throw new CliException($"--vectors {vectors}: not found");
        var f = Path.Combine(vectors, behavior + ".safetensors");
        if (System.IO.File.Exists(f)) return Path.GetFullPath(f);
        var present = string.Join(", ", Directory.EnumerateFiles(vectors, "*.safetensors").Select(Path.GetFileName).Order());
        throw new CliException($"--vectors: no {behavior}.safetensors in {vectors}; present: {(present.Length > 0 ? present : "no .safetensors files")}");
    }

    /// <summary>
    /// Layer → float32 [hidden] vectors (tensors <c>blocks.{L}.hook_resid_post</c>), checked against the model's hidden size and,
    /// when the file records one, its architecture hash. The tensors are detached from any DisposeScope; the caller disposes them.
    /// </summary>
    public static Dictionary<int, Tensor> Read(string file, IEnumerable<int> layers, LlamaConfig config)
    {
        using var f = SafeTensorsFile.Open(file);
        if (f.Metadata.TryGetValue("architecture_hash", out var hash) && hash != config.ArchitectureHash)
            throw new CliException($"{file} was made for another architecture ({hash}; this model is {config.ArchitectureHash})");
        var result = new Dictionary<int, Tensor>();
        foreach (var l in layers)
        {
            var name = HookPoints.ResidPostOf(l);
            if (!f.Tensors.TryGetValue(name, out var info))
            {
                var present = f.Tensors.Keys.Select(k => ResidPostName().Match(k)).Where(x => x.Success).Select(x => int.Parse(x.Groups[1].Value)).Order();
                throw new CliException($"{file}: no tensor '{name}' for layer {l}; layers present: {string.Join(", ", present)}");
            }
            if (info.Shape.Length != 1 || info.Shape[0] != config.HiddenSize)
                throw new CliException($"{file}: '{name}' has shape [{string.Join(",", info.Shape)}]; the model's hidden size is {config.HiddenSize}");
            result[l] = f.Read(name, ScalarType.Float32).DetachFromDisposeScope();
        }
        return result;
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.hook_resid_post$")]
    private static partial Regex ResidPostName();
}
