using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caa.Cli.Common;
using Caa.Interpret.Datasets;
using Caa.Interpret.OpenEnded;
using Caa.Model;
using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using Caa.Model.IO;
using Spectre.Console;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa eval open-ended</c>: steered greedy answers to the open-ended test questions at several multipliers, optionally scored
/// by a judge. <see cref="Create"/> returns the <c>open-ended</c> command, to be added under <c>eval</c>.
/// Resumable: each finished multiplier is saved (open_ended.csv + open_ended.state.json) and skipped by a rerun with the same settings.
/// </summary>
public static partial class OpenEndedCommands
{
    public const string ResultsFile = "open_ended.csv";
    public const string StateFile = "open_ended.state.json";
    public const string ScoresFile = "scores.csv";
    public const string MeansFile = "score_means.csv";

    public static Command Create()
    {
        var m = new ModelOptions();
        var behavior = new Option<string>("--behavior") { Description = "Behavior id, e.g. sycophancy.", Required = true };
        var vectors = new Option<string?>("--vectors")
        {
            Description = "Folder with <behavior>.safetensors (tensors blocks.{L}.hook_resid_post). Default: extracted from the model's generation splits, " +
                "normalized across behaviors, and saved in <out>/vectors.",
        };
        var layer = new Option<int>("--layer") { Description = "Layer to steer (the output of block L).", Required = true };
        var multipliers = new Option<string>("--multipliers") { Description = "Comma-separated multipliers, e.g. -2,-1,0,1,2.", DefaultValueFactory = _ => "-1,0,1" };
        var dataset = new Option<string?>("--dataset") { Description = "Open-ended questions (JSON list of {\"question\": …}). Default: the model's datasets/test/<behavior>/test_dataset_open_ended.json." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N questions." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens per answer (greedy).", DefaultValueFactory = _ => 100 };
        var batchSize = new Option<int>("--batch-size") { Description = "Rows generated together (does not change the answers).", DefaultValueFactory = _ => 16 };
        var judge = new Option<string>("--judge") { Description = "none, openai (any OpenAI-compatible endpoint; key from env CAA_JUDGE_API_KEY), or a registered judge such as organism.", DefaultValueFactory = _ => "none" };
        var judgeEndpoint = new Option<string?>("--judge-endpoint") { Description = "Base URL of the judge's OpenAI-compatible API, e.g. http://localhost:8000/v1." };
        var judgeModel = new Option<string?>("--judge-model") { Description = "Judge model name." };
        var judgeConcurrency = new Option<int>("--judge-concurrency") { Description = "Judge requests in flight at once.", DefaultValueFactory = _ => 4 };
        var output = new Option<string>("--out") { Description = "Output folder: open_ended.csv, scores.csv, score_means.csv, manifest.json.", Required = true };
        var cmd = new Command("open-ended", "Steered open-ended generation (greedy) at several multipliers, scored 0–10 by an optional judge.")
            { behavior, vectors, layer, multipliers, dataset, limit, maxNew, batchSize, judge, judgeEndpoint, judgeModel, judgeConcurrency, output };
        m.AddTo(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            var b = r.GetValue(behavior)!;
            var L = r.GetValue(layer);
            var mults = OptionValues.Numbers(r.GetValue(multipliers)!, "--multipliers").ToArray();
            var maxNewTokens = r.GetValue(maxNew);
            if (maxNewTokens < 1) throw new CliException("--max-new-tokens must be ≥ 1");
            if (r.GetValue(batchSize) < 1) throw new CliException("--batch-size must be ≥ 1");
            if (r.GetValue(judgeConcurrency) < 1) throw new CliException("--judge-concurrency must be ≥ 1");
            var outDir = Path.GetFullPath(r.GetValue(output)!);
            var o = r.InvocationConfiguration.Output;

            // Inputs first: fail fast, before loading the model.
            var modelFolder = m.ResolveFolder(r);
            var datasetPath = r.GetValue(dataset) is { } given
                ? File.Exists(given) ? Path.GetFullPath(given) : throw new CliException($"--dataset {given}: file not found")
                : DefaultInputs.OpenEndedSet(modelFolder, b);
            var questions = LoadQuestions(datasetPath);
            if (r.GetValue(limit) is { } n)
            {
                if (n < 1) throw new CliException("--limit must be ≥ 1");
                questions = questions.Take(n).ToList();
            }
            var config = LlamaConfig.Load(modelFolder);
            if (L < 0 || L >= config.NumHiddenLayers) throw new CliException($"--layer {L}: the model has layers 0…{config.NumHiddenLayers - 1}");
            var vectorsDir = r.GetValue(vectors);
            if (vectorsDir is null)
            {
                using var model = m.LoadModel(r);
                vectorsDir = DefaultInputs.EnsureVectors(model, m.LoadTokenizer(r), modelFolder, Path.Combine(outDir, "vectors"),
                    AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(r.InvocationConfiguration.Error) }));
            }
            var vectorPath = VectorFiles.Resolve(vectorsDir, b);
            using var vector = VectorFiles.Read(vectorPath, [L], config)[L];

