using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Interpret.Analysis;
using Microsoft.Data.Analysis;
using static Caa.Figures.Figures;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa analyze pca</c> and <c>caa analyze cosine</c>: the paper's interpretability figures from saved activations
/// and vectors (formats: <see cref="AnalysisFiles"/>). Every output folder gets CSV tables, standalone HTML figures
/// (plotly.js embedded, viewable offline) and manifest.json.
/// </summary>
public static class AnalyzeCommands
{
    public static Command Create()
    {
        var cmd = new Command("analyze", "PCA of answer-token activations and cosine similarity of steering vectors (CSV + offline HTML figures).");
        cmd.Subcommands.Add(PcaCommand());
        cmd.Subcommands.Add(CosineCommand());
        return cmd;
    }

    static Command PcaCommand()
    {
        var activations = new Option<string>("--activations")
        {
            Description = "safetensors file: blocks.{L}.hook_resid_post [N,H] per layer and labels.{name} [N] (BOOL/U8/I32/I64; "
                + "metadata \"labels.{name}\": \"A,B\" names the values). See Caa.Interpret.Analysis.AnalysisFiles.",
            Required = true,
        };
        var outDir = new Option<string>("--out") { Description = "Output folder.", Required = true };
        var components = new Option<int>("--components") { Description = "Principal components per layer (2 or 3).", DefaultValueFactory = _ => 2 };
        var layers = new Option<string?>("--layers") { Description = "Comma-separated layers (default: all in the file)." };
        var noHtml = new Option<bool>("--no-html") { Description = "Write only the CSV tables." };
        var cmd = new Command("pca", "PCA per layer → pca.csv, variance.csv, separation.csv, pca_<label>.html (layer slider).") { activations, outDir, components, layers, noHtml };
        cmd.SetAction(r =>
        {
            var input = r.GetValue(activations)!;
            var dir = r.GetValue(outDir)!;
            var k = r.GetValue(components);
            if (k is < 2 or > 3) throw new CliException($"--components must be 2 or 3; got {k}");
            if (!File.Exists(input)) throw new FileNotFoundException($"--activations: {input} does not exist");
            var wanted = r.GetValue(layers) is { } ls ? ParseInts(ls, "--layers") : null;
            Directory.CreateDirectory(dir);
            var manifest = new RunManifest("analyze pca", dir).Option("components", k).Option("layers", r.GetValue(layers)).Input("activations", input);
            var o = r.InvocationConfiguration.Output;

            using var data = AnalysisFiles.ReadActivations(input, wanted);
            var labels = data.LabelColumns();
            var n = data.Layers.First().Value.shape[0];
            o.WriteLine($"{data.Layers.Count} layers, {n} items, H = {data.Layers.First().Value.shape[1]}, labels: {(labels.Length == 0 ? "none" : string.Join(", ", labels.Select(l => l.Name)))}");
            var pca = Pca.PerLayer(data.Layers, k);
            var table = Pca.ToDataFrame(pca, labels);
            SaveCsv(table, Path.Combine(dir, "pca.csv"));
            SaveCsv(VarianceTable(pca), Path.Combine(dir, "variance.csv"));
            var separation = Separation.PerLayer(pca, labels);
            SaveCsv(separation, Path.Combine(dir, "separation.csv"));

            var figures = new JsonArray();
            if (!r.GetValue(noHtml))
            {
                var colorBy = labels.Length > 0 ? labels.Select(l => l.Name).ToArray() : ["all"];
                if (labels.Length == 0) table.Columns.Add(new StringDataFrameColumn("all", Enumerable.Repeat("items", (int)table.Rows.Count)));
                foreach (var label in colorBy)
                {
                    var file = $"pca_{Safe(label)}.html";
                    SaveHtml(PcaLayerSlider(table, label, separation, "PCA of answer-token activations"), Path.Combine(dir, file), pageTitle: $"PCA by {label}");
                    figures.Add(file);
                }
            }

            // Summary: where each label's clusters are present (silhouette ≥ threshold), per layer.
            var summary = new JsonObject();
            foreach (var label in labels.Select(l => l.Name))
            {
                var rows = Enumerable.Range(0, (int)separation.Rows.Count).Where(i => (string)separation["label"][i] == label)
                    .Select(i => (Layer: (int)separation["layer"][i], Sil: (double)separation["silhouette"][i], Ratio: (double)separation["between_total_ratio"][i])).ToList();
                var clustered = rows.Where(x => x.Sil >= Separation.ClusteredSilhouette).Select(x => x.Layer).ToList();
                var from = rows.Select(x => x.Layer).Where(l => rows.Where(x => x.Layer >= l).All(x => x.Sil >= Separation.ClusteredSilhouette)).Cast<int?>().FirstOrDefault();
                o.WriteLine($"{label}: silhouette ≥ {Separation.ClusteredSilhouette} at {clustered.Count}/{rows.Count} layers" + (from is { } f ? $", every layer from {f} on" : "")
                    + $"; by layer: {string.Join(" ", rows.Select(x => $"{x.Layer}:{x.Sil.ToString("F2", CultureInfo.InvariantCulture)}"))}");
                summary[label] = new JsonObject
                {
                    ["clustered_layers"] = new JsonArray(clustered.Select(l => (JsonNode)l).ToArray()),
                    ["clustered_from_layer"] = from,
                    ["silhouette_by_layer"] = new JsonObject(rows.Select(x => KeyValuePair.Create(x.Layer.ToString(CultureInfo.InvariantCulture), (JsonNode?)JsonValue.Create(Round(x.Sil))))),
                };
            }
            manifest.Result("items", n).Result("layers", new JsonArray(data.Layers.Keys.Select(l => (JsonNode)l).ToArray()))
                .Result("separation", summary).Result("figures", figures).Write();
            o.WriteLine($"wrote {dir}");
        });
        return cmd;
    }

