using System.CommandLine;
using System.Text.Json.Nodes;
using Caa.Cli.Commands;
using Caa.Figures;
using Caa.Interpret.Analysis;
using Caa.Model.Runtime;
using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace Caa.Tests.Analysis;

public sealed class FiguresAndCliTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "caa-analysis-" + Guid.NewGuid().ToString("N"));

    public FiguresAndCliTests() { TorchRuntime.Initialize(); Directory.CreateDirectory(_dir); }

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    static void AssertStandalone(string html)
    {
        Assert.Contains("plotly.js v" + Figures.Figures.PlotlyJsVersion, html);
        Assert.Contains(Figures.Figures.PlotlyJs, html);
        // Outside the inlined library (whose source mentions cdn.plot.ly as a mapbox default) nothing refers to a CDN.
        var page = html.Replace(Figures.Figures.PlotlyJs, "", StringComparison.Ordinal);
        Assert.DoesNotContain("cdn.plot.ly", page);
        Assert.DoesNotContain("http", page);
        Assert.DoesNotContain("<script src=", html);
        Assert.True(html.Length > 3_000_000, "plotly.js (~3.6 MB) is inlined");
        Assert.Contains("Plotly.newPlot(", html);
    }

    [Fact]
    public void EmbeddedPlotlyJsIsTheVendoredFile()
    {
        var js = Figures.Figures.PlotlyJs;
        Assert.StartsWith("/**\n* plotly.js v2.28.0", js);
        var vendored = Path.Combine(Infrastructure.Shared.RepoRoot, "lib", "Caa.Figures", "assets", "plotly.min.js");
        Assert.Equal(new FileInfo(vendored).Length, System.Text.Encoding.UTF8.GetByteCount(js));
    }

    [Fact]
    public void EveryBuilderWritesStandaloneHtmlWithItsData()
    {
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 12, 5 }, generator: new TorchSharp.torch.Generator(7));
        var pca = Pca.Fit(x, 2);
        var letter = new StringDataFrameColumn("letter", Enumerable.Range(0, 12).Select(i => i % 2 == 0 ? "A" : "B"));
        var scatter = Figures.Figures.PcaScatter(pca, letter);
        var path = Path.Combine(_dir, "sub", "scatter.html");
        Figures.Figures.SaveHtml(scatter, path);
        var html = File.ReadAllText(path);
        AssertStandalone(html);
        Assert.Contains("letter=A", html);
        Assert.Contains("letter=B", html);
        // The trace data: the first item's pc1 appears as a JSON number.
        var fig = FigureJson(html);
        var xs = fig["data"]![0]!["x"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.Contains(pca.Projections[0, 0], xs);

        var per = Pca.PerLayer(new Dictionary<int, Tensor> { [0] = x, [1] = x * 2 + 1 }, 2);
        var table = Pca.ToDataFrame(per, letter);
        var slider = Figures.Figures.PcaLayerSlider(table, "letter", Separation.PerLayer(per, [letter]));
        var sfig = FigureJson(Figures.Figures.ToHtml(slider));
        Assert.Equal(4, sfig["data"]!.AsArray().Count);
        Assert.Equal(2, sfig["layout"]!["sliders"]![0]!["steps"]!.AsArray().Count);
        Assert.Equal(new[] { true, true, false, false }, sfig["data"]!.AsArray().Select(t => t!["visible"]!.GetValue<bool>()));

        var cos = Cosine.AcrossBehaviors([new("sycophancy", tensor(new[] { 1f, 0f })), new("refusal", tensor(new[] { 1f, 1f }))]);
        var heat = FigureJson(Figures.Figures.ToHtml(Figures.Figures.CosineHeatmap(cos, "behaviors")));
        Assert.Equal("heatmap", heat["data"]![0]!["type"]!.GetValue<string>());
        Assert.Equal(-1.0, heat["data"]![0]!["zmin"]!.GetValue<double>());
        Assert.Equal(Math.Sqrt(0.5), heat["data"]![0]!["z"]![0]![1]!.GetValue<double>(), 12);

        var tokens = Cosine.PerToken(tensor(new float[,] { { 1, 0 }, { 0, 1 } }), tensor(new[] { 1f, 0f }), ["<s>", "</s>"]);
        var barsHtml = Figures.Figures.ToHtml(Figures.Figures.PerTokenBars(tokens));
        Assert.DoesNotContain("\"</s>\"", barsHtml); // escaped inside the <script>
        var bars = FigureJson(barsHtml);
        Assert.Equal("</s>", bars["layout"]!["xaxis"]!["ticktext"]![1]!.GetValue<string>());

        var sweep = new List<SweepPoint>();
        foreach (var layer in new[] { 10, 13, 16 })
            foreach (var m in new[] { -1.0, 0, 1 }) sweep.Add(new("sycophancy", layer, m, 0.5 + 0.2 * m));
        var lines = FigureJson(Figures.Figures.ToHtml(Figures.Figures.LayerSweep(sweep)));
        Assert.Equal(3, lines["data"]!.AsArray().Count);
        Assert.Equal(new[] { 10, 13, 16 }, lines["data"]![2]!["x"]!.AsArray().Select(v => v!.GetValue<int>()));
        Assert.Equal(0.7, lines["data"]![2]!["y"]![0]!.GetValue<double>(), 12);
        var curve = FigureJson(Figures.Figures.ToHtml(Figures.Figures.MultiplierCurve(sweep, 13)));
        Assert.Equal(new[] { -1.0, 0, 1 }, curve["data"]![0]!["x"]!.AsArray().Select(v => v!.GetValue<double>()));
        var fromTable = Figures.Figures.SweepPoints(new DataFrame(new StringDataFrameColumn("behavior", ["a"]), new Int32DataFrameColumn("layer", [3]),
            new DoubleDataFrameColumn("multiplier", [1.0]), new DoubleDataFrameColumn("p_match", [0.9])));
        Assert.Equal(new SweepPoint("a", 3, 1, 0.9), fromTable[0]);

        var cdn = Figures.Figures.ToHtml(scatter, embedPlotlyJs: false);
        Assert.Contains(Figures.Figures.PlotlyJsCdnUrl, cdn);
        Assert.True(cdn.Length < 100_000);
    }

    static JsonNode FigureJson(string html)
    {
        const string start = "var figure = ";
        var i = html.IndexOf(start, StringComparison.Ordinal) + start.Length;
        var j = html.IndexOf(";\nPlotly.newPlot(", i, StringComparison.Ordinal);
        return JsonNode.Parse(html[i..j])!;
    }

    static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        var code = new RootCommand { AnalyzeCommands.Create() }.Parse(args).Invoke(new InvocationConfiguration { Output = TextWriter.Synchronized(o), Error = TextWriter.Synchronized(e), EnableDefaultExceptionHandler = false });
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void AnalyzePcaWritesTablesFiguresAndManifest()
    {
        // 3 layers, 40 items: the letter separates at every layer, behavior_match only from layer 2.
        using var scope = NewDisposeScope();
        const int n = 40, h = 16;
        var g = new TorchSharp.torch.Generator(3);
        var letterB = Enumerable.Range(0, n).Select(i => (long)(i % 2)).ToArray();
        var match = Enumerable.Range(0, n).Select(i => i / 2 % 2 == 0).ToArray();
        var dl = randn(new long[] { h }, generator: g); dl /= dl.norm();
        var dm = randn(new long[] { h }, generator: g); dm /= dm.norm();
        var l = tensor(letterB.Select(v => v == 1 ? 1f : -1f).ToArray()).unsqueeze(1);
        var mm = tensor(match.Select(v => v ? 1f : -1f).ToArray()).unsqueeze(1);
        var layers = new Dictionary<int, Tensor>();
        for (var layer = 0; layer < 3; layer++)
            layers[layer] = randn(new long[] { n, h }, generator: g) * 0.3f + l * dl * 3 + (layer == 2 ? mm * dm * 4 : zeros(1));
        var file = Path.Combine(_dir, "acts.safetensors");
        AnalysisFiles.WriteActivations(file, layers, [ActivationLabel.Of("behavior_match", match), new ActivationLabel("letter", letterB, ["A", "B"])]);

        var outDir = Path.Combine(_dir, "pca");
        var (code, output, err) = Cli("analyze", "pca", "--activations", file, "--out", outDir);
        Assert.True(code == 0, err + output);
        var csv = File.ReadAllLines(Path.Combine(outDir, "pca.csv"));
        Assert.Equal("layer,item,pc1,pc2,behavior_match,letter", csv[0]);
        Assert.Equal(1 + 3 * n, csv.Length);
        Assert.EndsWith(",True,A", csv[1]);
        var sep = DataFrame.LoadCsv(Path.Combine(outDir, "separation.csv"));
        double Sil(int layer, string label) => Enumerable.Range(0, (int)sep.Rows.Count)
            .Where(i => Convert.ToInt32(sep["layer"][i]) == layer && (string)sep["label"][i] == label).Select(i => Convert.ToDouble(sep["silhouette"][i])).Single();
        for (var layer = 0; layer < 3; layer++) Assert.True(Sil(layer, "letter") > Separation.ClusteredSilhouette, $"letter at {layer}: {Sil(layer, "letter")}");
        Assert.True(Sil(0, "behavior_match") < Separation.ClusteredSilhouette);
        Assert.True(Sil(2, "behavior_match") > Separation.ClusteredSilhouette, $"behavior at 2: {Sil(2, "behavior_match")}");
        Assert.True(File.Exists(Path.Combine(outDir, "variance.csv")));
        AssertStandalone(File.ReadAllText(Path.Combine(outDir, "pca_letter.html")));
        AssertStandalone(File.ReadAllText(Path.Combine(outDir, "pca_behavior_match.html")));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal("analyze pca", manifest["command"]!.GetValue<string>());
        Assert.Equal(2, manifest["results"]!["separation"]!["behavior_match"]!["clustered_from_layer"]!.GetValue<int>());
        Assert.Contains("behavior_match", output);

        // Errors are user errors.
        Assert.Throws<FileNotFoundException>(() => Cli("analyze", "pca", "--activations", Path.Combine(_dir, "none.safetensors"), "--out", outDir));
        Assert.Throws<InvalidDataException>(() => Cli("analyze", "pca", "--activations", file, "--out", outDir, "--layers", "7"));
    }

    [Fact]
    public void AnalyzeCosineWritesTablesFiguresAndManifest()
    {
        using var scope = NewDisposeScope();
        var vecDir = Path.Combine(_dir, "vectors");
        Directory.CreateDirectory(vecDir);
        var g = new TorchSharp.torch.Generator(5);
        foreach (var b in new[] { "sycophancy", "refusal" })
        {
            var v = Enumerable.Range(0, 4).ToDictionary(l => l, _ => randn(new long[] { 8 }, generator: g));
            Caa.Model.Checkpoints.SafeTensorsWriter.Write(Path.Combine(vecDir, b + ".safetensors"),
                v.Select(kv => KeyValuePair.Create(Caa.Model.Hooks.HookPoints.ResidPostOf(kv.Key), kv.Value)));
        }
        var outDir = Path.Combine(_dir, "cos");
        var (code, output, err) = Cli("analyze", "cosine", "--vectors", vecDir, "--out", outDir);
        Assert.True(code == 0, err + output);
        var layers = File.ReadAllLines(Path.Combine(outDir, "cosine_layers.csv"));
        Assert.Equal("behavior,a,b,cosine", layers[0]);
        Assert.Equal(1 + 2 * 16, layers.Length);
        Assert.StartsWith("refusal,0,0,1", layers[1]);
        var behaviors = File.ReadAllLines(Path.Combine(outDir, "cosine_behaviors.csv"));
        Assert.Equal("layer,a,b,cosine", behaviors[0]);
        Assert.Equal(1 + 4 * 4, behaviors.Length);
        AssertStandalone(File.ReadAllText(Path.Combine(outDir, "cosine_layers_sycophancy.html")));
        AssertStandalone(File.ReadAllText(Path.Combine(outDir, "cosine_behaviors.html")));
        Assert.True(File.Exists(Path.Combine(outDir, "manifest.json")));

        Assert.Throws<Caa.Cli.Common.CliException>(() => Cli("analyze", "cosine", "--vectors", vecDir, "--out", outDir, "--layers", "9"));
    }
}