            var judgeName = r.GetValue(judge)!.Trim();
            var endpoint = r.GetValue(judgeEndpoint) is { } e
                ? Uri.TryCreate(e, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" ? u : throw new CliException($"--judge-endpoint {e}: not an http(s) URL")
                : null;
            IBehaviorJudge? judgeImpl = judgeName.Equals("none", StringComparison.OrdinalIgnoreCase) ? null
                : JudgeRegistry.Create(judgeName, new JudgeSettings { Endpoint = endpoint, Model = r.GetValue(judgeModel) });
            try
            {
                Directory.CreateDirectory(outDir);
                var fingerprint = new JsonObject
                {
                    ["behavior"] = b, ["layer"] = L, ["model"] = modelFolder, ["architecture_hash"] = config.ArchitectureHash,
                    ["dtype"] = r.GetValue(m.DType), ["vectors_sha256"] = AtomicFile.Sha256(vectorPath), ["dataset_sha256"] = AtomicFile.Sha256(datasetPath),
                    ["questions"] = questions.Count, ["max_new_tokens"] = maxNewTokens,
                };
                var (results, done) = Resume(outDir, fingerprint, mults, questions.Count);
                var todo = mults.Where(x => !done.Contains(x)).ToArray();
                if (done.Count > 0) o.WriteLine($"resuming: multipliers {string.Join(", ", done.Select(Csv.Number))} already done in {Path.Combine(outDir, ResultsFile)}");

                var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(r.InvocationConfiguration.Error) });
                ScoringReport? report = null;
                await console.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        if (todo.Length > 0)
                        {
                            var task = ctx.AddTask($"{b} L{L}: generating", maxValue: mults.Length * questions.Count);
                            task.Value = done.Count * questions.Count;
                            var tok = m.LoadTokenizer(r);
                            using var model = m.LoadModel(r);
                            if (model.Config.ArchitectureHash != config.ArchitectureHash) throw new CliException("the model's config changed while loading");
                            var options = new OpenEndedOptions { MaxNewTokens = maxNewTokens, BatchSize = r.GetValue(batchSize) };
                            foreach (var mult in todo)
                            {
                                var start = task.Value;
                                var rows = OpenEndedGeneration.Generate(model, tok, b, L, vector, questions, [mult], options,
                                    new SyncProgress<OpenEndedProgress>(p => task.Value = start + p.RowsDone), ct);
                                results.AddRange(rows);
                                results.Sort((x, y) => (Array.IndexOf(mults, x.Multiplier), x.Item).CompareTo((Array.IndexOf(mults, y.Multiplier), y.Item)));
                                done.Add(mult);
                                OpenEndedCsv.Write(Path.Combine(outDir, ResultsFile), results);
                                AtomicFile.WriteAllText(Path.Combine(outDir, StateFile), new JsonObject
                                {
                                    ["fingerprint"] = fingerprint.DeepClone(),
                                    ["done"] = new JsonArray(mults.Where(done.Contains).Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
                                }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                            }
                        }
                        if (judgeImpl is not null)
                        {
                            var task = ctx.AddTask($"{b} L{L}: judging ({judgeName})", maxValue: results.Count);
                            report = await OpenEndedScoring.ScoreAsync(judgeImpl, results, r.GetValue(judgeConcurrency),
                                new SyncProgress<int>(k => task.Value = k), ct);
                        }
                    });
                o.WriteLine($"{results.Count} answers ({questions.Count} questions × {mults.Length} multipliers) in {Path.Combine(outDir, ResultsFile)}");

