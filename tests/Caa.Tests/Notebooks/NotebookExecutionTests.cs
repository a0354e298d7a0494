using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Cli;
using Caa.Cli.Common;
using Caa.Figures;
using Caa.Interpret.Evaluation;
using Caa.Interpret.Vectors;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Notebooks;

/// <summary>
/// Runs every notebook once, headless, as the README's main command does (<c>caa notebooks</c>, dotnet-repl), with its output in
/// a temporary folder; the tests below read that one run. Several minutes on the 2-core CI machine.
/// </summary>
public sealed class NotebookRunFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("caa-notebooks-").FullName;
    public string SettingsFile { get; }
    public int ExitCode { get; }
    public string Output { get; }
    public string Error { get; }
    public NotebookSettings Settings { get; }
    public IReadOnlyList<string> Notebooks { get; } = Directory.EnumerateFiles(Path.Combine(Shared.RepoRoot, "notebooks"), "??-*.ipynb").Order(StringComparer.Ordinal).ToList();

    public NotebookRunFixture()
    {
        // The shipped settings with the output redirected: same model, same everything else.
        var settings = JsonNode.Parse(File.ReadAllText(Path.Combine(Shared.RepoRoot, "notebooks", "settings.json")))!.AsObject();
        settings["output"] = Path.Combine(Root, "out");
        SettingsFile = Path.Combine(Root, "settings.json");
        File.WriteAllText(SettingsFile, settings.ToJsonString());
        var o = new StringWriter(); var e = new StringWriter();
        ExitCode = CaaCommand.Run(["notebooks", "--settings", SettingsFile, "--plain"], o, e);
        (Output, Error) = (o.ToString(), e.ToString());
        Settings = NotebookSettings.Load(SettingsFile);
    }

    public string Executed(string notebook) => Path.Combine(Settings.Output, Path.GetFileName(notebook));

    public void Dispose() { try { Directory.Delete(Root, true); } catch (IOException) { } }
}

public sealed class NotebookExecutionTests(NotebookRunFixture run) : IClassFixture<NotebookRunFixture>
{
    string Log => $"exit {run.ExitCode}\nstdout:\n{run.Output}\nstderr:\n{run.Error}";

    [Fact]
    public void EveryNotebookRunsWithoutACellError()
    {
        Assert.True(run.Notebooks.Count >= 7, $"expected notebooks 00…06, found {run.Notebooks.Count}");
        Assert.True(run.ExitCode == 0, Log);
        foreach (var nb in run.Notebooks)
        {
            var executed = run.Executed(nb);
            Assert.True(File.Exists(executed), $"{executed} missing\n{Log}");
            Assert.Null(NotebookReport.FirstError(executed));
            // Every code cell of the source is in the executed copy, and every one that is not pure setup shows something.
            var cells = NotebookReport.Cells(executed).Where(c => (string?)c?["cell_type"] == "code").ToList();
            Assert.Equal(NotebookReport.CodeCells(nb), cells.Count);
            var silent = cells.Skip(1).Count(c => (c?["outputs"] as JsonArray ?? []).Count == 0);
            Assert.True(silent <= 1, $"{Path.GetFileName(nb)}: {silent} code cells produced no output");
        }
    }

    [Fact]
    public void ReportHoldsEveryFigureWithPlotlyJsOnce()
    {
        Assert.True(run.ExitCode == 0, Log);
        var report = File.ReadAllText(Path.Combine(run.Settings.Output, "report.html"));
        var figures = run.Notebooks.Sum(nb => NotebookReport.FigureCount(run.Executed(nb)));
        Assert.True(figures >= 15, $"only {figures} figures in the executed notebooks");
        Assert.Equal(figures, report.Split("class=\"caa-figure\"").Length - 1);
        Assert.Equal(1, report.Split(Figures.Figures.PlotlyJs).Length - 1);
        foreach (var nb in run.Notebooks)
            Assert.Contains(Path.GetFileNameWithoutExtension(nb), report);
        // Each figure also exists as a standalone offline page.
        var pages = Directory.GetFiles(Path.Combine(run.Settings.Output, "figures"), "*.html");
        Assert.True(pages.Length >= figures, $"{pages.Length} standalone figures for {figures} figures in the notebooks");
        Assert.All(pages, p => Assert.True(new FileInfo(p).Length > Figures.Figures.PlotlyJs.Length, $"{p} does not inline plotly.js"));
    }

