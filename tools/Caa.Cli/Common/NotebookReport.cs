using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Markdig;

namespace Caa.Cli.Common;

/// <summary>A cell that failed in an executed notebook: 1-based cell number (markdown cells counted), its first code line and the error.</summary>
internal sealed record NotebookCellError(int Cell, string FirstLine, string Error);

/// <summary>
/// Reads executed Polyglot notebooks (.ipynb as written by dotnet-repl) and turns them into one standalone HTML report: markdown
/// cells rendered, code folded, every output (tables, figures, text) in order, plotly.js inlined once in the page head.
/// </summary>
internal static class NotebookReport
{
    static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    /// <summary>The notebook's cells; throws <see cref="InvalidDataException"/> naming the file when it is not a notebook.</summary>
    public static JsonArray Cells(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not a notebook (invalid JSON: {e.Message})", e); }
        return root?["cells"] as JsonArray ?? throw new InvalidDataException($"{path}: not a notebook (no \"cells\" list)");
    }

    /// <summary>The first cell with an error output, or null.</summary>
    public static NotebookCellError? FirstError(string path)
    {
        var cells = Cells(path);
        for (var i = 0; i < cells.Count; i++)
            foreach (var output in cells[i]?["outputs"] as JsonArray ?? [])
                if ((string?)output?["output_type"] == "error")
                {
                    var first = Text(cells[i]?["source"]).Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal)) ?? "";
                    // The message without its stack frames: for an exception its first line, for compile errors every error (at most 8).
                    var message = string.Join('\n', ((string?)output?["evalue"] ?? (string?)output?["ename"] ?? "error").Split('\n')
                        .Select(l => l.TrimEnd()).Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith("at ", StringComparison.Ordinal) && !l.Contains("--- End of", StringComparison.Ordinal))
                        .Take(8));
                    return new NotebookCellError(i + 1, first, message);
                }
        return null;
    }

    /// <summary>Number of figures (<c>Figures.NotebookHtml</c> outputs) in an executed notebook.</summary>
    public static int FigureCount(string path) => Cells(path).SelectMany(c => c?["outputs"] as JsonArray ?? [])
        .Sum(o => CountOf(Text(o?["data"]?["text/html"]), "class=\"caa-figure\""));

    static int CountOf(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Number of code cells in a notebook.</summary>
    public static int CodeCells(string path) => Cells(path).Count(c => (string?)c?["cell_type"] == "code");

    /// <summary>
    /// The report page for <paramref name="notebooks"/> (title → executed .ipynb path), in order. Figures made by
    /// <c>Figures.NotebookHtml</c> draw with the one plotly.js copy in the head, so the page opens offline.
    /// </summary>
    public static string Build(IReadOnlyList<(string Title, string Path)> notebooks, string heading, string? preamble = null)
    {
        var body = new StringBuilder();
        var toc = new StringBuilder();
        for (var n = 0; n < notebooks.Count; n++)
        {
            var (title, path) = notebooks[n];
            var anchor = $"nb{n}";
            toc.Append("<li><a href=\"#").Append(anchor).Append("\">").Append(WebUtility.HtmlEncode(title)).Append("</a></li>\n");
            body.Append("<section class=\"notebook\" id=\"").Append(anchor).Append("\">\n<div class=\"nbname\">").Append(WebUtility.HtmlEncode(title)).Append("</div>\n");
            foreach (var cell in Cells(path))
            {
                var source = Text(cell?["source"]);
                if ((string?)cell?["cell_type"] == "markdown")
                {
                    body.Append("<div class=\"md\">").Append(Markdig.Markdown.ToHtml(source, Pipeline)).Append("</div>\n");
                    continue;
                }
                if (source.Trim().Length > 0)
                    body.Append("<details class=\"code\"><summary>code</summary><pre><code>").Append(WebUtility.HtmlEncode(source)).Append("</code></pre></details>\n");
                foreach (var output in cell?["outputs"] as JsonArray ?? [])
                    AppendOutput(body, output);
            }
            body.Append("</section>\n");
        }
        var page = new StringBuilder(Caa.Figures.Figures.PlotlyJs.Length + body.Length + 8192);
        page.Append("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(WebUtility.HtmlEncode(heading)).Append("</title>\n")
            .Append("<style>\nbody{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:0 auto;padding:1em 2em;line-height:1.45}\n")
            .Append("section.notebook{border-top:3px solid #446;margin-top:2.5em;padding-top:.5em}\n.nbname{color:#668;font-size:.85em}\n")
            .Append("details.code{margin:.4em 0}\ndetails.code summary{color:#668;cursor:pointer;font-size:.85em}\n")
            .Append("pre{background:#f6f6f8;padding:.6em;overflow-x:auto;font-size:.85em}\npre.error{background:#fee;color:#900}\n")
            .Append(".md table{border-collapse:collapse}\n.md td,.md th{border:1px solid #ccc;padding:2px 8px}\n.output{margin:.4em 0;overflow-x:auto}\n</style>\n")
            .Append("<script type=\"text/javascript\">\n").Append(Caa.Figures.Figures.PlotlyJs).Append("\n</script>\n</head>\n<body>\n")
            .Append("<h1>").Append(WebUtility.HtmlEncode(heading)).Append("</h1>\n");
        if (preamble is not null) page.Append(preamble).Append('\n');
        page.Append("<ol>\n").Append(toc).Append("</ol>\n").Append(body).Append("</body>\n</html>\n");
        return page.ToString();
    }

    static void AppendOutput(StringBuilder body, JsonNode? output)
    {
        switch ((string?)output?["output_type"])
        {
            case "display_data" or "execute_result":
                var data = output?["data"] as JsonObject;
                if (data?["text/html"] is { } html)
                    body.Append("<div class=\"output\">").Append(WithoutInlinedPlotlyJs(Text(html))).Append("</div>\n");
                else if (data?["text/markdown"] is { } md)
                    body.Append("<div class=\"output md\">").Append(Markdig.Markdown.ToHtml(Text(md), Pipeline)).Append("</div>\n");
                else if (data?["text/plain"] is { } plain)
                    body.Append("<pre class=\"output\">").Append(WebUtility.HtmlEncode(Text(plain))).Append("</pre>\n");
                break;
            case "stream":
                body.Append("<pre class=\"output\">").Append(WebUtility.HtmlEncode(Text(output?["text"]))).Append("</pre>\n");
                break;
            case "error":
                body.Append("<pre class=\"output error\">").Append(WebUtility.HtmlEncode(((string?)output?["evalue"] ?? "error").Trim())).Append("</pre>\n");
                break;
        }
    }

    /// <summary>Removes the plotly.js copies that <c>Figures.NotebookHtml</c> inlines (the page head has one).</summary>
    internal static string WithoutInlinedPlotlyJs(string html)
    {
        var marker = Caa.Figures.Figures.PlotlyJsScriptAttribute + "=";
        var sb = new StringBuilder(html.Length);
        var pos = 0;
        while (true)
        {
            var at = html.IndexOf(marker, pos, StringComparison.Ordinal);
            if (at < 0) break;
            var open = html.LastIndexOf("<script", at, StringComparison.OrdinalIgnoreCase);
            var close = html.IndexOf("</script>", at, StringComparison.OrdinalIgnoreCase);
            if (open < pos || close < 0) break;
            sb.Append(html, pos, open - pos);
            pos = close + "</script>".Length;
        }
        return sb.Append(html, pos, html.Length - pos).ToString();
    }

    /// <summary>An ipynb text field: a string or a list of lines.</summary>
    static string Text(JsonNode? node) => node switch
    {
        null => "",
        JsonArray lines => string.Concat(lines.Select(l => (string?)l ?? "")),
        _ => (string?)node ?? "",
    };
}