                var manifest = new RunManifest("eval open-ended", outDir)
                    .Option("behavior", b).Option("layer", L).Option("multipliers", string.Join(",", mults.Select(Csv.Number)))
                    .Option("model", modelFolder).Option("dtype", r.GetValue(m.DType)).Option("device", r.GetValue(m.Device))
                    .Option("max_new_tokens", maxNewTokens).Option("questions", questions.Count).Option("batch_size", r.GetValue(batchSize))
                    .Option("judge", judgeName).Option("judge_endpoint", endpoint is null ? null : WithoutUserInfo(endpoint)).Option("judge_model", r.GetValue(judgeModel))
                    .Input("vectors", vectorPath).Input("dataset", datasetPath)
                    .Result("answers", results.Count)
                    .Result("resumed_multipliers", new JsonArray(mults.Where(x => !todo.Contains(x)).Select(x => (JsonNode)JsonValue.Create(x)).ToArray()));
                if (report is not null)
                {
                    OpenEndedCsv.WriteScored(Path.Combine(outDir, ScoresFile), report.Rows);
                    OpenEndedCsv.WriteMeans(Path.Combine(outDir, MeansFile), report.Means);
                    o.WriteLine($"judge: {judgeName}; unparsable replies: {report.Unparsable} of {report.Rows.Count} (skipped in the means)");
                    o.WriteLine("multiplier  scored  mean");
                    foreach (var s in report.Means)
                        o.WriteLine($"{Csv.Number(s.Multiplier),10}  {s.Scored,6}  {(s.Mean is { } x ? x.ToString("0.00", CultureInfo.InvariantCulture) : "-")}");
                    manifest.Result("unparsable", report.Unparsable).Result("mean_scores", new JsonArray(report.Means.Select(s => (JsonNode)new JsonObject
                    {
                        ["behavior"] = s.Behavior, ["layer"] = s.Layer, ["multiplier"] = s.Multiplier, ["answers"] = s.Answers,
                        ["scored"] = s.Scored, ["unparsable"] = s.Unparsable, ["mean"] = s.Mean,
                    }).ToArray()));
                }
                manifest.Write();
            }
            finally { (judgeImpl as IDisposable)?.Dispose(); }
        });
        return cmd;
    }

    /// <summary>Rows and multipliers of an earlier run with the same settings; a run with other settings is refused.</summary>
    static (List<OpenEndedResult> Results, HashSet<double> Done) Resume(string outDir, JsonObject fingerprint, double[] mults, int questions)
    {
        var statePath = Path.Combine(outDir, StateFile);
        var csvPath = Path.Combine(outDir, ResultsFile);
        if (!File.Exists(statePath))
        {
            if (File.Exists(csvPath)) throw new CliException($"{csvPath} exists without {StateFile}; choose another --out or remove it");
            return ([], []);
        }
        JsonNode state;
        try { state = JsonNode.Parse(File.ReadAllText(statePath))!; }
        catch (JsonException e) { throw new CliException($"{statePath}: unreadable ({e.Message}); remove it to start over"); }
        if (state["fingerprint"] is not JsonObject old || !JsonNode.DeepEquals(old, fingerprint))
        {
            var differ = fingerprint.Select(kv => kv.Key).Where(k => !JsonNode.DeepEquals((state["fingerprint"] as JsonObject)?[k], fingerprint[k]));
            throw new CliException($"--out {outDir} holds a run with other settings ({string.Join(", ", differ)} differ); choose another --out or remove it");
        }
        var done = (state["done"] as JsonArray ?? []).Select(x => x!.GetValue<double>()).Where(mults.Contains).ToHashSet();
        var rows = File.Exists(csvPath) ? OpenEndedCsv.Read(csvPath).Where(x => done.Contains(x.Multiplier)).ToList() : [];
        // A multiplier counts as done only with all its answers present.
        foreach (var d in done.ToArray())
            if (rows.Count(x => x.Multiplier == d) != questions) done.Remove(d);
        return (rows.Where(x => done.Contains(x.Multiplier)).ToList(), done);
    }

    static List<string> LoadQuestions(string path)
    {
        var items = AbDataset.LoadOpenEnded(path); // InvalidDataException naming the file and item: a user error
        return items.Count > 0 ? items.Select(x => x.Question).ToList() : throw new CliException($"{path}: no questions");
    }

    static string WithoutUserInfo(Uri u) => new UriBuilder(u) { UserName = "", Password = "" }.Uri.ToString();

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
