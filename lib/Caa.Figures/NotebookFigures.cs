using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Data.Analysis;
using Plotly.NET;
using Chart = Plotly.NET.CSharp.Chart;

namespace Caa.Figures;

/// <summary>One line of <see cref="Figures.Lines"/>: a name and its points (same number of x and y values).</summary>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);

public static partial class Figures
{
    /// <summary>
    /// The attribute that marks the <c>&lt;script&gt;</c> element in which <see cref="NotebookHtml"/> inlines plotly.js, so that a
    /// page made of several notebook outputs (the notebooks' HTML report) can remove those copies and keep one.
    /// </summary>
    public const string PlotlyJsScriptAttribute = "data-caa-plotly-js";

    static int _notebookPlotlyJsInlined;

    /// <summary>Line chart (with markers), one trace per <paramref name="series"/>; an optional fixed y range.</summary>
    /// <exception cref="ArgumentException">A series whose x and y counts differ.</exception>
    public static GenericChart Lines(IEnumerable<Series> series, string title, string xTitle, string yTitle, double? yMin = null, double? yMax = null)
    {
        ArgumentNullException.ThrowIfNull(series);
        var traces = series.Select(s =>
        {
            if (s.X.Count != s.Y.Count) throw new ArgumentException($"series '{s.Name}' has {s.X.Count} x values and {s.Y.Count} y values", nameof(series));
            return Chart.Line<double, double, string>(s.X, s.Y, ShowMarkers: true, Name: s.Name);
        }).ToList();
        if (traces.Count == 0) throw new ArgumentException("no series", nameof(series));
        return WithLayout(Chart.Combine(traces), new()
        {
            ["title"] = Title(title), ["xaxis"] = Axis(xTitle), ["yaxis"] = Axis(yTitle, yMin, yMax),
        });
    }

