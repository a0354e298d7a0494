using System.Globalization;
using System.Reflection;
using System.Text;
using Caa.Interpret.Analysis;
using Microsoft.Data.Analysis;
using Plotly.NET;
using Chart = Plotly.NET.CSharp.Chart;

namespace Caa.Figures;

/// <summary>One point of a steering sweep: A/B p(match) for a behavior with its vector added at a layer with a multiplier.</summary>
public readonly record struct SweepPoint(string Behavior, int Layer, double Multiplier, double PMatch);

/// <summary>
/// Plotly.NET figure builders for the paper's analyses, and <see cref="SaveHtml"/>, which writes a standalone
/// HTML file with plotly.js inlined (viewable offline). Every builder returns a <see cref="GenericChart"/>, so a
/// notebook can display it or style it further.
/// </summary>
public static partial class Figures
{
    /// <summary>The plotly.js version embedded in this assembly (matches Plotly.NET 6.0.0's figure JSON).</summary>
    public const string PlotlyJsVersion = "2.28.0";

    /// <summary>The CDN URL used when <c>embedPlotlyJs</c> is false.</summary>
    public static string PlotlyJsCdnUrl => $"https://cdn.plot.ly/plotly-{PlotlyJsVersion}.min.js";

    /// <summary>Plotly's default qualitative palette (D3 category10), so a group keeps its colour across layers.</summary>
    static readonly string[] Palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    // ---------------------------------------------------------------- PCA

    /// <summary>
    /// Scatter of <paramref name="xColumn"/> vs <paramref name="yColumn"/> (default pc1/pc2) from a PCA table
    /// (<see cref="PcaResult.ToDataFrame"/>), one trace per value of <paramref name="colorBy"/> (e.g. behavior_match, letter).
    /// </summary>
    public static GenericChart PcaScatter(DataFrame pca, string colorBy, string? title = null, string xColumn = "pc1", string yColumn = "pc2")
    {
        var x = Doubles(pca, xColumn);
        var y = Doubles(pca, yColumn);
        var g = Strings(pca, colorBy);
        var items = pca.Columns.IndexOf("item") >= 0 ? Strings(pca, "item") : Enumerable.Range(0, x.Length).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var groups = Distinct(g);
        var traces = groups.Select((grp, gi) =>
        {
            var idx = Enumerable.Range(0, x.Length).Where(i => g[i] == grp).ToArray();
            return Chart.Point<double, double, string>(idx.Select(i => x[i]), idx.Select(i => y[i]),
                Name: $"{colorBy}={grp}", MultiText: idx.Select(i => "item " + items[i]).ToArray(), MarkerColor: Color.fromHex(Palette[gi % Palette.Length]));
        });
        return WithLayout(Chart.Combine(traces), new()
        {
            ["title"] = Title(title ?? $"PCA coloured by {colorBy}"),
            ["xaxis"] = Axis(xColumn), ["yaxis"] = Axis(yColumn),
            ["legend"] = new Dictionary<string, object> { ["title"] = Title(colorBy) },
        });
    }

    /// <summary>Scatter of one <see cref="PcaResult"/> (pc1 vs pc2) coloured by <paramref name="labels"/>; the title shows the explained-variance ratios.</summary>
    public static GenericChart PcaScatter(PcaResult pca, DataFrameColumn labels, string? title = null)
    {
        var ev = string.Join(", ", pca.ExplainedVarianceRatio.Take(2).Select((r, i) => $"pc{i + 1} {r:P1}"));
        return PcaScatter(pca.ToDataFrame(labels), labels.Name, title ?? $"PCA coloured by {labels.Name} ({ev} of variance)");
    }

