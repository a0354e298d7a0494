using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Notebooks;

/// <summary>
/// A notebook in the kernel VS Code's Polyglot Notebooks extension runs: dotnet-interactive 1.0.712001 (pinned in
/// .config/dotnet-tools.json), driven over its stdio protocol cell by cell from the notebooks' folder, as the extension does.
/// Every cell must succeed (the FSharp.Core clash would fail the first chart) and charts and tables arrive as text/html.
/// </summary>
public sealed class PolyglotKernelTests
{
    [Fact]
    public void SetupNotebookRunsInTheVsCodeKernelAndDisplaysItsChart()
    {
        var dir = Path.Combine(Shared.RepoRoot, "notebooks");
        var notebook = Path.Combine(dir, "00-setup-and-model-tour.ipynb");
        var cells = NotebookReport.Cells(notebook).Where(c => (string?)c?["cell_type"] == "code")
            .Select(c => string.Concat((c?["source"] as JsonArray ?? []).Select(l => (string?)l))).ToList();
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = dir, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "tool", "run", "dotnet-interactive", "--", "stdio", "--default-kernel", "csharp" }) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var events = new BlockingCollection<JsonNode>();
        var stderr = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        _ = Task.Run(() =>
        {
            while (p.StandardOutput.ReadLine() is { } line)
                try { if (JsonNode.Parse(line) is { } e) events.Add(e); } catch (System.Text.Json.JsonException) { }
            events.CompleteAdding();
        });
        var html = new List<string>();
        try
        {
            for (var i = 0; i < cells.Count; i++)
            {
                var token = $"cell-{i}";
                var command = new JsonObject
                {
                    ["commandType"] = "SubmitCode", ["token"] = token,
                    ["command"] = new JsonObject { ["code"] = cells[i], ["targetKernelName"] = "csharp" },
                };
                p.StandardInput.WriteLine(command.ToJsonString());
                p.StandardInput.Flush();
                while (true)
                {
                    Assert.True(events.TryTake(out var e, TimeSpan.FromMinutes(5)), $"no answer to code cell {i + 1} within 5 minutes; stderr: {Locked(stderr)}");
                    var type = (string?)e!["eventType"];
                    if (type == "DisplayedValueProduced")
                        html.AddRange((e["event"]?["formattedValues"] as JsonArray ?? []).Where(v => (string?)v?["mimeType"] == "text/html").Select(v => (string?)v?["value"] ?? ""));
                    if ((string?)e["command"]?["token"] != token) continue;
                    if (type == "CommandFailed") Assert.Fail($"code cell {i + 1} failed in dotnet-interactive: {(string?)e["event"]?["message"]}");
                    if (type == "CommandSucceeded") break;
                }
            }
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        Assert.Contains(html, h => h.Contains("class=\"caa-figure\"") && h.Contains(Figures.Figures.PlotlyJsScriptAttribute));   // the first chart inlines plotly.js
        Assert.Contains(html, h => h.Contains("class=\"caa-table\""));
    }

    static string Locked(System.Text.StringBuilder sb) { lock (sb) return sb.ToString(); }
}
