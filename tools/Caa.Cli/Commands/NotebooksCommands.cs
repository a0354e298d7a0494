using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caa.Cli.Common;
using Caa.Figures;
using Caa.Model.IO;
using Spectre.Console;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa notebooks</c>: runs every notebook in <c>notebooks/</c> headless, in order, through the dotnet-repl tool pinned in
/// <c>.config/dotnet-tools.json</c>; writes the executed copies and one HTML report (every table and figure, plotly.js inlined
/// once) to the settings' output folder. Stops at the first cell error, naming the notebook and the cell.
/// </summary>
public static partial class NotebooksCommands
{
    [GeneratedRegex(@"^\d\d-[^/\\]+\.ipynb$")]
    private static partial Regex NotebookName();

    [GeneratedRegex(@"^\s*#r\s+""([^""]+\.dll)""", RegexOptions.Multiline)]
    private static partial Regex AssemblyReference();

    public static Command Create()
    {
        var settings = new Option<string?>("--settings") { Description = $"Settings file (default: notebooks/settings.json, or ${NotebookSettings.EnvironmentVariable}). Passed on to every notebook." };
        var dir = new Option<string?>("--dir") { Description = "Folder of the notebooks (NN-name.ipynb, run in name order). Default: notebooks/ of the repository." };
        var only = new Option<string?>("--only") { Description = "Comma-separated notebook numbers or names to run (e.g. 00,03); the report then holds just those." };
        var timeout = new Option<int>("--timeout-minutes") { Description = "Give up on a notebook that runs longer than this.", DefaultValueFactory = _ => 60 };
        var plain = new Option<bool>("--plain") { Description = "Plain progress lines instead of a live display (automatic when output is redirected)." };
        var cmd = new Command("notebooks", "Run every notebook headless in order (dotnet-repl) and write executed copies + one HTML report to the output folder of notebooks/settings.json.")
        {
            settings, dir, only, timeout, plain,
        };
        cmd.SetAction((r, ct) => Task.FromResult(Run(r, r.GetValue(settings), r.GetValue(dir), r.GetValue(only), r.GetValue(timeout), r.GetValue(plain), ct)));
        return cmd;
    }

    sealed record Outcome(string Name, double Seconds, int Figures, int CodeCells);

    static int Run(ParseResult r, string? settingsPath, string? dirOption, string? only, int timeoutMinutes, bool plain, CancellationToken ct)
    {
        var o = r.InvocationConfiguration.Output;
        var repo = FindRepo() ?? throw new CliException("not inside the CAA.NET repository (no Caa.sln above the current folder or the tool); run from the repository");
        var dir = Path.GetFullPath(dirOption ?? Path.Combine(repo, "notebooks"));
        if (!Directory.Exists(dir)) throw new CliException($"--dir {dir}: folder not found");
        var notebooks = Directory.EnumerateFiles(dir, "*.ipynb").Where(f => NotebookName().IsMatch(Path.GetFileName(f))).Order(StringComparer.Ordinal).ToList();
        if (!string.IsNullOrWhiteSpace(only))
        {
            var wanted = only.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var unknown = wanted.Where(w => !notebooks.Any(n => Matches(n, w))).ToList();
            if (unknown.Count > 0) throw new CliException($"--only: no notebook {string.Join(", ", unknown)} in {dir}");
            notebooks = notebooks.Where(n => wanted.Any(w => Matches(n, w))).ToList();
        }
        if (notebooks.Count == 0) throw new CliException($"{dir}: no notebooks named NN-name.ipynb");

        // The settings are read here too: a wrong model path fails now, with the settings file named, not inside a kernel.
        var env = new Dictionary<string, string>();
        if (settingsPath is not null)
        {
            if (!File.Exists(settingsPath)) throw new CliException($"--settings {settingsPath}: file not found");
            env[NotebookSettings.EnvironmentVariable] = Path.GetFullPath(settingsPath);
        }
        NotebookSettings s;
        var savedCwd = Directory.GetCurrentDirectory();
        try
        {
            Directory.SetCurrentDirectory(dir);   // where the kernels run, so the default settings file is found the same way
            s = NotebookSettings.Load(settingsPath is null ? null : Path.GetFullPath(settingsPath, savedCwd));
        }
        finally { Directory.SetCurrentDirectory(savedCwd); }
        CheckReferences(notebooks, dir);
        Directory.CreateDirectory(s.Output);
        var logs = Path.Combine(s.Output, "logs");
        Directory.CreateDirectory(logs);

        var interactive = !plain && ReferenceEquals(o, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(o), Interactive = interactive ? InteractionSupport.Yes : InteractionSupport.No });
        o.WriteLine($"notebooks: {notebooks.Count} in {dir}; settings {s.SettingsFile}; model {s.Model}; output {s.Output}");
        var repl = RestoreTools(repo, ct);