    /// <summary>
    /// One figure for all layers of a per-layer PCA table (<see cref="Pca.ToDataFrame(IReadOnlyDictionary{int, PcaResult}, DataFrameColumn[])"/>,
    /// with a <c>layer</c> column) and a slider that selects the layer. Optional <paramref name="separation"/>
    /// (<see cref="Separation.PerLayer"/>) adds each layer's silhouette for <paramref name="colorBy"/> to the title.
    /// </summary>
    public static GenericChart PcaLayerSlider(DataFrame pcaPerLayer, string colorBy, DataFrame? separation = null, string? title = null)
    {
        var layers = Ints(pcaPerLayer, "layer");
        var x = Doubles(pcaPerLayer, "pc1");
        var y = Doubles(pcaPerLayer, "pc2");
        var g = Strings(pcaPerLayer, colorBy);
        var items = Strings(pcaPerLayer, "item");
        var groups = Distinct(g);
        var layerList = layers.Distinct().Order().ToArray();
        var sil = new Dictionary<int, double>();
        if (separation is not null)
        {
            var sl = Ints(separation, "layer"); var sn = Strings(separation, "label"); var sv = Doubles(separation, "silhouette");
            for (var i = 0; i < sl.Length; i++) if (sn[i] == colorBy) sil[sl[i]] = sv[i];
        }
        string TitleOf(int layer) => (title ?? $"PCA coloured by {colorBy}") + $" — layer {layer}" + (sil.TryGetValue(layer, out var s) ? $" (silhouette {s:F2})" : "");

        var traces = new List<GenericChart>();
        var traceLayer = new List<int>();
        foreach (var layer in layerList)
            for (var gi = 0; gi < groups.Length; gi++)
            {
                var idx = Enumerable.Range(0, x.Length).Where(i => layers[i] == layer && g[i] == groups[gi]).ToArray();
                var c = Chart.Point<double, double, string>(idx.Select(i => x[i]), idx.Select(i => y[i]),
                    Name: $"{colorBy}={groups[gi]}", MultiText: idx.Select(i => "item " + items[i]).ToArray(), MarkerColor: Color.fromHex(Palette[gi % Palette.Length]));
                traces.Add(c);
                traceLayer.Add(layer);
            }
        var chart = Chart.Combine(traces);
        var all = GenericChart.getTraces(chart).ToList();
        for (var i = 0; i < all.Count; i++) all[i].SetProperty("visible", traceLayer[i] == layerList[0]);
        var steps = layerList.Select(layer => (object)new Dictionary<string, object>
        {
            ["label"] = layer.ToString(CultureInfo.InvariantCulture),
            ["method"] = "update",
            ["args"] = new object[]
            {
                new Dictionary<string, object> { ["visible"] = traceLayer.Select(l => l == layer).ToArray() },
                new Dictionary<string, object> { ["title"] = Title(TitleOf(layer)) },
            },
        }).ToArray();
        return WithLayout(chart, new()
        {
            ["title"] = Title(TitleOf(layerList[0])),
            ["xaxis"] = Axis("pc1"), ["yaxis"] = Axis("pc2"),
            ["legend"] = new Dictionary<string, object> { ["title"] = Title(colorBy) },
            ["sliders"] = new object[] { new Dictionary<string, object> { ["active"] = 0, ["currentvalue"] = new Dictionary<string, object> { ["prefix"] = "layer " }, ["steps"] = steps } },
        });
    }

    // ---------------------------------------------------------------- cosine

    /// <summary>Heatmap of a cosine matrix (diverging colour scale fixed to [−1, 1]).</summary>
    public static GenericChart CosineHeatmap<TKey>(CosineMatrix<TKey> matrix, string? title = null, string? axisTitle = null) where TKey : notnull =>
        CosineHeatmap(matrix.Values, matrix.Keys.Select(k => Convert.ToString(k, CultureInfo.InvariantCulture) ?? "").ToArray(), title, axisTitle);