    [ChromiumFact]
    public void ReportDrawsEveryFigureInChromium()
    {
        Assert.True(run.ExitCode == 0, Log);
        var report = Path.Combine(run.Settings.Output, "report.html");
        var figures = run.Notebooks.Sum(nb => NotebookReport.FigureCount(run.Executed(nb)));
        var dom = Chromium.DumpDom(report);
        Assert.Equal(figures, dom.Split("class=\"plot-container plotly\"").Length - 1);
    }

    [Fact]
    public void SavedResultsAreReusedByLaterNotebooks()
    {
        Assert.True(run.ExitCode == 0, Log);
        var results = run.Settings.ResultsFolder;
        var behaviors = run.Settings.BehaviorIds();
        foreach (var b in behaviors)
        {
            Assert.True(File.Exists(SteeringVectorSet.FileIn(Path.Combine(results, "vectors", "normalized"), b)), $"normalized vectors of {b}");
            Assert.True(File.Exists(ItemActivations.FileIn(Path.Combine(results, "vectors", "activations"), b)), $"activations of {b}");
        }
        foreach (var f in new[] { "multipliers/summary.csv", "analysis/pca_separation.csv", "analysis/transfer.csv", "open_ended/open_ended.csv", "capability/capability.csv", "prompting/prompting.csv" })
            Assert.True(File.Exists(Path.Combine(results, f)), f);
        // 03 loads 02's vectors instead of extracting: its outputs name no extraction, and 02 recorded one timing per behavior.
        Assert.Equal(behaviors.Count, File.ReadLines(Path.Combine(results, "vectors", "extraction_seconds.csv")).Count() - 1);
    }

    [Fact]
    public void SweepTableExistsAndNamesItsBestLayer()
    {
        Assert.True(run.ExitCode == 0, Log);
        var (rows, n, best) = Sweep();
        var means = SweepSummary.Means(rows);
        Assert.Equal(run.Settings.BehaviorIds().Count * n * 3, means.Count);                   // every behavior × layer × {−1, 0, +1}
        Assert.Equal(means.Count, File.ReadLines(Path.Combine(run.Settings.ResultsFolder, "sweep", "summary.csv")).Count() - 1);
        Assert.Equal(SweepSummary.BestLayerAcrossBehaviors(rows), best);
        Assert.InRange(best, 0, n - 1);
    }

    /// <summary>
    /// Issue 4's acceptance criterion, on the notebooks' own sweep of the committed organism (data/organism/README.md: best layer 2
    /// of 0…5 with `caa reproduce`).
    /// </summary>
    [Fact]
    public void BestSteeringLayerIsInTheMiddleOfTheNetwork()
    {
        Assert.True(run.ExitCode == 0, Log);
        var (rows, n, best) = Sweep();
        // The paper: layer 13 of 32 (7B), 14–15 of 40 (13B). A model with CAA-steerable dispositions should not peak in the
        // first or the last quarter of its layers.
        Assert.True(best >= n / 4.0 && best < n * 3 / 4.0,
            $"best steering layer {best} of 0…{n - 1} is in the first or last quarter (effect by layer: {string.Join(", ", SweepSummary.SteeringEffectByLayer(rows).Select(e => $"{e.Key}: {e.Value:G3}"))})");
    }

    (IReadOnlyList<SweepRow> Rows, int Layers, int Best) Sweep()
    {
        var results = run.Settings.ResultsFolder;
        var layers = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, "sweep", "best_layer.json"))).RootElement;
        return (SweepCsv.Read(Path.Combine(results, "sweep", "sweep.csv")), layers.GetProperty("layers").GetInt32(), layers.GetProperty("best_layer").GetInt32());
    }
}
