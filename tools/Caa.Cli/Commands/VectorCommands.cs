using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Interpret.Datasets;
using Caa.Interpret.Vectors;
using Caa.Model.IO;
using Spectre.Console;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa vectors extract|normalize|inspect</c>: CAA steering vectors as files. A vector file is
/// <c>&lt;dir&gt;/&lt;behavior&gt;.safetensors</c> (see <see cref="SteeringVectorSet"/>); each command that writes puts its
/// files into --out atomically (each file appears whole or not at all, nothing is written when the run fails) and
/// then a manifest.json describing the run.
/// </summary>
public static class VectorCommands
{
    public static Command Create() => new("vectors", "CAA steering vectors: extract from A/B data, normalize across behaviors, inspect.")
    {
        Extract(), Normalize(), Inspect(),
    };

    static Command Extract()
    {
        var m = new ModelOptions();
        var behavior = new Option<string>("--behavior") { Description = "Behavior id, e.g. sycophancy (names the output file).", Required = true };
        var dataset = new Option<string?>("--dataset") { Description = "A/B dataset (JSON list in the paper's format). Default: the model's generation split datasets/generate/<behavior>/generate_dataset.json (the organism ships its own)." };
        var layers = new Option<string>("--layers") { Description = "all, or block indices: 0,3,5 or 10-15.", DefaultValueFactory = _ => "all" };
        var batchSize = new Option<int>("--batch-size") { Description = "A/B items per forward pass (two rows each).", DefaultValueFactory = _ => 8 };
        var outDir = new Option<string>("--out") { Description = "Output folder: <behavior>.safetensors and manifest.json are written there.", Required = true };
        var keep = new Option<bool>("--keep-activations") { Description = "Also write every item's answer-token activations (<behavior>.activations.safetensors) for PCA." };
        var system = new Option<string?>("--system") { Description = "System prompt for every prompt (the prompting comparison; default none, as the paper's main experiments)." };
        var cmd = new Command("extract", "Extract a behavior's steering vectors: mean over A/B items of resid_post at the answer letter, matching minus not matching.")
        {
            behavior, dataset, layers, batchSize, outDir, keep, system,
        };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var id = r.GetValue(behavior)!;
            var file = r.GetValue(dataset) ?? DefaultInputs.GenerateSet(m.ResolveFolder(r), id);
            var items = File.Exists(file) ? AbDataset.Load(file) : throw new CliException($"--dataset {file}: file not found");
            var outPath = Path.GetFullPath(r.GetValue(outDir)!);
            if (r.GetValue(batchSize) < 1) throw new CliException($"--batch-size must be at least 1; got {r.GetValue(batchSize)}");
            var modelDir = m.ResolveFolder(r);
            var tok = m.LoadTokenizer(r);
            using var model = m.LoadModel(r);
            var options = new ExtractionOptions
            {
                Layers = ParseLayers(r.GetValue(layers)!, model.Config.NumHiddenLayers),
                BatchSize = r.GetValue(batchSize),
                KeepActivations = r.GetValue(keep),
                SystemPrompt = r.GetValue(system),
                DatasetSha256 = AtomicFile.Sha256(file),
            };
            ExtractionResult? result = null;
            ProgressConsole(r).Progress().Start(ctx =>
            {
                var task = ctx.AddTask($"{id}: {items.Count} items", maxValue: items.Count);
                result = VectorExtractor.Extract(model, tok, id, items, options, new CallbackProgress<int>(n => task.Value = n));
            });
            using var _ = result!;

            Directory.CreateDirectory(outPath);
            var written = result!.Vectors.Save(outPath);
            var activations = result.Activations?.Save(outPath);
            var manifest = new RunManifest("vectors extract", outPath)
                .Option("behavior", id).Option("dataset", Path.GetFullPath(file)).Option("layers", r.GetValue(layers)).Option("batch_size", options.BatchSize)
                .Option("keep_activations", options.KeepActivations).Option("system", options.SystemPrompt)
                .Option("model", modelDir).Option("dtype", r.GetValue(m.DType)).Option("device", r.GetValue(m.Device))
                .Input("dataset", file).Input("model_config", Path.Combine(modelDir, "config.json")).Input("tokenizer", Path.Combine(modelDir, "tokenizer.model"))
                .Result("vectors", Path.GetFileName(written)).Result("items", items.Count)
                .Result("norms", Norms(result.Vectors));
            if (activations is not null) manifest.Result("activations", Path.GetFileName(activations));
            manifest.Write();
            r.InvocationConfiguration.Output.WriteLine($"wrote {written} ({result.Vectors})");
            if (activations is not null) r.InvocationConfiguration.Output.WriteLine($"wrote {activations}");
        });
        return cmd;
    }

    static Command Normalize()
    {
        var inDir = new Option<string>("--in") { Description = "Folder of vector files (searched recursively; *.activations.safetensors are skipped).", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output folder for the normalized vectors (must differ from --in).", Required = true };
        var cmd = new Command("normalize", "Rescale every behavior's vector, per layer, to the mean norm of all behaviors' vectors at that layer (the paper).") { inDir, outDir };
        cmd.SetAction(r =>
        {
            var input = Path.GetFullPath(r.GetValue(inDir)!);
            var output = Path.GetFullPath(r.GetValue(outDir)!);
            if (!Directory.Exists(input)) throw new CliException($"--in {input}: folder not found");
            if (Path.TrimEndingDirectorySeparator(input) == Path.TrimEndingDirectorySeparator(output))
                throw new CliException("--out must differ from --in: normalizing in place would replace the raw vectors");
            var files = SteeringVectorSet.FilesIn(input);
            var sets = SteeringVectorSet.LoadFolder(input);
            try
            {
                var normalized = VectorNormalization.AcrossBehaviors(sets);
                try
                {
                    Directory.CreateDirectory(output);
                    ProgressConsole(r).Progress().Start(ctx =>
                    {
                        var task = ctx.AddTask($"normalize {normalized.Count} behaviors", maxValue: normalized.Count);
                        foreach (var s in normalized) { s.Save(output); task.Increment(1); }
                    });
                    var manifest = new RunManifest("vectors normalize", output).Option("in", input).Option("normalization", VectorNormalization.MeanNormAcrossBehaviors);
                    foreach (var f in files) manifest.Input("vectors", f);
                    manifest.Result("behaviors", new JsonArray(normalized.Select(s => (JsonNode)JsonValue.Create(s.Behavior)!).ToArray()))
                        .Result("norms", new JsonObject(normalized.Select(s => KeyValuePair.Create(s.Behavior, (JsonNode?)Norms(s)))))
                        .Write();
                    r.InvocationConfiguration.Output.WriteLine($"normalized {normalized.Count} behaviors ({string.Join(", ", normalized.Select(s => s.Behavior))}) into {output}");
                }
                finally { foreach (var s in normalized) s.Dispose(); }
            }
            finally { foreach (var s in sets) s.Dispose(); }
        });
        return cmd;
    }

    static Command Inspect()
    {
        var path = new Argument<string>("path") { Description = "A vector file or a folder of them." };
        var cmd = new Command("inspect", "Print each vector set's metadata and per-layer norms (with the cosine to the previous layer).") { path };
        cmd.SetAction(r =>
        {
            var p = r.GetValue(path)!;
            var sets = Directory.Exists(p) ? SteeringVectorSet.LoadFolder(p)
                : File.Exists(p) ? [SteeringVectorSet.Load(p)]
                : throw new CliException($"{p}: no such file or folder");
            var o = r.InvocationConfiguration.Output;
            try
            {
                foreach (var s in sets)
                {
                    var md = s.Metadata;
                    o.WriteLine($"behavior      {md.Behavior}");
                    o.WriteLine($"model         {md.ModelSource} (architecture {md.ArchitectureHash}, hidden {md.HiddenSize}, {md.ModelDType})");
                    o.WriteLine($"dataset       sha256 {md.DatasetSha256}, {md.Items} items");
                    o.WriteLine($"read at       {md.ReadPosition}");
                    o.WriteLine($"normalization {md.Normalization}");
                    if (md.SystemPrompt is not null) o.WriteLine($"system prompt {JsonSerializer.Serialize(md.SystemPrompt)}");
                    o.WriteLine($"library       {md.LibraryVersion}");
                    o.WriteLine("layer        norm  cos(prev)");
                    int? previous = null;
                    foreach (var l in s.Layers)
                    {
                        var cos = previous is { } q ? Cosine(s[q], s[l]).ToString("F4", CultureInfo.InvariantCulture) : "";
                        o.WriteLine($"{l,5} {s.Norm(l).ToString("G6", CultureInfo.InvariantCulture),11}  {cos,9}");
                        previous = l;
                    }
                    o.WriteLine();
                }
            }
            finally { foreach (var s in sets) s.Dispose(); }
        });
        return cmd;
    }

    /// <summary>"all", or indices and ranges: "0,3,5", "10-15".</summary>
    internal static IReadOnlyList<int> ParseLayers(string spec, int modelLayers)
    {
        if (spec.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return Enumerable.Range(0, modelLayers).ToArray();
        var layers = new List<int>();
        foreach (var part in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var ends = part.Split('-', StringSplitOptions.TrimEntries);
            if (ends.Length is < 1 or > 2 || !ends.All(e => int.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                throw new CliException($"--layers: '{part}' is not a layer index or range (expected all, 0,3,5 or 10-15)");
            var (from, to) = (int.Parse(ends[0], CultureInfo.InvariantCulture), int.Parse(ends[^1], CultureInfo.InvariantCulture));
            if (from > to) throw new CliException($"--layers: range '{part}' is empty");
            layers.AddRange(Enumerable.Range(from, to - from + 1));
        }
        if (layers.Count == 0) throw new CliException("--layers: no layers given");
        var outside = layers.Where(l => l >= modelLayers).Distinct().ToArray();
        if (outside.Length > 0) throw new CliException($"--layers: {string.Join(",", outside)} outside the model's blocks 0…{modelLayers - 1}");
        return layers.Distinct().Order().ToArray();
    }

    static JsonObject Norms(SteeringVectorSet s) =>
        new(s.Layers.Select(l => KeyValuePair.Create(l.ToString(CultureInfo.InvariantCulture), (JsonNode?)JsonValue.Create(Math.Round(s.Norm(l), 6)))));

    static double Cosine(TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b)
    {
        using var _ = TorchSharp.torch.NewDisposeScope();
        var (x, y) = (a.to(TorchSharp.torch.ScalarType.Float64), b.to(TorchSharp.torch.ScalarType.Float64));
        var denominator = x.norm().item<double>() * y.norm().item<double>();
        return denominator == 0 ? 0 : (x * y).sum().item<double>() / denominator;
    }

    /// <summary>Progress bars go to the command's error stream (the console's stderr, or a test's writer), never mixed into its output.</summary>
    static IAnsiConsole ProgressConsole(ParseResult r) =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(r.InvocationConfiguration.Error) });

    /// <summary>IProgress that calls back synchronously (Progress&lt;T&gt; would post to a synchronization context).</summary>
    sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