    /// <summary>Heatmap of a square matrix <paramref name="values"/> with row/column <paramref name="labels"/>.</summary>
    public static GenericChart CosineHeatmap(double[,] values, IReadOnlyList<string> labels, string? title = null, string? axisTitle = null)
    {
        var k = values.GetLength(0);
        if (values.GetLength(1) != k || labels.Count != k) throw new ArgumentException($"expected a square matrix with {labels.Count} labels; got [{k}, {values.GetLength(1)}]");
        var rows = Enumerable.Range(0, k).Select(i => Enumerable.Range(0, k).Select(j => values[i, j]).ToArray()).ToArray();
        var chart = Chart.Heatmap<double, string, string, string>(rows, X: labels.ToArray(), Y: labels.ToArray(), ColorScale: StyleParam.Colorscale.RdBu, ReverseScale: true);
        foreach (var t in GenericChart.getTraces(chart)) { t.SetProperty("zmin", -1.0); t.SetProperty("zmax", 1.0); t.SetProperty("hovertemplate", "%{y} · %{x}: %{z:.3f}<extra></extra>"); }
        return WithLayout(chart, new()
        {
            ["title"] = Title(title ?? "Cosine similarity"),
            ["xaxis"] = new Dictionary<string, object> { ["title"] = Title(axisTitle ?? ""), ["type"] = "category" },
            ["yaxis"] = new Dictionary<string, object> { ["title"] = Title(axisTitle ?? ""), ["type"] = "category", ["autorange"] = "reversed" },
        });
    }

    /// <summary>Per-token cosine as bars in prompt order; tokens label the x axis (repeated tokens stay separate bars).</summary>
    public static GenericChart PerTokenBars(PerTokenCosine values, string? title = null)
    {
        var n = values.Tokens.Count;
        var pos = Enumerable.Range(0, n).ToArray();
        var chart = Chart.Column<double, int, string>(values.Values, Keys: pos, MultiText: values.Tokens.ToArray(), Name: "cosine");
        foreach (var t in GenericChart.getTraces(chart)) { t.SetProperty("textposition", "none"); t.SetProperty("hovertemplate", "%{x}: %{text} → %{y:.3f}<extra></extra>"); }
        return WithLayout(chart, new()
        {
            ["title"] = Title(title ?? "Per-token cosine similarity with the steering vector"),
            ["xaxis"] = new Dictionary<string, object> { ["title"] = Title("token"), ["tickmode"] = "array", ["tickvals"] = pos, ["ticktext"] = values.Tokens.ToArray(), ["tickangle"] = -60 },
            ["yaxis"] = Axis("cosine"),
        });
    }

    // ---------------------------------------------------------------- sweeps

    /// <summary>Rows of a sweep table with columns <c>behavior</c> (optional), <c>layer</c>, <c>multiplier</c>, <c>p_match</c>.</summary>
    public static IReadOnlyList<SweepPoint> SweepPoints(DataFrame table, string defaultBehavior = "")
    {
        var b = table.Columns.IndexOf("behavior") >= 0 ? Strings(table, "behavior") : Enumerable.Repeat(defaultBehavior, (int)table.Rows.Count).ToArray();
        var l = Ints(table, "layer"); var m = Doubles(table, "multiplier"); var p = Doubles(table, "p_match");
        return Enumerable.Range(0, l.Length).Select(i => new SweepPoint(b[i], l[i], m[i], p[i])).ToArray();
    }

    /// <summary>p(match) vs layer, one line per multiplier (per behavior × multiplier when several behaviors are given).</summary>
    public static GenericChart LayerSweep(IEnumerable<SweepPoint> points, string? title = null)
    {
        var list = points.ToList();
        var behaviors = list.Select(p => p.Behavior).Distinct().ToList();
        var lines = list.GroupBy(p => (p.Behavior, p.Multiplier)).OrderBy(g => behaviors.IndexOf(g.Key.Behavior)).ThenBy(g => g.Key.Multiplier).Select(g =>
        {
            var pts = g.OrderBy(p => p.Layer).ToArray();
            var name = (behaviors.Count > 1 ? g.Key.Behavior + " " : "") + $"×{g.Key.Multiplier.ToString("+0.##;-0.##;0", CultureInfo.InvariantCulture)}";
            return Chart.Line<int, double, string>(pts.Select(p => p.Layer), pts.Select(p => p.PMatch), ShowMarkers: true, Name: name);
        });
        return WithLayout(Chart.Combine(lines), new()
        {
            ["title"] = Title(title ?? "p(answer matching behavior) by steering layer"),
            ["xaxis"] = Axis("layer"), ["yaxis"] = Axis("p(match)", 0, 1),
        });
    }

