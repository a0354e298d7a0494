using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Interpret.Analysis;
using Caa.Interpret.Datasets;
using Caa.Interpret.Evaluation;
using Caa.Interpret.OpenEnded;
using Caa.Interpret.Vectors;
using Caa.Model.IO;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Caa.Organism;
using Spectre.Console;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa reproduce</c>: the paper's experiments end to end on one model — vectors for every behavior, normalization, the
/// layer sweep, the multiplier curve at the best layer, PCA separation and cosine similarity, open-ended steering with a
/// judge, capabilities under steering and the system-prompt comparison — into one folder with CSVs and a summary.md.
/// Every step writes its files atomically and is skipped when they exist, so an interrupted run resumes.
/// </summary>
public static class ReproduceCommand
{
    static readonly double[] SweepMultipliers = [-1, 0, 1];
    static readonly double[] CurveMultipliers = [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2];
    static readonly double[] OpenEndedMultipliers = [-2, -1, 0, 1, 2];
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var m = new ModelOptions();
        var datasets = new Option<string?>("--datasets") { Description = "Folder in the paper's layout (generate/<b>/generate_dataset.json, test/<b>/test_dataset_ab.json, …). Default: the model folder's datasets/." };
        var output = new Option<string>("--out") { Description = "Results folder.", DefaultValueFactory = _ => Path.Combine("artifacts", "results") };
        var openEndedItems = new Option<int>("--open-ended-items") { Description = "Open-ended questions per behavior.", DefaultValueFactory = _ => 10 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens per open-ended answer.", DefaultValueFactory = _ => 40 };
        var judge = new Option<string>("--judge") { Description = "Judge for open-ended answers: organism (offline, the organism's markers), openai (with CAA_JUDGE_* settings) or none.", DefaultValueFactory = _ => "organism" };
        var cmd = new Command("reproduce", "Run the paper's experiments end to end (resumable) and write CSVs + summary.md.") { datasets, output, openEndedItems, maxNew, judge };
        m.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var modelDir = m.ResolveFolder(r);
            var data = r.GetValue(datasets) ?? Path.Combine(modelDir, "datasets");
            if (!Directory.Exists(Path.Combine(data, "generate"))) throw new CliException($"--datasets {data}: no generate/ folder (expected the paper's layout)");
            var outDir = Path.GetFullPath(r.GetValue(output)!);
            Directory.CreateDirectory(outDir);
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(r.InvocationConfiguration.Output) });
            var manifest = new RunManifest("reproduce", outDir).Option("model", modelDir).Option("datasets", data).Option("dtype", r.GetValue(m.DType));
            var tok = Llama2Tokenizer.Load(modelDir);
            using var model = m.LoadModel(r);
            var run = new Run(model, tok, data, outDir, console, r.GetValue(openEndedItems), r.GetValue(maxNew), r.GetValue(judge)!);
            run.All();
            manifest.Input("datasets", data).Result("best_layer", run.BestLayer).Write();
            console.MarkupLine($"[green]done[/]: {Markup.Escape(Path.Combine(outDir, "summary.md"))}");
        });
        return cmd;
    }

    sealed class Run(LlamaForCausalLM model, Llama2Tokenizer tok, string data, string outDir, IAnsiConsole console, int openEndedItems, int maxNew, string judgeName)
    {
        readonly int _layers = model.Config.NumHiddenLayers;
        readonly List<string> _behaviors = Directory.EnumerateDirectories(Path.Combine(data, "generate")).Select(Path.GetFileName).OfType<string>()
            .Where(b => File.Exists(Path.Combine(data, "test", b, "test_dataset_ab.json"))).Order(StringComparer.Ordinal).ToList();
        readonly StringBuilder _summary = new();
        Dictionary<string, SteeringVectorSet> _vectors = new();
        public int BestLayer { get; private set; } = -1;

        string Out(params string[] parts) => Path.Combine([outDir, .. parts]);

        /// <summary>The header and separator of a summary table with one column per layer.</summary>
        string LayerHeader(string firstColumn) =>
            $"| {firstColumn} | " + string.Join(" | ", Enumerable.Range(0, _layers)) + " |" + Environment.NewLine + "|---|" + string.Concat(Enumerable.Repeat("---|", _layers));

        void Step(string title, string doneFile, Action compute)
        {
            if (File.Exists(doneFile)) { console.MarkupLine($"[grey]{Markup.Escape(title)}: already done ({Markup.Escape(Path.GetRelativePath(outDir, doneFile))})[/]"); return; }
            var sw = System.Diagnostics.Stopwatch.StartNew();
            console.MarkupLine($"[bold]{Markup.Escape(title)}[/] …");
            compute();
            console.MarkupLine($"  {Markup.Escape(title)}: {sw.Elapsed.TotalSeconds:F1} s");
        }

        public void All()
        {
            if (_behaviors.Count == 0) throw new CliException($"{data}: no behavior has both generate/<b>/generate_dataset.json and test/<b>/test_dataset_ab.json");
            _summary.AppendLine($"# CAA reproduction on `{model.Source}`").AppendLine()
                .AppendLine($"{_layers} layers, hidden {model.Config.HiddenSize}, dtype {model.DType}; behaviors: {string.Join(", ", _behaviors)}. Produced by `caa reproduce`.").AppendLine();
            Vectors();
            Sweep();
            Curve();
            PcaAndCosine();
            OpenEnded();
            Capabilities();
            Prompting();
            AtomicFile.WriteAllText(Out("summary.md"), _summary.ToString());
        }

        IReadOnlyList<AbItem> Test(string b) => AbDataset.Load(Path.Combine(data, "test", b, "test_dataset_ab.json"));

        void Vectors()
        {
            foreach (var b in _behaviors)
                Step($"vectors {b}", SteeringVectorSet.FileIn(Out("vectors", "raw"), b), () =>
                {
                    var file = Path.Combine(data, "generate", b, "generate_dataset.json");
                    using var result = VectorExtractor.Extract(model, tok, b, AbDataset.Load(file),
                        new ExtractionOptions { KeepActivations = true, DatasetSha256 = AtomicFile.Sha256(file) });
                    result.Activations!.Save(Out("vectors", "activations"));
                    result.Vectors.Save(Out("vectors", "raw"));
                });
            Step("normalize vectors across behaviors", SteeringVectorSet.FileIn(Out("vectors", "normalized"), _behaviors[^1]), () =>
            {
                var raw = _behaviors.Select(b => SteeringVectorSet.Load(SteeringVectorSet.FileIn(Out("vectors", "raw"), b), model)).ToList();
                foreach (var n in VectorNormalization.AcrossBehaviors(raw)) n.Save(Out("vectors", "normalized"));
            });
            _vectors = _behaviors.ToDictionary(b => b, b => SteeringVectorSet.Load(SteeringVectorSet.FileIn(Out("vectors", "normalized"), b), model));
            _summary.AppendLine("## Steering vectors (normalized across behaviors)").AppendLine()
                .AppendLine("| behavior | items | ‖v‖ first layer | ‖v‖ middle | ‖v‖ last |").AppendLine("|---|---|---|---|---|");
            foreach (var (b, v) in _vectors)
                _summary.AppendLine($"| {b} | {v.Metadata.Items} | {v.Norm(0):F3} | {v.Norm(_layers / 2):F3} | {v.Norm(_layers - 1):F3} |");
            _summary.AppendLine();
        }

        SweepBehavior SweepInput(string b, string? system = null) =>
            new(b, AbPrompt.FromItems(tok, Test(b), system), Enumerable.Range(0, _layers).ToDictionary(l => l, l => _vectors[b][l]));

        void Sweep()
        {
            var csv = Out("sweep", "sweep.csv");
            Step("layer sweep (all layers × −1, 0, +1)", Out("sweep", "summary.csv"), () =>
            {
                Directory.CreateDirectory(Out("sweep"));
                LayerSweep.Run(model, _behaviors.Select(b => SweepInput(b)).ToList(), new SweepOptions { Layers = Enumerable.Range(0, _layers).ToArray(), Multipliers = SweepMultipliers }, csv);
                AtomicFile.WriteAllText(Out("sweep", "summary.csv"), SweepSummary.ToCsv(SweepSummary.Means(SweepCsv.Read(csv))));
            });
            var means = SweepSummary.Means(SweepCsv.Read(csv));
            double Mean(string b, int l, double mult) => means.Single(x => x.Behavior == b && x.Layer == l && x.Multiplier == mult).MeanPMatch;
            var effect = Enumerable.Range(0, _layers).Select(l => _behaviors.Average(b => Mean(b, l, 1) - Mean(b, l, -1))).ToArray();
            BestLayer = Array.IndexOf(effect, effect.Max());
            _summary.AppendLine("## Layer sweep (A/B test split)").AppendLine()
                .AppendLine("Mean over behaviors of p(match) at +1 minus at −1, per layer (the best layer maximizes it):").AppendLine()
                .AppendLine(LayerHeader("layer"))
                .AppendLine("| p(+1) − p(−1) | " + string.Join(" | ", effect.Select(e => e.ToString("F3", Inv))) + " |").AppendLine()
                .AppendLine($"**Best layer: {BestLayer}** of 0…{_layers - 1}.").AppendLine()
                .AppendLine($"| behavior | p(−1) | p(0) | p(+1) | best layer of this behavior |").AppendLine("|---|---|---|---|---|");
            foreach (var b in _behaviors)
                _summary.AppendLine($"| {b} | {Mean(b, BestLayer, -1):F3} | {Mean(b, BestLayer, 0):F3} | {Mean(b, BestLayer, 1):F3} | {SweepSummary.BestLayer(SweepCsv.Read(csv), b)} |");
            _summary.AppendLine();
        }

        void Curve()
        {
            var csv = Out("multipliers", "sweep.csv");
            Step($"multiplier curve at layer {BestLayer} (−2 … +2)", Out("multipliers", "summary.csv"), () =>
            {
                Directory.CreateDirectory(Out("multipliers"));
                LayerSweep.Run(model, _behaviors.Select(b => SweepInput(b)).ToList(), new SweepOptions { Layers = [BestLayer], Multipliers = CurveMultipliers }, csv);
                AtomicFile.WriteAllText(Out("multipliers", "summary.csv"), SweepSummary.ToCsv(SweepSummary.Means(SweepCsv.Read(csv))));
            });
            var means = SweepSummary.Means(SweepCsv.Read(csv));
            _summary.AppendLine($"## Multiplier curve at layer {BestLayer}").AppendLine()
                .AppendLine("| behavior | " + string.Join(" | ", CurveMultipliers.Select(x => x.ToString("+0.0;−0.0;0", Inv))) + " | monotone |")
                .AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", CurveMultipliers.Length + 1)));
            foreach (var b in _behaviors)
            {
                var ps = CurveMultipliers.Select(x => means.Single(s => s.Behavior == b && s.Multiplier == x).MeanPMatch).ToArray();
                var monotone = ps.Zip(ps.Skip(1)).All(p => p.Second >= p.First);
                _summary.AppendLine($"| {b} | {string.Join(" | ", ps.Select(p => p.ToString("F3", Inv)))} | {(monotone ? "yes" : "no")} |");
            }
            _summary.AppendLine();
        }

        void PcaAndCosine()
        {
            Step("PCA separation and cosine similarity", Out("analysis", "cosine_behaviors.csv"), () =>
            {
                var sep = new StringBuilder("behavior,layer,label,silhouette,between_total_ratio\n");
                foreach (var b in _behaviors)
                {
                    using var acts = ItemActivations.Load(ItemActivations.FileIn(Out("vectors", "activations"), b));
                    using var labeled = acts.ToLabeled();
                    var match = labeled.Labels.Single(l => l.Name == "behavior_match").Values;
                    var letter = labeled.Labels.Single(l => l.Name == "letter").Values;
                    foreach (var (layer, x) in labeled.Layers)
                    {
                        var pca = Pca.Fit(x);
                        foreach (var (name, values) in new[] { ("behavior_match", match), ("letter", letter) })
                        {
                            var s = Separation.Score(pca, name, values);
                            sep.Append(Inv, $"{b},{layer},{name},{s.Silhouette:R},{s.BetweenTotalRatio:R}\n");
                        }
                    }
                }
                AtomicFile.WriteAllText(Out("analysis", "pca_separation.csv"), sep.ToString());
                var layersCsv = new StringBuilder("behavior,a,b,cosine\n");
                foreach (var b in _behaviors)
                {
                    var cm = Cosine.AcrossLayers(Enumerable.Range(0, _layers).ToDictionary(l => l, l => _vectors[b][l]));
                    for (var i = 0; i < _layers; i++) for (var j = 0; j < _layers; j++) layersCsv.Append(Inv, $"{b},{i},{j},{cm.Values[i, j]:R}\n");
                }
                AtomicFile.WriteAllText(Out("analysis", "cosine_layers.csv"), layersCsv.ToString());
                var behaviorsCsv = new StringBuilder("layer,a,b,cosine\n");
                for (var l = 0; l < _layers; l++)
                {
                    var cm = Cosine.AcrossBehaviors(_behaviors.Select(b => new KeyValuePair<string, Tensor>(b, _vectors[b][l])));
                    for (var i = 0; i < _behaviors.Count; i++) for (var j = 0; j < _behaviors.Count; j++)
                        behaviorsCsv.Append(Inv, $"{l},{_behaviors[i]},{_behaviors[j]},{cm.Values[i, j]:R}\n");
                }
                AtomicFile.WriteAllText(Out("analysis", "cosine_behaviors.csv"), behaviorsCsv.ToString());
            });
            var rows = File.ReadLines(Out("analysis", "pca_separation.csv")).Skip(1).Select(l => l.Split(','))
                .Select(f => (Behavior: f[0], Layer: int.Parse(f[1], Inv), Label: f[2], Silhouette: double.Parse(f[3], Inv))).ToList();
            _summary.AppendLine("## PCA of answer-token activations").AppendLine()
                .AppendLine($"Silhouette of the 2-D projection by label (clusters present at ≥ {Separation.ClusteredSilhouette}), mean over behaviors:").AppendLine()
                .AppendLine(LayerHeader("label"));
            foreach (var label in new[] { "letter", "behavior_match" })
                _summary.AppendLine($"| {label} | " + string.Join(" | ", Enumerable.Range(0, _layers).Select(l => rows.Where(x => x.Label == label && x.Layer == l).Average(x => x.Silhouette).ToString("F2", Inv))) + " |");
            var adjacent = File.ReadLines(Out("analysis", "cosine_layers.csv")).Skip(1).Select(l => l.Split(','))
                .Where(f => int.Parse(f[2], Inv) == int.Parse(f[1], Inv) + 1).Average(f => double.Parse(f[3], Inv));
            _summary.AppendLine().AppendLine($"Cosine similarity of vectors at adjacent layers, mean over behaviors and layers: {adjacent:F3}.").AppendLine();
            // A mean |cosine| near 1 means the behaviors' vectors share one direction (analysis/cosine_behaviors.csv has the matrices).
            var pairs = File.ReadLines(Out("analysis", "cosine_behaviors.csv")).Skip(1).Select(l => l.Split(','))
                .Where(f => string.CompareOrdinal(f[1], f[2]) < 0)
                .Select(f => (Layer: int.Parse(f[0], Inv), Abs: Math.Abs(double.Parse(f[3], Inv)))).ToList();
            _summary.AppendLine("Cosine similarity between behaviors' vectors, mean |cosine| over pairs of behaviors:").AppendLine()
                .AppendLine(LayerHeader("layer"))
                .AppendLine("| mean \\|cos\\| | " + string.Join(" | ", Enumerable.Range(0, _layers).Select(l => pairs.Where(x => x.Layer == l).Average(x => x.Abs).ToString("F2", Inv))) + " |").AppendLine();
        }

        void OpenEnded()
        {
            var file = Out("open_ended", "scores.csv");
            Step($"open-ended steering at layer {BestLayer} ({openEndedItems} questions × {OpenEndedMultipliers.Length} multipliers per behavior)", file, () =>
            {
                var rows = new List<OpenEndedResult>();
                foreach (var b in _behaviors)
                {
                    var path = Path.Combine(data, "test", b, "test_dataset_open_ended.json");
                    if (!File.Exists(path)) continue;
                    var questions = AbDataset.LoadOpenEnded(path).Take(openEndedItems).Select(q => q.Question).ToList();
                    rows.AddRange(OpenEndedGeneration.Generate(model, tok, b, BestLayer, _vectors[b][BestLayer], questions, OpenEndedMultipliers,
                        new OpenEndedOptions { MaxNewTokens = maxNew }));
                }
                OpenEndedCsv.Write(Out("open_ended", "open_ended.csv"), rows);
                if (judgeName == "none") { OpenEndedCsv.WriteScored(file, rows.Select(x => new ScoredResult(x, null, "")).ToList()); return; }
                var judge = JudgeRegistry.Create(judgeName, new JudgeSettings());
                var report = OpenEndedScoring.ScoreAsync(judge, rows).GetAwaiter().GetResult();
                OpenEndedCsv.WriteMeans(Out("open_ended", "score_means.csv"), report.Means);
                OpenEndedCsv.WriteScored(file, report.Rows);
            });
            if (!File.Exists(Out("open_ended", "score_means.csv"))) return;
            var means = Csv.Read(Out("open_ended", "score_means.csv"), "behavior", "multiplier", "mean_score")
                .Select(f => (Behavior: f["behavior"], Multiplier: double.Parse(f["multiplier"], Inv), Mean: double.TryParse(f["mean_score"], NumberStyles.Float, Inv, out var v) ? v : double.NaN)).ToList();
            _summary.AppendLine($"## Open-ended steering at layer {BestLayer} (judge: {judgeName})").AppendLine()
                .AppendLine("| behavior | " + string.Join(" | ", OpenEndedMultipliers.Select(x => x.ToString("+0;−0;0", Inv))) + " | rises |")
                .AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", OpenEndedMultipliers.Length + 1)));
            foreach (var b in means.Select(x => x.Behavior).Distinct())
            {
                var s = OpenEndedMultipliers.Select(x => means.Single(y => y.Behavior == b && y.Multiplier == x).Mean).ToArray();
                _summary.AppendLine($"| {b} | {string.Join(" | ", s.Select(v => v.ToString("F2", Inv)))} | {(s[^1] > s[0] && s.Zip(s.Skip(1)).All(p => p.Second >= p.First) ? "yes" : "no")} |");
            }
            _summary.AppendLine("Answers (with the question) are in open_ended/open_ended.csv.").AppendLine();
        }

        void Capabilities()
        {
            var sets = new[] { ("mmlu", Path.Combine(data, "test", "mmlu", "mmlu.json")), ("truthfulqa", Path.Combine(data, "test", "truthfulqa", "truthful_qa.json")) }
                .Where(s => File.Exists(s.Item2)).ToList();
            if (sets.Count == 0) return;
            var file = Out("capability", "capability.csv");
            Step($"capabilities under steering at layer {BestLayer}", file, () =>
            {
                var csv = new StringBuilder("dataset,behavior,multiplier,mean_p_correct\n");
                foreach (var (name, path) in sets)
                {
                    var prompts = AbPrompt.FromItems(tok, AbDataset.Load(path));
                    foreach (var b in _behaviors)
                        foreach (var res in CapabilityEvaluation.Evaluate(model, prompts, BestLayer, _vectors[b][BestLayer], SweepMultipliers))
                            csv.Append(Inv, $"{name},{b},{res.Multiplier:R},{res.MeanPCorrect:R}\n");
                }
                AtomicFile.WriteAllText(file, csv.ToString());
            });
            var rows = File.ReadLines(file).Skip(1).Select(l => l.Split(',')).Select(f => (Set: f[0], Behavior: f[1], Mult: double.Parse(f[2], Inv), P: double.Parse(f[3], Inv))).ToList();
            _summary.AppendLine($"## Capabilities under steering at layer {BestLayer} (mean p(correct))").AppendLine()
                .AppendLine("| dataset | vector | −1 | 0 | +1 |").AppendLine("|---|---|---|---|---|");
            foreach (var g in rows.GroupBy(x => (x.Set, x.Behavior)))
                _summary.AppendLine($"| {g.Key.Set} | {g.Key.Behavior} | {string.Join(" | ", SweepMultipliers.Select(m => g.Single(x => x.Mult == m).P.ToString("F3", Inv)))} |");
            _summary.AppendLine();
        }

        void Prompting()
        {
            var known = OrganismBehaviors.Ids.ToHashSet();
            var behaviors = _behaviors.Where(known.Contains).ToList();
            if (behaviors.Count == 0) return; // the behavioral system prompts are the organism's; a real model would need the paper's
            var file = Out("prompting", "prompting.csv");
            Step($"system prompts vs CAA at layer {BestLayer}", file, () =>
            {
                var csv = new StringBuilder("behavior,system,multiplier,mean_p_match\n");
                foreach (var b in behaviors)
                    foreach (var (label, system) in new[] { ("none", (string?)null), ("positive", OrganismBehaviors.SystemPrompt(b, true)), ("negative", OrganismBehaviors.SystemPrompt(b, false)) })
                    {
                        var prompts = AbPrompt.FromItems(tok, Test(b), system);
                        foreach (var mult in SweepMultipliers)
                        {
                            var steering = mult == 0 ? null : Steering.At(BestLayer, _vectors[b][BestLayer], mult);
                            csv.Append(Inv, $"{b},{label},{mult:R},{AbEvaluation.Evaluate(model, prompts, steering).Mean:R}\n");
                        }
                    }
                AtomicFile.WriteAllText(file, csv.ToString());
            });
            var rows = File.ReadLines(file).Skip(1).Select(l => l.Split(',')).Select(f => (B: f[0], S: f[1], M: double.Parse(f[2], Inv), P: double.Parse(f[3], Inv))).ToList();
            _summary.AppendLine($"## System prompts and CAA (layer {BestLayer}, mean p(match))").AppendLine()
                .AppendLine("| behavior | system prompt | −1 | 0 | +1 |").AppendLine("|---|---|---|---|---|");
            foreach (var g in rows.GroupBy(x => (x.B, x.S)))
                _summary.AppendLine($"| {g.Key.B} | {g.Key.S} | {string.Join(" | ", SweepMultipliers.Select(m => g.Single(x => x.M == m).P.ToString("F3", Inv)))} |");
            _summary.AppendLine();
        }
    }
}