    /// <summary>Grouped bar chart: one bar per category in each group (e.g. categories = behaviors, groups = splits).</summary>
    /// <exception cref="ArgumentException">A group whose value count differs from the category count.</exception>
    public static GenericChart Bars(IReadOnlyList<string> categories, IEnumerable<(string Name, IReadOnlyList<double> Values)> groups,
        string title, string yTitle, double? yMin = null, double? yMax = null)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(groups);
        var traces = groups.Select(g =>
        {
            if (g.Values.Count != categories.Count) throw new ArgumentException($"group '{g.Name}' has {g.Values.Count} values for {categories.Count} categories", nameof(groups));
            return Chart.Column<double, string, string>(g.Values, Keys: categories.ToArray(), Name: g.Name);
        }).ToList();
        if (traces.Count == 0) throw new ArgumentException("no groups", nameof(groups));
        return WithLayout(Chart.Combine(traces), new()
        {
            ["title"] = Title(title), ["barmode"] = "group",
            ["xaxis"] = new Dictionary<string, object> { ["type"] = "category" }, ["yaxis"] = Axis(yTitle, yMin, yMax),
        });
    }

    /// <summary>
    /// The chart as an HTML fragment for a notebook's <c>text/html</c> output (<c>display(HTML(…))</c>): a <c>&lt;div&gt;</c> and a
    /// script that draws into it. The first fragment made in a process (a notebook kernel) inlines plotly.js, so notebooks show
    /// charts offline; later fragments use that copy, waiting briefly for it, and otherwise load plotly.js v<see cref="PlotlyJsVersion"/>
    /// from <see cref="PlotlyJsCdnUrl"/> (e.g. after the first output was cleared). <paramref name="inlinePlotlyJs"/> overrides that choice.
    /// </summary>
    public static string NotebookHtml(GenericChart chart, int height = 460, bool? inlinePlotlyJs = null)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var inline = inlinePlotlyJs ?? Interlocked.Exchange(ref _notebookPlotlyJsInlined, 1) == 0;
        var id = "caa-" + Guid.NewGuid().ToString("N")[..12];
        var figure = GenericChart.toFigureJson(chart).Replace("</", "<\\/", StringComparison.Ordinal);
        var sb = new StringBuilder(figure.Length + (inline ? PlotlyJs.Length : 0) + 2048);
        sb.Append(CultureInfo.InvariantCulture, $"<div id=\"{id}\" class=\"caa-figure\" style=\"width:100%;height:{height}px\"></div>\n");
        if (inline)
            // Parameters named define/module/exports hide a page's AMD loader (Jupyter's require.js), so plotly.js's UMD header
            // sets window.Plotly instead of registering an anonymous module.
            sb.Append("<script type=\"text/javascript\" ").Append(PlotlyJsScriptAttribute).Append("=\"").Append(PlotlyJsVersion).Append("\">\n")
              .Append("(function (define, module, exports) {\n").Append(PlotlyJs).Append("\n}).call(window);\n</script>\n");
        sb.Append("<script type=\"text/javascript\">\n(function () {\n")
          .Append("  var figure = ").Append(figure).Append(";\n")
          // The container sets the size instead of Plotly.NET's default 600×600, so the figure fills the output's width.
          .Append("  var layout = Object.assign({}, figure.layout, { width: undefined, height: undefined, autosize: true });\n")
          .Append(CultureInfo.InvariantCulture, $"  var draw = function () {{ window.Plotly.newPlot('{id}', figure.data, layout, {{ responsive: true }}); }};\n")
          .Append("  var fromCdn = function () {\n")
          .Append(CultureInfo.InvariantCulture, $"    var url = '{PlotlyJsCdnUrl}';\n")
          .Append("    if (typeof window.require === 'function' && typeof window.define === 'function' && window.define.amd) {\n")
          .Append("      window.require.config({ paths: { 'caa-plotly': url.replace(/\\.js$/, '') } });\n")
          .Append("      window.require(['caa-plotly'], function (p) { window.Plotly = window.Plotly || p; draw(); });\n")
          .Append("    } else { var s = document.createElement('script'); s.src = url; s.onload = draw; document.head.appendChild(s); }\n")
          .Append("  };\n")
          .Append("  var tries = 0;\n")
          .Append("  var wait = function () { if (window.Plotly) { draw(); } else if (++tries < 40) { setTimeout(wait, 50); } else { fromCdn(); } };\n")
          .Append("  wait();\n")
          .Append("})();\n</script>\n");
        return sb.ToString();
    }

    /// <summary>
    /// A <see cref="DataFrame"/> as an HTML table for notebooks and reports: floating-point cells with <paramref name="decimals"/>
    /// decimals (NaN as "NaN", missing as empty), text HTML-encoded with line breaks kept, at most <paramref name="maxRows"/> rows
    /// (a last line says how many were left out).
    /// </summary>
    public static string TableHtml(DataFrame table, int decimals = 3, int maxRows = 200, string? caption = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfNegative(decimals);
        var fmt = "F" + decimals.ToString(CultureInfo.InvariantCulture);
        string Cell(object? v) => v switch
        {
            null => "",
            double d => double.IsNaN(d) ? "NaN" : d.ToString(fmt, CultureInfo.InvariantCulture),
            float f => float.IsNaN(f) ? "NaN" : f.ToString(fmt, CultureInfo.InvariantCulture),
            bool b => b ? "true" : "false",
            IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
            _ => WebUtility.HtmlEncode(v.ToString() ?? "").Replace("\n", "<br>", StringComparison.Ordinal),
        };
        bool Numeric(DataFrameColumn c) => c.DataType != typeof(string) && c.DataType != typeof(bool);
        var sb = new StringBuilder("<table class=\"caa-table\" style=\"border-collapse:collapse;margin:0.5em 0\">\n");
        if (caption is not null) sb.Append("<caption style=\"text-align:left;font-weight:bold\">").Append(WebUtility.HtmlEncode(caption)).Append("</caption>\n");
        sb.Append("<thead><tr>");
        foreach (var c in table.Columns)
            sb.Append("<th style=\"border-bottom:1px solid #888;padding:2px 8px;text-align:").Append(Numeric(c) ? "right" : "left").Append("\">")
              .Append(WebUtility.HtmlEncode(c.Name)).Append("</th>");
        sb.Append("</tr></thead>\n<tbody>\n");
        var rows = (int)Math.Min(table.Rows.Count, maxRows);
        for (var r = 0; r < rows; r++)
        {
            sb.Append("<tr>");
            foreach (var c in table.Columns)
                sb.Append("<td style=\"padding:2px 8px;vertical-align:top;text-align:").Append(Numeric(c) ? "right" : "left").Append("\">").Append(Cell(c[r])).Append("</td>");
            sb.Append("</tr>\n");
        }
        if (table.Rows.Count > rows)
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td colspan=\"{table.Columns.Count}\" style=\"padding:2px 8px;font-style:italic\">… {table.Rows.Count - rows} more rows</td></tr>\n");
        return sb.Append("</tbody>\n</table>\n").ToString();
    }
}