        var manifest = new RunManifest("notebooks", s.Output).Option("settings", s.SettingsFile).Option("model", s.Model).Option("device", s.Device)
            .Option("dtype", s.DType).Option("notebooks", dir).Option("results", s.ResultsFolder);
        var outcomes = new List<Outcome>();
        void RunOne(string nb, Action<string>? status)
        {
            var name = Path.GetFileNameWithoutExtension(nb);
            var executed = Path.Combine(s.Output, name + ".ipynb");
            var sw = Stopwatch.StartNew();
            Execute(repl, dir, nb, executed, Path.Combine(logs, name + ".log"), env, TimeSpan.FromMinutes(timeoutMinutes), ct, status);
            outcomes.Add(new Outcome(name, sw.Elapsed.TotalSeconds, NotebookReport.FigureCount(executed), NotebookReport.CodeCells(executed)));
        }

        if (interactive)
            console.Progress().AutoClear(false).Columns(new SpinnerColumn(), new TaskDescriptionColumn { Alignment = Justify.Left }, new ElapsedTimeColumn())
                .Start(p =>
                {
                    for (var i = 0; i < notebooks.Count; i++)
                    {
                        var label = $"[{i + 1}/{notebooks.Count}] {Path.GetFileName(notebooks[i])}";
                        var task = p.AddTask(Markup.Escape(label), maxValue: 1);
                        task.IsIndeterminate = true;
                        RunOne(notebooks[i], st => task.Description = Markup.Escape($"{label} {st}"));
                        task.Description = Markup.Escape($"{label}: ok, {outcomes[^1].CodeCells} code cells, {outcomes[^1].Figures} figures");
                        task.IsIndeterminate = false;
                        task.Value = 1;
                        task.StopTask();
                    }
                });
        else
            for (var i = 0; i < notebooks.Count; i++)
            {
                o.WriteLine($"[{i + 1}/{notebooks.Count}] {Path.GetFileName(notebooks[i])} …");
                RunOne(notebooks[i], null);
                o.WriteLine($"[{i + 1}/{notebooks.Count}] {Path.GetFileName(notebooks[i])}: ok ({outcomes[^1].Seconds:F1} s, {outcomes[^1].CodeCells} code cells, {outcomes[^1].Figures} figures)");
            }

