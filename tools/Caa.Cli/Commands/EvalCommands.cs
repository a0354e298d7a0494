using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Interpret.Datasets;
using Caa.Interpret.Evaluation;
using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using Caa.Model.IO;
using Caa.Model;
using Caa.Model.Llama;
using Spectre.Console;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa eval ab</c>, <c>caa eval sweep</c>, <c>caa eval capability</c>: the paper's A/B evaluation, its layer × multiplier sweep
/// (resumable) and the capability checks.
/// </summary>
public static class EvalCommands
{
    public static Command Create()
    {
        var eval = new Command("eval", "Evaluate behaviors and capabilities as A/B p(match), unsteered or steered.");
        eval.Subcommands.Add(Ab());
        eval.Subcommands.Add(Sweep());
        eval.Subcommands.Add(Capability());
        return eval;
    }

    // ---------------- options shared by the subcommands ----------------

    static Option<string> OutOption() => new("--out") { Description = "Output folder.", Required = true };
    static Option<int> BatchOption() => new("--batch-size") { Description = "Items per forward pass.", DefaultValueFactory = _ => AbEvaluation.DefaultBatchSize };
    static Option<string?> VectorsOption(string extra) => new("--vectors")
    {
        Description = "Steering vectors: a folder of <behavior>.safetensors files or one .safetensors file, tensors named blocks.{L}.hook_resid_post." + extra,
    };