    static Command CosineCommand()
    {
        var vectors = new Option<string>("--vectors") { Description = "Folder of <behavior>.safetensors files with blocks.{L}.hook_resid_post [H] per layer.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output folder.", Required = true };
        var layers = new Option<string?>("--layers") { Description = "Comma-separated layers for the across-behavior comparison (default: every layer all behaviors have)." };
        var noHtml = new Option<bool>("--no-html") { Description = "Write only the CSV tables." };
        var cmd = new Command("cosine", "Cosine similarity of steering vectors → cosine_layers.csv, cosine_behaviors.csv, heatmap HTMLs.") { vectors, outDir, layers, noHtml };
        cmd.SetAction(r =>
        {
            var input = r.GetValue(vectors)!;
            var dir = r.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            var manifest = new RunManifest("analyze cosine", dir).Option("layers", r.GetValue(layers)).Input("vectors", input);
            var o = r.InvocationConfiguration.Output;
            var html = !r.GetValue(noHtml);
            var all = AnalysisFiles.ReadVectorFolder(input);
            try
            {
                // Across layers, per behavior.
                var behaviorCol = new StringDataFrameColumn("behavior");
                var la = new Int32DataFrameColumn("a"); var lb = new Int32DataFrameColumn("b"); var lc = new DoubleDataFrameColumn("cosine");
                var figures = new JsonArray();
                var adjacent = new JsonObject();
                foreach (var (behavior, byLayer) in all)
                {
                    var m = Cosine.AcrossLayers(byLayer);
                    var df = m.ToDataFrame();
                    for (long i = 0; i < df.Rows.Count; i++) { behaviorCol.Append(behavior); la.Append((int)df["a"][i]); lb.Append((int)df["b"][i]); lc.Append((double)df["cosine"][i]); }
                    var adj = Enumerable.Range(0, m.Keys.Count - 1).Select(i => m.Values[i, i + 1]).ToArray();
                    adjacent[behavior] = adj.Length == 0 ? null : Round(adj.Average());
                    o.WriteLine($"{behavior}: {m.Keys.Count} layers; mean cosine of adjacent layers {(adj.Length == 0 ? "n/a" : adj.Average().ToString("F3", CultureInfo.InvariantCulture))}");
                    if (html)
                    {
                        var file = $"cosine_layers_{Safe(behavior)}.html";
                        SaveHtml(CosineHeatmap(m, $"Cosine similarity of {behavior} vectors across layers", "layer"), Path.Combine(dir, file), pageTitle: file);
                        figures.Add(file);
                    }
                }
                SaveCsv(new DataFrame(behaviorCol, la, lb, lc), Path.Combine(dir, "cosine_layers.csv"));

                // Across behaviors, per layer.
                var common = all.Values.Select(v => v.Keys).Aggregate((IEnumerable<int>)all.Values.First().Keys, (acc, ks) => acc.Intersect(ks)).Order().ToList();
                if (r.GetValue(layers) is { } ls)
                {
                    var wanted = ParseInts(ls, "--layers");
                    var missing = wanted.Except(common).ToList();
                    if (missing.Count > 0) throw new CliException($"--layers: not every behavior has a vector at layer(s) {string.Join(",", missing)}; common layers: {string.Join(",", common)}");
                    common = wanted.ToList();
                }
                var layerCol = new Int32DataFrameColumn("layer");
                var ba = new StringDataFrameColumn("a"); var bb = new StringDataFrameColumn("b"); var bc = new DoubleDataFrameColumn("cosine");
                var frames = new List<(string, string, Plotly.NET.GenericChart)>();
                foreach (var layer in common)
                {
                    var m = Cosine.AcrossBehaviors(all.Select(kv => KeyValuePair.Create(kv.Key, kv.Value[layer])));
                    var df = m.ToDataFrame();
                    for (long i = 0; i < df.Rows.Count; i++) { layerCol.Append(layer); ba.Append((string)df["a"][i]); bb.Append((string)df["b"][i]); bc.Append((double)df["cosine"][i]); }
                    if (html && all.Count > 1) frames.Add((layer.ToString(CultureInfo.InvariantCulture), $"Cosine similarity between behaviors — layer {layer}", CosineHeatmap(m, null, "behavior")));
                }
                SaveCsv(new DataFrame(layerCol, ba, bb, bc), Path.Combine(dir, "cosine_behaviors.csv"));
                if (frames.Count > 0)
                {
                    SaveHtml(Slider(frames, "layer "), Path.Combine(dir, "cosine_behaviors.html"), pageTitle: "cosine between behaviors");
                    figures.Add("cosine_behaviors.html");
                }
                o.WriteLine($"{all.Count} behaviors; across-behavior comparison at {common.Count} layers");
                manifest.Result("behaviors", new JsonArray(all.Keys.Select(b => (JsonNode)b).ToArray()))
                    .Result("common_layers", new JsonArray(common.Select(l => (JsonNode)l).ToArray()))
                    .Result("mean_adjacent_layer_cosine", adjacent).Result("figures", figures).Write();
                o.WriteLine($"wrote {dir}");
            }
            finally
            {
                foreach (var t in all.Values.SelectMany(v => v.Values)) t.Dispose();
            }
        });
        return cmd;
    }

    static DataFrame VarianceTable(IReadOnlyDictionary<int, PcaResult> pca)
    {
        var layer = new Int32DataFrameColumn("layer"); var comp = new StringDataFrameColumn("component");
        var ratio = new DoubleDataFrameColumn("explained_variance_ratio"); var variance = new DoubleDataFrameColumn("explained_variance");
        foreach (var (l, r) in pca)
            for (var c = 0; c < r.Count; c++) { layer.Append(l); comp.Append($"pc{c + 1}"); ratio.Append(r.ExplainedVarianceRatio[c]); variance.Append(r.ExplainedVariance[c]); }
        return new DataFrame(layer, comp, ratio, variance);
    }

    /// <summary>CSV with invariant culture (decimal points), written atomically.</summary>
    internal static void SaveCsv(DataFrame df, string path) =>
        Caa.Model.IO.AtomicFile.Write(path, s => DataFrame.SaveCsv(df, s, cultureInfo: CultureInfo.InvariantCulture));

    static double Round(double v) => double.IsFinite(v) ? Math.Round(v, 4) : v;

    static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));

    static int[] ParseInts(string s, string option)
    {
        try { return s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException) { throw new CliException($"{option}: expected comma-separated integers, got '{s}'"); }
    }
}