        var report = Path.Combine(s.Output, "report.html");
        var preamble = $"<p>Executed {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC by <code>caa notebooks</code> on <code>{WebUtility.HtmlEncode(s.Model)}</code> " +
                       $"({WebUtility.HtmlEncode(s.Device)}, {WebUtility.HtmlEncode(s.DType)}); settings <code>{WebUtility.HtmlEncode(s.SettingsFile)}</code>. " +
                       "Numbers labelled <b>paper</b> are the paper's (Llama 2 7B Chat unless stated); every other number was computed in this run.</p>";
        AtomicFile.WriteAllText(report, NotebookReport.Build(outcomes.Select(x => (x.Name, Path.Combine(s.Output, x.Name + ".ipynb"))).ToList(),
            "CAA.NET notebooks — Steering Llama 2 via Contrastive Activation Addition", preamble));
        var results = new JsonObject();
        foreach (var x in outcomes) results[x.Name] = new JsonObject { ["seconds"] = Math.Round(x.Seconds, 1), ["figures"] = x.Figures, ["code_cells"] = x.CodeCells };
        manifest.Result("notebooks", results).Result("report", report).Write();
        o.WriteLine($"done in {outcomes.Sum(x => x.Seconds):F0} s: {outcomes.Count} notebooks, {outcomes.Sum(x => x.Figures)} figures; report {report}");
        return 0;
    }

    static bool Matches(string notebook, string wanted)
    {
        var name = Path.GetFileNameWithoutExtension(notebook);
        return name.Equals(wanted, StringComparison.OrdinalIgnoreCase) || name.StartsWith(wanted + "-", StringComparison.OrdinalIgnoreCase)
            || Path.GetFileName(notebook).Equals(wanted, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Every <c>#r "….dll"</c> of the notebooks must exist (relative paths are resolved from the notebooks' folder, as kernels do).</summary>
    static void CheckReferences(IEnumerable<string> notebooks, string dir)
    {
        foreach (var nb in notebooks)
            foreach (var cell in NotebookReport.Cells(nb))
                foreach (Match m in AssemblyReference().Matches(string.Concat((cell?["source"] as JsonArray ?? []).Select(l => (string?)l))))
                {
                    var path = Path.GetFullPath(m.Groups[1].Value, dir);
                    if (!File.Exists(path))
                        throw new CliException($"{Path.GetFileName(nb)} references {m.Groups[1].Value}, which does not exist ({path}): build the library first with `dotnet build -c Release tools/Caa.Cli`");
                }
    }

    /// <summary>
    /// `dotnet tool restore` (installs the pinned dotnet-repl where it is missing; a no-op once it is there), then the path of the
    /// tool's entry assembly in the NuGet packages folder. The notebooks run with their own folder as the working directory (as in
    /// VS Code, so relative <c>#r</c> paths resolve the same way), where `dotnet tool run` would not find the repository's manifest.
    /// </summary>
    static string RestoreTools(string repo, CancellationToken ct)
    {
        var (code, output) = RunDotnet(repo, ct, "tool", "restore");
        if (code != 0) throw new CliException($"`dotnet tool restore` failed (exit {code}); dotnet-repl is needed to run the notebooks:\n{output}");
        var manifest = Path.Combine(repo, ".config", "dotnet-tools.json");
        var version = (string?)JsonNode.Parse(File.ReadAllText(manifest))?["tools"]?["dotnet-repl"]?["version"]
            ?? throw new CliException($"{manifest} pins no dotnet-repl version");
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var toolDir = Path.Combine(packages, "dotnet-repl", version, "tools");
        return (Directory.Exists(toolDir) ? Directory.EnumerateFiles(toolDir, "dotnet-repl.dll", SearchOption.AllDirectories).Order(StringComparer.Ordinal).LastOrDefault() : null)
            ?? throw new CliException($"dotnet-repl {version} was restored but {toolDir}/*/any/dotnet-repl.dll is missing (NuGet packages folder: {packages}; set NUGET_PACKAGES if it is elsewhere)");
    }

    static (int Code, string Output) RunDotnet(string workingDirectory, CancellationToken ct, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new CliException($"could not start `dotnet {string.Join(' ', args)}`");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Runs one notebook with dotnet-repl in the notebooks' folder; the executed copy replaces <paramref name="executed"/> atomically.</summary>
    static void Execute(string repl, string dir, string notebook, string executed, string log, IReadOnlyDictionary<string, string> env, TimeSpan timeout, CancellationToken ct, Action<string>? status)
    {
        var partial = Path.Combine(Path.GetDirectoryName(executed)!, "." + Path.GetFileNameWithoutExtension(executed) + ".running.ipynb");
        File.Delete(partial);
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { repl, "--run", notebook, "--exit-after-run", "--output-path", partial }) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT"] = "1";
        // As the user knows it: relative to the current folder when below it (notebooks/03-….ipynb from the repository root).
        var rel = Path.GetRelativePath(Directory.GetCurrentDirectory(), notebook);
        var name = rel.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(rel) ? notebook : rel;
        using var p = Process.Start(psi) ?? throw new CliException($"{name}: could not start dotnet-repl");
        p.StandardInput.Close();
        using var logWriter = TextWriter.Synchronized(new StreamWriter(log));
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) logWriter.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) logWriter.WriteLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (!p.WaitForExit(500))
        {
            if (ct.IsCancellationRequested || clock.Elapsed > timeout)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                throw ct.IsCancellationRequested ? new OperationCanceledException(ct)
                    : new CliException($"{name}: still running after {timeout.TotalMinutes:F0} minutes; stopped (log: {log})");
            }
            status?.Invoke($"running {clock.Elapsed.TotalSeconds:F0} s");
        }
        p.WaitForExit();
        logWriter.Flush();
        if (!File.Exists(partial))
            throw new CliException($"{name}: dotnet-repl exited with code {p.ExitCode} without writing the executed notebook; log {log}:\n{Tail(log)}");
        // dotnet-repl exits with 2 when a cell failed; it does not stop there, so the first error is the cause and later ones follow from it.
        if (NotebookReport.FirstError(partial) is { } error)
        {
            File.Move(partial, executed, overwrite: true);
            throw new CliException($"{name}, cell {error.Cell} ({error.FirstLine}): {error.Error}\nexecuted copy with all outputs: {executed}");
        }
        if (p.ExitCode != 0)
            throw new CliException($"{name}: dotnet-repl exited with code {p.ExitCode} although no cell reported an error; log {log}:\n{Tail(log)}");
        File.Move(partial, executed, overwrite: true);
    }

    static string Tail(string log)
    {
        var lines = File.Exists(log) ? File.ReadAllLines(log) : [];
        return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - 20)));
    }

    static string? FindRepo()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Caa.sln"))) return d.FullName;
        return null;
    }
}
