using System.Text.Json.Nodes;
using Caa.Cli;
using Caa.Cli.Common;
using Caa.Figures;
using Caa.Interpret.Evaluation;
using Caa.Tests.Infrastructure;
using Microsoft.Data.Analysis;

namespace Caa.Tests.Notebooks;

/// <summary>The pieces notebooks and <c>caa notebooks</c> are made of: tables, figure outputs, the report, cell errors, the best layer.</summary>
public sealed class NotebookOutputTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("caa-nbout-").FullName;

    public void Dispose() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    static Plotly.NET.GenericChart Chart() => Figures.Figures.Lines([new Series("p</s>", [0, 1, 2], [0.2, 0.5, 0.9])], "t", "layer", "p", 0, 1);

    [Fact]
    public void TableHtmlFormatsAndEncodes()
    {
        var html = Figures.Figures.TableHtml(new DataFrame(
            new StringDataFrameColumn("text", ["<b>&", "line1\nline2", null!]),
            new DoubleDataFrameColumn("x", [1.23456, double.NaN, 2]),
            new Int32DataFrameColumn("n", [1, 2, 3])), decimals: 2, maxRows: 2);
        Assert.Contains("&lt;b&gt;&amp;", html);
        Assert.Contains("line1<br>line2", html);
        Assert.Contains(">1.23<", html);
        Assert.Contains(">NaN<", html);
        Assert.DoesNotContain(">2.00<", html);   // third row cut by maxRows
        Assert.Contains("1 more rows", html);
        Assert.Throws<ArgumentOutOfRangeException>(() => Figures.Figures.TableHtml(new DataFrame(), decimals: -1));
    }

    [Fact]
    public void NotebookHtmlInlinesPlotlyJsOnlyWhenAskedAndEscapesTheFigure()
    {
        var inline = Figures.Figures.NotebookHtml(Chart(), inlinePlotlyJs: true);
        var plain = Figures.Figures.NotebookHtml(Chart(), inlinePlotlyJs: false);
        Assert.Contains(Figures.Figures.PlotlyJs, inline);
        Assert.Contains(Figures.Figures.PlotlyJsScriptAttribute, inline);
        Assert.DoesNotContain(Figures.Figures.PlotlyJsScriptAttribute, plain);
        Assert.True(plain.Length < 20_000);
        Assert.Contains("p<\\/s>", plain);           // "</s>" cannot close the script element
        Assert.DoesNotContain("p</s>", plain);
        Assert.Contains("class=\"caa-figure\"", plain);
        Assert.Throws<ArgumentException>(() => Figures.Figures.Lines([new Series("bad", [0, 1], [0.5])], "t", "x", "y"));
        Assert.Throws<ArgumentException>(() => Figures.Figures.Bars(["a", "b"], [("g", [1.0])], "t", "y"));
    }

    [Fact]
    public void ReportRendersCellsAndKeepsOnePlotlyJs()
    {
        var nb = WriteNotebook("00-x.ipynb",
            Markdown("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
            Code("display(1);", new JsonObject { ["output_type"] = "display_data", ["data"] = new JsonObject { ["text/html"] = Figures.Figures.NotebookHtml(Chart(), inlinePlotlyJs: true) } },
                new JsonObject { ["output_type"] = "stream", ["name"] = "stdout", ["text"] = new JsonArray("a < b\n") }),
            Code("var y = 2;", new JsonObject { ["output_type"] = "display_data", ["data"] = new JsonObject { ["text/html"] = Figures.Figures.NotebookHtml(Chart(), inlinePlotlyJs: true) } }));
        var html = NotebookReport.Build([("00-x", nb)], "Report");
        Assert.Contains("<h1 id=\"title\">Title</h1>", html);
        Assert.Contains("<td>1</td>", html);                                   // markdown pipe table
        Assert.Contains("a &lt; b", html);
        Assert.Equal(2, NotebookReport.FigureCount(nb));
        Assert.Equal(2, html.Split("class=\"caa-figure\"").Length - 1);
        Assert.Equal(1, html.Split(Figures.Figures.PlotlyJs).Length - 1);       // once, in the head
        Assert.DoesNotContain(Figures.Figures.PlotlyJsScriptAttribute, html);
        Assert.Null(NotebookReport.FirstError(nb));
        Assert.Equal(2, NotebookReport.CodeCells(nb));
    }

    [Fact]
    public void FirstErrorNamesTheCell()
    {
        var nb = WriteNotebook("01-y.ipynb", Markdown("# x"), Code("var a = 1;"),
            Code("// why\nvar b = Fails();", new JsonObject { ["output_type"] = "error", ["ename"] = "Error", ["evalue"] = "CS0103: The name 'Fails' does not exist", ["traceback"] = new JsonArray() }),
            Code("var c = b;", new JsonObject { ["output_type"] = "error", ["ename"] = "Error", ["evalue"] = "later", ["traceback"] = new JsonArray() }));
        var e = NotebookReport.FirstError(nb);
        Assert.Equal(new NotebookCellError(3, "var b = Fails();", "CS0103: The name 'Fails' does not exist"), e);
        Assert.Throws<InvalidDataException>(() => NotebookReport.Cells(WriteText("bad.ipynb", "{}")));
    }

    [Fact]
    public void BestLayerAcrossBehaviorsMaximizesTheMeanEffect()
    {
        SweepRow R(string b, int l, double m, double p) => new(b, l, m, 0, p);
        var rows = new List<SweepRow>
        {
            R("a", 0, -1, 0.4), R("a", 0, 1, 0.6), R("b", 0, -1, 0.5), R("b", 0, 1, 0.5),   // layer 0: mean effect 0.1
            R("a", 1, -1, 0.2), R("a", 1, 1, 0.5), R("b", 1, -1, 0.4), R("b", 1, 1, 0.6),   // layer 1: mean effect 0.25
            R("a", 2, -1, 0.0), R("a", 2, 1, 1.0),                                             // layer 2: b missing → not counted
        };
        var effect = SweepSummary.SteeringEffectByLayer(rows);
        Assert.Equal(new[] { 0, 1 }, effect.Keys);
        Assert.Equal(0.1, effect[0], 12);
        Assert.Equal(0.25, effect[1], 12);
        Assert.Equal(1, SweepSummary.BestLayerAcrossBehaviors(rows));
        Assert.Null(SweepSummary.BestLayerAcrossBehaviors(rows.Where(r => r.Multiplier == 1)));
    }

    [Fact]
    public void CommandFailsNamingTheNotebookAndCellOfACellError()
    {
        var dir = Path.Combine(_dir, "notebooks");
        Directory.CreateDirectory(dir);
        File.Copy(WriteNotebook("00-fine.ipynb", Markdown("# fine"), Code("var x = 1;\ndisplay(x);")), Path.Combine(dir, "00-fine.ipynb"));
        File.Copy(WriteNotebook("01-broken.ipynb", Markdown("# broken"), Code("var y = 2;"), Code("// a comment first\nthrow new InvalidOperationException(\"deliberate failure\");"), Code("display(y);")),
            Path.Combine(dir, "01-broken.ipynb"));
        File.Copy(WriteNotebook("02-never.ipynb", Code("display(3);")), Path.Combine(dir, "02-never.ipynb"));
        var settings = WriteText("settings.json", $$"""{ "output": "{{Path.Combine(_dir, "out")}}" }""");
        var o = new StringWriter(); var e = new StringWriter();
        Assert.Equal(1, CaaCommand.Run(["notebooks", "--dir", dir, "--settings", settings, "--plain"], o, e));
        Assert.Contains("01-broken.ipynb, cell 3 (throw new InvalidOperationException(\"deliberate failure\");): System.InvalidOperationException: deliberate failure", e.ToString());
        Assert.True(File.Exists(Path.Combine(_dir, "out", "00-fine.ipynb")), o.ToString());
        Assert.True(File.Exists(Path.Combine(_dir, "out", "01-broken.ipynb")));    // kept, with its outputs, for a look
        Assert.False(File.Exists(Path.Combine(_dir, "out", "02-never.ipynb")));    // later notebooks depend on earlier ones: not run
        Assert.False(File.Exists(Path.Combine(_dir, "out", "report.html")));
    }

    static JsonObject Markdown(string text) => new() { ["cell_type"] = "markdown", ["metadata"] = new JsonObject(), ["source"] = new JsonArray(text) };

    static JsonObject Code(string text, params JsonObject[] outputs) => new()
    {
        ["cell_type"] = "code", ["execution_count"] = null,
        ["metadata"] = new JsonObject { ["dotnet_interactive"] = new JsonObject { ["language"] = "csharp" }, ["polyglot_notebook"] = new JsonObject { ["kernelName"] = "csharp" } },
        ["outputs"] = new JsonArray(outputs.Select(x => (JsonNode)x).ToArray()), ["source"] = new JsonArray(text),
    };

    string WriteNotebook(string name, params JsonObject[] cells)
    {
        var nb = new JsonObject
        {
            ["cells"] = new JsonArray(cells.Select(c => (JsonNode)c).ToArray()),
            ["metadata"] = new JsonObject
            {
                ["kernelspec"] = new JsonObject { ["display_name"] = ".NET (C#)", ["language"] = "C#", ["name"] = ".net-csharp" },
                ["language_info"] = new JsonObject { ["name"] = "polyglot-notebook" },
                ["polyglot_notebook"] = new JsonObject { ["kernelInfo"] = new JsonObject { ["defaultKernelName"] = "csharp", ["items"] = new JsonArray(new JsonObject { ["aliases"] = new JsonArray(), ["name"] = "csharp" }) } },
            },
            ["nbformat"] = 4, ["nbformat_minor"] = 4,
        };
        return WriteText(name, nb.ToJsonString());
    }

    string WriteText(string name, string text)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, text);
        return p;
    }
}