    /// <summary>p(match) vs multiplier at one layer, one line per behavior.</summary>
    public static GenericChart MultiplierCurve(IEnumerable<SweepPoint> points, int layer, string? title = null)
    {
        var list = points.Where(p => p.Layer == layer).ToList();
        if (list.Count == 0) throw new ArgumentException($"no sweep points at layer {layer}", nameof(points));
        var lines = list.GroupBy(p => p.Behavior).Select(g =>
        {
            var pts = g.OrderBy(p => p.Multiplier).ToArray();
            return Chart.Line<double, double, string>(pts.Select(p => p.Multiplier), pts.Select(p => p.PMatch), ShowMarkers: true, Name: g.Key == "" ? "p(match)" : g.Key);
        });
        return WithLayout(Chart.Combine(lines), new()
        {
            ["title"] = Title(title ?? $"p(answer matching behavior) vs multiplier at layer {layer}"),
            ["xaxis"] = Axis("multiplier"), ["yaxis"] = Axis("p(match)", 0, 1),
        });
    }

    // ---------------------------------------------------------------- slider

    /// <summary>
    /// Several figures of the same kind (e.g. one heatmap per layer) as one figure with a slider; each step shows one
    /// figure's traces and title. Layout (axes, colour scales) is taken from the figures, merged in order.
    /// </summary>
    public static GenericChart Slider(IReadOnlyList<(string Label, string Title, GenericChart Chart)> frames, string prefix = "")
    {
        if (frames.Count == 0) throw new ArgumentException("no frames", nameof(frames));
        var owner = new List<int>();
        for (var f = 0; f < frames.Count; f++) owner.AddRange(Enumerable.Repeat(f, GenericChart.getTraces(frames[f].Chart).Count()));
        var chart = Chart.Combine(frames.Select(f => f.Chart));
        var traces = GenericChart.getTraces(chart).ToList();
        for (var i = 0; i < traces.Count; i++) traces[i].SetProperty("visible", owner[i] == 0);
        var steps = frames.Select((f, fi) => (object)new Dictionary<string, object>
        {
            ["label"] = f.Label,
            ["method"] = "update",
            ["args"] = new object[]
            {
                new Dictionary<string, object> { ["visible"] = owner.Select(o => o == fi).ToArray() },
                new Dictionary<string, object> { ["title"] = Title(f.Title) },
            },
        }).ToArray();
        return WithLayout(chart, new()
        {
            ["title"] = Title(frames[0].Title),
            ["sliders"] = new object[] { new Dictionary<string, object> { ["active"] = 0, ["currentvalue"] = new Dictionary<string, object> { ["prefix"] = prefix }, ["steps"] = steps } },
        });
    }

    // ---------------------------------------------------------------- HTML

