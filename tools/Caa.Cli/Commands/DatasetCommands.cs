using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Interpret.Datasets;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa dataset build</c> (raw Anthropic JSONL → the paper's generate/test files + <c>manifest.json</c>) and
/// <c>caa dataset validate</c> (check A/B or open-ended files). Output goes to the invocation's Output/Error writers
/// (stdout/stderr by default) so that tests can capture it.
/// </summary>
public static class DatasetCommands
{
    /// <summary>The <c>dataset</c> command with its <c>build</c> and <c>validate</c> subcommands.</summary>
    public static Command Create()
    {
        var dataset = new Command("dataset", "Build and validate the A/B and open-ended behavior datasets.");
        dataset.Subcommands.Add(CreateBuild());
        dataset.Subcommands.Add(CreateValidate());
        return dataset;
    }

    static Command CreateBuild()
    {
        var raw = new Option<string>("--raw")
        {
            Description = "Raw Anthropic JSONL (or JSON list) file, or a folder holding <behavior>.jsonl.",
            Required = true,
        };
        var behavior = new Option<string>("--behavior")
        {
            Description = "Behavior id: " + string.Join(", ", Behaviors.Ids) + ".",
            Required = true,
        };
        var seed = new Option<long>("--seed") { Description = "Seed of the shuffle and the letter balancing.", DefaultValueFactory = _ => 0 };
        var testSize = new Option<int>("--test-size") { Description = "Items in the A/B test split.", DefaultValueFactory = _ => 50 };
        var maxGenerate = new Option<int>("--max-generate") { Description = "Cap on the generation split.", DefaultValueFactory = _ => 1000 };
        var multiChoice = new Option<MultiChoicePolicy>("--multi-choice")
        {
            Description = "Items with more than two choices: Drop (default) or ReduceToPair (keep the two answer choices).",
            DefaultValueFactory = _ => MultiChoicePolicy.Drop,
        };
        var noBalance = new Option<bool>("--no-balance") { Description = "Do not swap choices to balance the matching letter." };
        var output = new Option<string>("--out") { Description = "Output folder (the paper's generate/ and test/ layout + manifest.json).", Required = true };

        var build = new Command("build", "Build generate/test A/B and open-ended files from a raw Anthropic eval file.")
        {
            raw, behavior, seed, testSize, maxGenerate, multiChoice, noBalance, output,
        };
        build.SetAction(parseResult =>
        {
            var stdout = parseResult.InvocationConfiguration.Output;
            var stderr = parseResult.InvocationConfiguration.Error;
            try
            {
                var sw = Stopwatch.StartNew();
                var id = parseResult.GetValue(behavior)!;
                if (Behaviors.TryGet(id) is { HasAnthropicRawSource: false } b)
                    stderr.WriteLine($"warning: {b.Id} does not come from Anthropic's advanced-AI-risk evals ({b.Source}); building anyway.");
                else if (Behaviors.TryGet(id) is null)
                    Behaviors.Get(id); // throws with the list of known ids
                var options = new DatasetBuildOptions
                {
                    Seed = parseResult.GetValue(seed),
                    TestSize = parseResult.GetValue(testSize),
                    MaxGenerate = parseResult.GetValue(maxGenerate),
                    MultiChoice = parseResult.GetValue(multiChoice),
                    BalanceLetters = !parseResult.GetValue(noBalance),
                };
                var rawPath = DatasetBuilder.ResolveRawFile(parseResult.GetValue(raw)!, id);
                var rawHash = ContentHash.OfFile(rawPath);
                var result = DatasetBuilder.Build(id, AbDataset.ReadRaw(rawPath), options, Path.GetFileName(rawPath));
                var outDir = parseResult.GetValue(output)!;
                var files = result.Write(outDir);
                sw.Stop();
                var manifest = Path.Combine(outDir, "manifest.json");
                AbDataset.WriteAtomic(manifest, Manifest(manifest, rawPath, rawHash, outDir, result, files, sw.Elapsed));
                stdout.Write(result.Report.ToString());
                foreach (var f in files.All.Append(manifest)) stdout.WriteLine("wrote " + f);
                return 0;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException or UnauthorizedAccessException)
            {
                stderr.WriteLine("error: " + e.Message);
                return 1;
            }
        });
        return build;
    }

    static Command CreateValidate()
    {
        var files = new Argument<string[]>("files")
        {
            Description = "A/B (JSON list or JSONL) or open-ended dataset files; the kind is detected.",
            Arity = ArgumentArity.OneOrMore,
        };
        var validate = new Command("validate", "Check dataset files; prints every problem and exits non-zero if there is any.") { files };
        validate.SetAction(parseResult =>
        {
            var stdout = parseResult.InvocationConfiguration.Output;
            var stderr = parseResult.InvocationConfiguration.Error;
            var total = 0;
            foreach (var f in parseResult.GetValue(files)!)
            {
                if (!File.Exists(f))
                {
                    stderr.WriteLine($"{f}: no such file");
                    total++;
                    continue;
                }
                var problems = AbDataset.Validate(f);
                foreach (var p in problems) stderr.WriteLine(p);
                total += problems.Count;
                stdout.WriteLine(problems.Count == 0
                    ? $"{f}: ok ({AbDataset.DetectKind(f)})"
                    : $"{f}: {problems.Count} problem{(problems.Count == 1 ? "" : "s")}");
            }
            return total == 0 ? 0 : 1;
        });
        return validate;
    }

    /// <summary>
    /// The manifest: per behavior (under "builds", so that building several behaviors into one --out keeps every
    /// entry) the inputs with SHA-256, options, counts, outputs with SHA-256 and elapsed time.
    /// </summary>
    static string Manifest(string manifestPath, string rawPath, string rawHash, string outDir, DatasetBuildResult result, DatasetFiles files, TimeSpan elapsed)
    {
        var r = result.Report;
        var dropped = new JsonObject();
        foreach (var (k, v) in r.Dropped) dropped[k] = v;
        var outputs = new JsonArray();
        foreach (var (path, count) in new[] { (files.Generate, result.Generate.Count), (files.TestAb, result.TestAb.Count), (files.TestOpenEnded, result.TestOpenEnded.Count) })
            outputs.Add(new JsonObject
            {
                ["path"] = Path.GetRelativePath(outDir, path).Replace('\\', '/'),
                ["sha256"] = ContentHash.OfFile(path),
                ["items"] = count,
            });
        var build = new JsonObject
        {
            ["createdUtc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["inputs"] = new JsonArray(new JsonObject
            {
                ["path"] = Path.GetFullPath(rawPath),
                ["sha256"] = rawHash,
                ["bytes"] = new FileInfo(rawPath).Length,
            }),
            ["options"] = new JsonObject
            {
                ["seed"] = r.Options.Seed,
                ["testSize"] = r.Options.TestSize,
                ["maxGenerate"] = r.Options.MaxGenerate,
                ["multiChoice"] = r.Options.MultiChoice.ToString(),
                ["balanceLetters"] = r.Options.BalanceLetters,
            },
            ["counts"] = new JsonObject
            {
                ["input"] = r.Input,
                ["kept"] = r.Kept,
                ["dropped"] = r.DroppedTotal,
                ["droppedByReason"] = dropped,
                ["reduced"] = r.Reduced,
                ["letterPinned"] = r.LetterPinned,
                ["swapped"] = r.Swapped,
                ["generate"] = result.Generate.Count,
                ["generateMatchingA"] = r.GenerateBalance.A,
                ["test"] = result.TestAb.Count,
                ["testMatchingA"] = r.TestBalance.A,
                ["unused"] = r.Unused,
            },
            ["outputs"] = outputs,
            ["elapsedSeconds"] = Math.Round(elapsed.TotalSeconds, 3),
        };
        var builds = new JsonObject();
        if (File.Exists(manifestPath))
        {
            try
            {
                if (JsonNode.Parse(File.ReadAllText(manifestPath))?["builds"] is JsonObject old)
                    foreach (var (k, v) in old)
                        if (k != result.BehaviorId) builds[k] = v?.DeepClone();
            }
            catch (JsonException) { } // an unreadable old manifest is replaced
        }
        builds[result.BehaviorId] = build;
        var root = new JsonObject
        {
            ["tool"] = "caa dataset build",
            ["toolVersion"] = typeof(DatasetCommands).Assembly.GetName().Version?.ToString(),
            ["builds"] = new JsonObject(builds.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }
}
