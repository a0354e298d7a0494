using System.Text.RegularExpressions;
using Caa.Figures;
using Caa.Interpret.Analysis;
using Caa.Model.Runtime;
using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace Caa.Tests.Notebooks;

/// <summary>
/// Exported figures open in a real browser (headless Chromium, network blocked): the plot draws its traces and the screenshot
/// is not blank. Covers the standalone HTML (<see cref="Figures.Figures.SaveHtml"/>) and the notebook output
/// (<see cref="Figures.Figures.NotebookHtml"/>), including a page with an AMD loader as Jupyter has.
/// </summary>
public sealed class FigureRenderingTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("caa-figures-").FullName;

    public FigureRenderingTests() => TorchRuntime.Initialize();

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    static Plotly.NET.GenericChart Scatter()
    {
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 40, 6 }, generator: new TorchSharp.torch.Generator(3));
        x[.., 0] += tensor(Enumerable.Range(0, 40).Select(i => i % 2 == 0 ? 4f : -4f).ToArray());
        var letter = new StringDataFrameColumn("letter", Enumerable.Range(0, 40).Select(i => i % 2 == 0 ? "A" : "B"));
        return Figures.Figures.PcaScatter(Pca.Fit(x, 2), letter);
    }

    static int Count(string text, string pattern) => Regex.Count(text, pattern);

    void AssertDrawn(string html, string name)
    {
        var dom = Chromium.DumpDom(html);
        Assert.True(Count(dom, "class=\"plot-container plotly\"") == 1, $"{name}: no plotly plot in the DOM");
        Assert.True(Count(dom, "class=\"scatterlayer") >= 1, $"{name}: no scatter layer in the DOM");
        Assert.True(Count(dom, "class=\"trace scatter") == 2, $"{name}: expected 2 scatter traces (letter A and B)");
        Assert.True(Count(dom, "class=\"point\"") >= 40, $"{name}: expected the 40 markers");
        var (nonWhite, colored, variance) = Chromium.Inspect(Chromium.Screenshot(html, Path.Combine(_dir, name + ".png")));
        Assert.True(nonWhite > 0.05, $"{name}: screenshot is nearly blank ({nonWhite:P1} non-white pixels)");
        Assert.True(colored > 300, $"{name}: screenshot has only {colored} coloured pixels (the traces did not draw)");
        Assert.True(variance > 50, $"{name}: screenshot luminance variance {variance:F1}");
    }

    [ChromiumFact]
    public void StandaloneFigureDrawsOffline()
    {
        var html = Path.Combine(_dir, "scatter.html");
        Figures.Figures.SaveHtml(Scatter(), html);
        AssertDrawn(html, "standalone");
    }

    [ChromiumFact]
    public void NotebookOutputDrawsWithItsInlinedPlotlyJsAlsoUnderAnAmdLoader()
    {
        var fragment = Figures.Figures.NotebookHtml(Scatter(), inlinePlotlyJs: true);
        var plain = Path.Combine(_dir, "notebook.html");
        File.WriteAllText(plain, $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>{fragment}</body></html>");
        AssertDrawn(plain, "notebook-output");
        // Jupyter pages have require.js: plotly.js must still set window.Plotly instead of registering an anonymous module.
        var amd = Path.Combine(_dir, "notebook-amd.html");
        File.WriteAllText(amd, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><script>window.define = function () { window.amdDefined = true; }; window.define.amd = {};</script></head>" +
                               $"<body>{fragment}</body></html>");
        AssertDrawn(amd, "notebook-output-amd");
    }

    [ChromiumFact]
    public void BlankPageIsDetectedAsBlank()
    {
        // The checks above can fail: a page whose figure never draws (plotly.js neither inlined nor reachable) shows nothing.
        var html = Path.Combine(_dir, "no-plotly.html");
        File.WriteAllText(html, $"<!DOCTYPE html><html><body>{Figures.Figures.NotebookHtml(Scatter(), inlinePlotlyJs: false)}</body></html>");
        Assert.Equal(0, Count(Chromium.DumpDom(html), "class=\"trace scatter"));
        var (nonWhite, colored, _) = Chromium.Inspect(Chromium.Screenshot(html, Path.Combine(_dir, "blank.png")));
        Assert.True(nonWhite < 0.01 && colored < 300, $"a blank page measured {nonWhite:P1} non-white, {colored} coloured pixels");
    }
}