    /// <summary>
    /// Writes <paramref name="chart"/> as a standalone HTML page. With <paramref name="embedPlotlyJs"/> (default) plotly.js
    /// v<see cref="PlotlyJsVersion"/> is inlined from this assembly, so the file opens offline; otherwise it is loaded from
    /// <see cref="PlotlyJsCdnUrl"/>. The folder is created if needed; the file is replaced atomically.
    /// </summary>
    public static void SaveHtml(GenericChart chart, string path, bool embedPlotlyJs = true, string? pageTitle = null)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        Caa.Model.IO.AtomicFile.WriteAllText(path, ToHtml(chart, embedPlotlyJs, pageTitle));
    }

    /// <summary>The HTML page <see cref="SaveHtml"/> writes.</summary>
    public static string ToHtml(GenericChart chart, bool embedPlotlyJs = true, string? pageTitle = null)
    {
        ArgumentNullException.ThrowIfNull(chart);
        // The figure JSON ({"data":[…],"layout":{…},"frames":[]}) goes inside a <script>: escape "</" so a string such
        // as a "</s>" token cannot close the element ("<\/" is the same string to JSON).
        var figure = GenericChart.toFigureJson(chart).Replace("</", "<\\/", StringComparison.Ordinal);
        var sb = new StringBuilder(embedPlotlyJs ? PlotlyJs.Length + figure.Length + 1024 : figure.Length + 1024);
        sb.Append("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>")
          .Append(System.Net.WebUtility.HtmlEncode(pageTitle ?? "CAA figure")).Append("</title>\n");
        if (embedPlotlyJs) sb.Append("<script type=\"text/javascript\">\n").Append(PlotlyJs).Append("\n</script>\n");
        else sb.Append("<script src=\"").Append(PlotlyJsCdnUrl).Append("\" charset=\"utf-8\"></script>\n");
        sb.Append("</head>\n<body style=\"margin:0\">\n<div id=\"caa-figure\" style=\"width:100%;height:95vh\"></div>\n<script type=\"text/javascript\">\n")
          .Append("var figure = ").Append(figure).Append(";\n")
          // The page sets the size (full width, 95% of the window) instead of Plotly.NET's default 600×600.
          .Append("Plotly.newPlot('caa-figure', figure.data, Object.assign({}, figure.layout, {width: undefined, height: undefined, autosize: true}), {responsive: true});\n</script>\n</body>\n</html>\n");
        return sb.ToString();
    }

    static readonly Lazy<string> PlotlyJsSource = new(() =>
    {
        using var s = typeof(Figures).Assembly.GetManifestResourceStream("Caa.Figures.plotly.min.js")
            ?? throw new InvalidOperationException("embedded resource Caa.Figures.plotly.min.js is missing from " + typeof(Figures).Assembly.FullName);
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    });

    /// <summary>The embedded plotly.min.js source.</summary>
    public static string PlotlyJs => PlotlyJsSource.Value;

    // ---------------------------------------------------------------- helpers

    static GenericChart WithLayout(GenericChart chart, Dictionary<string, object> props)
    {
        var layout = new Layout();
        foreach (var (k, v) in props) layout.SetProperty(k, v);
        return GenericChart.addLayout(layout, chart);
    }

    static Dictionary<string, object> Title(string text) => new() { ["text"] = text };

    static Dictionary<string, object> Axis(string title, double? min = null, double? max = null)
    {
        var d = new Dictionary<string, object> { ["title"] = Title(title) };
        if (min is not null && max is not null) d["range"] = new[] { min.Value, max.Value };
        return d;
    }

    static string[] Distinct(string[] values) => values.Distinct().Order(StringComparer.Ordinal).ToArray();

    static DataFrameColumn Column(DataFrame df, string name) =>
        df.Columns.IndexOf(name) >= 0 ? df.Columns[name] : throw new ArgumentException($"table has no column '{name}' (columns: {string.Join(", ", df.Columns.Select(c => c.Name))})");

    static double[] Doubles(DataFrame df, string name)
    {
        var c = Column(df, name);
        return Enumerable.Range(0, (int)c.Length).Select(i => c[i] is { } v ? Convert.ToDouble(v, CultureInfo.InvariantCulture) : double.NaN).ToArray();
    }

    static int[] Ints(DataFrame df, string name)
    {
        var c = Column(df, name);
        return Enumerable.Range(0, (int)c.Length).Select(i => Convert.ToInt32(c[i] ?? throw new ArgumentException($"column '{name}' has a missing value at row {i}"), CultureInfo.InvariantCulture)).ToArray();
    }

    static string[] Strings(DataFrame df, string name)
    {
        var c = Column(df, name);
        return Enumerable.Range(0, (int)c.Length).Select(i => c[i] switch
        {
            null => "null",
            bool b => b ? "true" : "false",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            var v => v.ToString() ?? "",
        }).ToArray();
    }
}