    static Command Ab()
    {
        var m = new ModelOptions();
        var dataset = new Option<string?>("--dataset") { Description = "A/B items (the paper's JSON list format). Default: the model's test split datasets/test/<behavior>/test_dataset_ab.json (needs --behavior)." };
        var vectors = VectorsOption(" Omit for an unsteered evaluation.");
        var behavior = new Option<string?>("--behavior") { Description = "Behavior name (vector file in --vectors, and the 'behavior' column). Default: from the dataset path." };
        var layer = new Option<int?>("--layer") { Description = "Layer to steer at (with --vectors)." };
        var multipliers = new Option<string?>("--multipliers") { Description = "Comma-separated multipliers (with --vectors). Default: -1,0,1." };
        var system = new Option<string?>("--system") { Description = "System prompt (the prompting comparison), placed before [INST] as the paper's code does." };
        var batch = BatchOption();
        var outDir = OutOption();
        var cmd = new Command("ab", "A/B evaluation: p(matching letter) after \"[INST] {question} [/INST] (\". Writes ab.csv (behavior,layer,multiplier,item,p_match; layer -1 = unsteered) and manifest.json.")
            { dataset, vectors, behavior, layer, multipliers, system, batch, outDir };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var datasetPath = r.GetValue(dataset) is { } given ? RequireFile(given, "--dataset")
                : DefaultInputs.TestSet(m.ResolveFolder(r), r.GetValue(behavior) ?? throw new CliException("give --dataset FILE or --behavior NAME (for the model's own test split)"));
            var name = r.GetValue(behavior) ?? BehaviorName(datasetPath);
            var (layerValue, vector, ms) = SteeringArgs(r, vectors, layer, multipliers, name, m.ResolveFolder(r));
            var o = Directory.CreateDirectory(r.GetValue(outDir)!).FullName;
            var manifest = new RunManifest("eval ab", o).Option("behavior", name).Option("layer", layerValue).Option("multipliers", Join(ms))
                .Option("system", r.GetValue(system)).Option("batch_size", r.GetValue(batch)).Input("dataset", datasetPath);
            if (r.GetValue(vectors) is { } vp) manifest.Input("vectors", VectorFiles.Resolve(vp, name));
            var tok = m.LoadTokenizer(r);
            using var model = m.LoadModel(r);
            manifest.Option("model", model.Source);
            var prompts = AbPrompt.FromItems(tok, AbDataset.Load(datasetPath), r.GetValue(system));
            var rows = new List<SweepRow>();
            var means = new JsonObject();
            var console = Console(r);
            RunWithProgress(console, $"eval ab {name}", ms.Count * prompts.Count, report =>
            {
                var done = 0;
                foreach (var mult in ms)
                {
                    var offset = done;
                    var steering = vector is null ? null : Steering.At(layerValue, vector, mult);
                    var res = AbEvaluation.Evaluate(model, prompts, steering, r.GetValue(batch), new SyncProgress<int>(n => report(offset + n)));
                    rows.AddRange(res.PMatch.Select((p, i) => new SweepRow(name, vector is null ? -1 : layerValue, mult, i, p)));
                    means[mult.ToString("R", CultureInfo.InvariantCulture)] = res.Mean;
                    done += prompts.Count;
                }
            });
            AtomicFile.WriteAllText(Path.Combine(o, "ab.csv"), SweepCsv.ToText(rows));
            manifest.Result("mean_p_match", means).Write();
            var table = new Table().AddColumn("multiplier").AddColumn("mean p(match)");
            foreach (var (k, v) in means) table.AddRow(k, ((double)v!).ToString("F4", CultureInfo.InvariantCulture));
            console.Write(table);
        });
        return cmd;
    }

    static Command Sweep()
    {
        var m = new ModelOptions();
        var vectors = new Option<string?>("--vectors")
        {
            Description = "Folder of <behavior>.safetensors (tensors blocks.{L}.hook_resid_post). Default: extracted from the model's generation splits " +
                "(datasets/generate/<behavior>/generate_dataset.json), normalized across behaviors, and saved in <out>/vectors.",
        };
        var dataset = new Option<string?>("--dataset")
        {
            Description = "A/B test items: one JSON file (behavior = file name, or its folder for test_dataset_ab.json) or a folder of <behavior>.json / <behavior>/test_dataset_ab.json. " +
                "Default: the model's test splits datasets/test/.",
        };
        var behavior = new Option<string?>("--behavior") { Description = "Comma-separated behaviors to sweep (default: every behavior in --dataset)." };
        var layers = new Option<string>("--layers") { Description = "all, or comma-separated layers (e.g. 0,3,5).", DefaultValueFactory = _ => "all" };
        var multipliers = new Option<string>("--multipliers") { Description = "Comma-separated multipliers.", DefaultValueFactory = _ => "-1,0,1" };
        var mode = new Option<string>("--mode") { Description = "efficient (default), reference (the paper's one forward per item × layer × multiplier) or batched.", DefaultValueFactory = _ => "efficient", Hidden = true };
        var batch = BatchOption();
        var outDir = OutOption();
        var cmd = new Command("sweep", "Layer × multiplier sweep of A/B p(match). Writes sweep.csv (behavior,layer,multiplier,item,p_match) cell by cell, " +
            "summary.csv (mean per behavior × layer × multiplier) and manifest.json (with each behavior's best layer: largest mean p(+1) − p(−1)). Rerun with the same --out to resume.")
            { vectors, dataset, behavior, layers, multipliers, mode, batch, outDir };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var modelFolder = m.ResolveFolder(r);
            var sets = Datasets(r.GetValue(dataset) ?? Path.Combine(DefaultInputs.DatasetsRoot(modelFolder, "--dataset"), "test"));
            if (r.GetValue(behavior) is { } only)
            {
                var wanted = only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var unknown = wanted.Where(w => sets.All(x => x.Name != w)).ToList();
                if (unknown.Count > 0) throw new CliException($"--behavior: no test items for {string.Join(", ", unknown)} (have: {string.Join(", ", sets.Select(x => x.Name))})");
                sets = sets.Where(x => wanted.Contains(x.Name)).ToList();
            }
            var ms = OptionValues.Numbers(r.GetValue(multipliers)!, "--multipliers");
            var sweepMode = ParseMode(r.GetValue(mode)!);
            var o = Directory.CreateDirectory(r.GetValue(outDir)!).FullName;
            var tok = m.LoadTokenizer(r);
            using var model = m.LoadModel(r);
            var console = Console(r);
            var vectorDir = r.GetValue(vectors) ?? DefaultInputs.EnsureVectors(model, tok, modelFolder, Path.Combine(o, "vectors"), console);
            var layerList = ParseLayers(r.GetValue(layers)!, model.Config.NumHiddenLayers);
            var manifest = new RunManifest("eval sweep", o).Option("model", model.Source).Option("layers", string.Join(",", layerList))
                .Option("multipliers", Join(ms)).Option("mode", sweepMode).Option("batch_size", r.GetValue(batch));
            var behaviors = new List<SweepBehavior>();
            foreach (var (name, path) in sets)
            {
                manifest.Input("dataset", path);
                var vf = VectorFiles.Resolve(vectorDir, name);
                manifest.Input("vectors", vf);
                behaviors.Add(new SweepBehavior(name, AbPrompt.FromItems(tok, AbDataset.Load(path)), VectorFiles.Read(vf, layerList, model.Config)));
            }
            var options = new SweepOptions { Layers = layerList, Multipliers = ms, Mode = sweepMode, BatchSize = r.GetValue(batch) };
            var csv = Path.Combine(o, "sweep.csv");
            CheckResumeKey(o, model, sets, vectorDir);
            IReadOnlyList<SweepRow> rows = [];
            var skipped = 0;
            RunWithProgress(console, "sweep", behaviors.Count * layerList.Count, report =>
                rows = LayerSweep.Run(model, behaviors, options, csv, new SyncProgress<SweepProgress>(p =>
                {
                    if (p.Skipped) skipped++;
                    report(p.CellsDone);
                })));
            var means = SweepSummary.Means(rows.Where(x => behaviors.Any(b => b.Name == x.Behavior) && layerList.Contains(x.Layer) && ms.Contains(x.Multiplier)));
            AtomicFile.WriteAllText(Path.Combine(o, "summary.csv"), SweepSummary.ToCsv(means));
            var best = new JsonObject();
            foreach (var b in behaviors) best[b.Name] = SweepSummary.BestLayer(rows, b.Name);
            manifest.Result("best_layer", best).Result("cells_resumed", skipped).Write();
            if (skipped > 0) console.MarkupLine($"[grey]{skipped} cell(s) read back from an earlier run[/]");
            var table = new Table().AddColumn("behavior").AddColumn("best layer").AddColumn("mean p at -1 / 0 / +1 there");
            foreach (var b in behaviors)
            {
                var l = SweepSummary.BestLayer(rows, b.Name);
                var at = l is null ? "" : string.Join(" / ", means.Where(x => x.Behavior == b.Name && x.Layer == l).Select(x => x.MeanPMatch.ToString("F3", CultureInfo.InvariantCulture)));
                table.AddRow(Markup.Escape(b.Name), l?.ToString(CultureInfo.InvariantCulture) ?? "-", at);
            }
            console.Write(table);
            console.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/]");
        });
        return cmd;
    }

    static Command Capability()
    {
        var m = new ModelOptions();
        var dataset = new Option<string?>("--dataset") { Description = "MMLU- or TruthfulQA-style A/B items (answer_matching_behavior = the correct letter). Default: the model's datasets/test/mmlu/mmlu.json." };
        var vectors = VectorsOption(" Omit for unsteered.");
        var behavior = new Option<string?>("--behavior") { Description = "Which vector file in a --vectors folder." };
        var layer = new Option<int?>("--layer") { Description = "Layer to steer at (with --vectors)." };
        var multipliers = new Option<string?>("--multipliers") { Description = "Comma-separated multipliers (with --vectors). Default: -1,0,1." };
        var batch = BatchOption();
        var outDir = OutOption();
        var cmd = new Command("capability", "Mean p(correct letter) on capability items, unsteered and under steering. Writes capability.csv (multiplier,item,p_correct) and manifest.json.")
            { dataset, vectors, behavior, layer, multipliers, batch, outDir };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var datasetPath = r.GetValue(dataset) is { } given ? RequireFile(given, "--dataset") : DefaultInputs.File(m.ResolveFolder(r), "--dataset", "test", "mmlu", "mmlu.json");
            var vectorName = r.GetValue(behavior);
            if (r.GetValue(vectors) is { } vp && Directory.Exists(vp) && vectorName is null) throw new CliException("--vectors is a folder: name the vector file with --behavior");
            var (layerValue, vector, ms) = SteeringArgs(r, vectors, layer, multipliers, vectorName ?? "", m.ResolveFolder(r));
            var o = Directory.CreateDirectory(r.GetValue(outDir)!).FullName;
            var tok = m.LoadTokenizer(r);
            using var model = m.LoadModel(r);
            var prompts = AbPrompt.FromItems(tok, AbDataset.Load(datasetPath));
            var manifest = new RunManifest("eval capability", o).Option("model", model.Source).Option("layer", vector is null ? null : layerValue)
                .Option("multipliers", Join(ms)).Option("batch_size", r.GetValue(batch)).Input("dataset", datasetPath);
            if (r.GetValue(vectors) is { } v2) manifest.Input("vectors", VectorFiles.Resolve(v2, vectorName ?? ""));
            var console = Console(r);
            IReadOnlyList<CapabilityResult> results = [];
            RunWithProgress(console, "capability", ms.Count * prompts.Count, report =>
                results = CapabilityEvaluation.Evaluate(model, prompts, vector is null ? null : layerValue, vector, ms, r.GetValue(batch), new SyncProgress<int>(report)));
            var sb = new StringBuilder("multiplier,item,p_correct\n");
            foreach (var res in results)
                for (var i = 0; i < res.PCorrect.Count; i++)
                    sb.Append(res.Multiplier.ToString("R", CultureInfo.InvariantCulture)).Append(',').Append(i).Append(',')
                      .Append(res.PCorrect[i].ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            AtomicFile.WriteAllText(Path.Combine(o, "capability.csv"), sb.ToString());
            var means = new JsonObject();
            foreach (var res in results) means[res.Multiplier.ToString("R", CultureInfo.InvariantCulture)] = res.MeanPCorrect;
            manifest.Result("mean_p_correct", means).Write();
            var table = new Table().AddColumn("multiplier").AddColumn("mean p(correct)");
            foreach (var res in results) table.AddRow(res.Multiplier.ToString("R", CultureInfo.InvariantCulture), res.MeanPCorrect.ToString("F4", CultureInfo.InvariantCulture));
            console.Write(table);
        });
        return cmd;
    }

    // ---------------- helpers ----------------

    /// <summary>
    /// Resuming is only sound with the same model weights, datasets and vectors: sweep.inputs.json records them (SHA-256) the first
    /// time; a later run into the same folder with different inputs is refused. Layers and multipliers may change (cells are keyed by them).
    /// </summary>
    static void CheckResumeKey(string outDir, LlamaForCausalLM model, List<(string Name, string Path)> sets, string vectorDir)
    {
        var key = new JsonObject
        {
            ["model"] = model.Source,
            ["architecture"] = model.Config.ArchitectureHash,
            ["weights_sha256"] = Directory.Exists(model.Source)
                ? new JsonArray(Directory.EnumerateFiles(model.Source, "*.safetensors").Order(StringComparer.Ordinal).Select(f => (JsonNode)AtomicFile.Sha256(f)).ToArray())
                : null,
            ["behaviors"] = new JsonObject(sets.Select(x => new KeyValuePair<string, JsonNode?>(x.Name, new JsonObject
            {
                ["dataset_sha256"] = AtomicFile.Sha256(x.Path),
                ["vectors_sha256"] = AtomicFile.Sha256(VectorFiles.Resolve(vectorDir, x.Name)),
            }))),
        };
        var path = Path.Combine(outDir, "sweep.inputs.json");
        var text = key.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        if (File.Exists(path))
        {
            var old = JsonNode.Parse(File.ReadAllText(path));
            var oldBehaviors = old?["behaviors"]?.AsObject();
            var sameModel = JsonNode.DeepEquals(old?["weights_sha256"], key["weights_sha256"]) && old?["architecture"]?.GetValue<string>() == model.Config.ArchitectureHash;
            var clash = sets.Where(x => oldBehaviors?[x.Name] is { } b && !JsonNode.DeepEquals(b, key["behaviors"]![x.Name])).Select(x => x.Name).ToList();
            if (!sameModel || clash.Count > 0)
                throw new CliException($"{outDir} holds a sweep of other inputs ({(sameModel ? "datasets/vectors of " + string.Join(", ", clash) : "another model")} changed); " +
                    "use another --out or delete its sweep.csv and sweep.inputs.json");
            // merge in behaviors new to this folder
            foreach (var (name, node) in key["behaviors"]!.AsObject().ToList())
                if (oldBehaviors is not null && !oldBehaviors.ContainsKey(name)) oldBehaviors[name] = node?.DeepClone();
            text = old!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        }
        AtomicFile.WriteAllText(path, text);
    }

    /// <summary>--layer/--multipliers with or without --vectors: (layer, vector or null, multipliers; [0] when unsteered).</summary>
    static (int Layer, Tensor? Vector, IReadOnlyList<double> Multipliers) SteeringArgs(ParseResult r, Option<string?> vectors, Option<int?> layer,
        Option<string?> multipliers, string behavior, string modelFolder)
    {
        var vp = r.GetValue(vectors);
        if (vp is null)
        {
            if (r.GetValue(layer) is not null || r.GetValue(multipliers) is not null) throw new CliException("--layer and --multipliers need --vectors");
            return (-1, null, [0.0]);
        }
        var l = r.GetValue(layer) ?? throw new CliException("--vectors needs --layer");
        var ms = OptionValues.Numbers(r.GetValue(multipliers) ?? "-1,0,1", "--multipliers");
        // The model isn't loaded yet: check the vector against its config.json so that bad input fails before the load.
        var config = LlamaConfig.Load(modelFolder);
        return (l, VectorFiles.Read(VectorFiles.Resolve(vp, behavior), [l], config)[l], ms);
    }

    /// <summary>(behavior, file) pairs from a dataset file or folder.</summary>
    internal static List<(string Name, string Path)> Datasets(string path)
    {
        if (File.Exists(path)) return [(BehaviorName(path), Path.GetFullPath(path))];
        if (!Directory.Exists(path)) throw new CliException($"--dataset {path}: not found");
        var found = new List<(string, string)>();
        foreach (var d in Directory.EnumerateDirectories(path).Order(StringComparer.Ordinal))
        {
            var f = Path.Combine(d, "test_dataset_ab.json");
            if (File.Exists(f)) found.Add((Path.GetFileName(d), Path.GetFullPath(f)));
        }
        foreach (var f in Directory.EnumerateFiles(path, "*.json").Order(StringComparer.Ordinal))
            found.Add((Path.GetFileNameWithoutExtension(f), Path.GetFullPath(f)));
        if (found.Count == 0) throw new CliException($"--dataset {path}: no <behavior>.json or <behavior>/test_dataset_ab.json inside");
        if (found.Select(x => x.Item1).Distinct().Count() != found.Count) throw new CliException($"--dataset {path}: a behavior appears twice");
        return found;
    }

    static string BehaviorName(string file)
    {
        var full = Path.GetFullPath(file);
        return Path.GetFileName(full) == "test_dataset_ab.json" ? Path.GetFileName(Path.GetDirectoryName(full)!) : Path.GetFileNameWithoutExtension(full);
    }

    static string RequireFile(string path, string option) => File.Exists(path) ? Path.GetFullPath(path) : throw new CliException($"{option} {path}: file not found");

    internal static SweepMode ParseMode(string s) => s.ToLowerInvariant() switch
    {
        "efficient" => SweepMode.Efficient,
        "reference" => SweepMode.Reference,
        "batched" => SweepMode.Batched,
        _ => throw new CliException($"--mode {s}: expected efficient, reference or batched"),
    };

    internal static List<int> ParseLayers(string s, int layers)
    {
        if (s.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return Enumerable.Range(0, layers).ToList();
        List<int> list;
        try { list = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToList(); }
        catch (FormatException) { throw new CliException($"--layers: expected 'all' or comma-separated integers, got '{s}'"); }
        if (list.Count == 0) throw new CliException("--layers: none given");
        foreach (var l in list) if (l < 0 || l >= layers) throw new CliException($"--layers: {l} is outside 0…{layers - 1}");
        if (list.Distinct().Count() != list.Count) throw new CliException("--layers: a layer is listed twice");
        return list;
    }

    static string Join(IEnumerable<double> xs) => string.Join(",", xs.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>A Spectre console writing to the command's output (the terminal, or a test's writer).</summary>
    internal static IAnsiConsole Console(ParseResult r) =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(r.InvocationConfiguration.Output) });

    /// <summary>Runs <paramref name="work"/> under a progress bar of <paramref name="total"/> steps; work reports steps done.</summary>
    internal static void RunWithProgress(IAnsiConsole console, string label, int total, Action<Action<int>> work)
    {
        console.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: Math.Max(1, total));
                work(done => task.Value = done);
                task.Value = task.MaxValue;
            });
    }
}

/// <summary>An IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
