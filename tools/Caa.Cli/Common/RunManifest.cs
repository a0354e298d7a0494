using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Model.IO;

namespace Caa.Cli.Common;

/// <summary>
/// manifest.json of an --out folder: the command, its options, its inputs with SHA-256, timings and the tool version,
/// so a result can be traced back to exactly what produced it. Written atomically when the run completes.
/// </summary>
public sealed class RunManifest(string command, string outDir)
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    readonly JsonObject _options = new();
    readonly JsonArray _inputs = new();
    readonly JsonObject _results = new();

    public string OutDir { get; } = outDir;

    public RunManifest Option(string name, object? value) { _options[name] = JsonValue.Create(value?.ToString()); return this; }

    /// <summary>Records an input file (hashed) or folder (each file hashed).</summary>
    public RunManifest Input(string role, string path)
    {
        if (File.Exists(path)) _inputs.Add(new JsonObject { ["role"] = role, ["path"] = Path.GetFullPath(path), ["sha256"] = AtomicFile.Sha256(path) });
        else if (Directory.Exists(path))
            foreach (var f in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                _inputs.Add(new JsonObject { ["role"] = role, ["path"] = Path.GetFullPath(f), ["sha256"] = AtomicFile.Sha256(f) });
        return this;
    }

    public RunManifest Result(string name, JsonNode? value) { _results[name] = value; return this; }

    public void Write()
    {
        var doc = new JsonObject
        {
            ["command"] = command,
            ["tool_version"] = typeof(RunManifest).Assembly.GetName().Version?.ToString(),
            ["started_utc"] = _started.ToString("O"),
            ["elapsed_seconds"] = Math.Round(_clock.Elapsed.TotalSeconds, 3),
            ["options"] = _options,
            ["inputs"] = _inputs,
            ["results"] = _results,
        };
        AtomicFile.WriteAllText(Path.Combine(OutDir, "manifest.json"), doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
