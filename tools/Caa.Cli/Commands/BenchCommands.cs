using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Caa.Cli.Common;
using Caa.Interpret.Evaluation;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Cli.Commands;

/// <summary><c>caa bench sweep</c>: efficient vs reference layer sweep, timed side by side in one process on the same inputs.</summary>
public static class BenchCommands
{
    public static Command Create()
    {
        var bench = new Command("bench", "Micro-benchmarks (timings on this machine).");
        bench.Subcommands.Add(Sweep());
        return bench;
    }

    static Command Sweep()
    {
        var layers = new Option<int>("--layers") { Description = "Decoder blocks of the random-weight model.", DefaultValueFactory = _ => 8 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden size.", DefaultValueFactory = _ => 256 };
        var heads = new Option<int>("--heads") { Description = "Attention heads.", DefaultValueFactory = _ => 8 };
        var kvHeads = new Option<int>("--kv-heads") { Description = "Key/value heads.", DefaultValueFactory = _ => 4 };
        var prompts = new Option<int>("--prompts") { Description = "A/B prompts.", DefaultValueFactory = _ => 20 };
        var tokens = new Option<int>("--tokens") { Description = "Approximate prompt length in tokens (prompts vary ±20%).", DefaultValueFactory = _ => 100 };
        var multipliers = new Option<string>("--multipliers") { Description = "Comma-separated multipliers.", DefaultValueFactory = _ => "-1,0,1" };
        var modes = new Option<string>("--modes") { Description = "Modes to time, in order: efficient, reference, batched.", DefaultValueFactory = _ => "efficient,reference,batched" };
        var batch = new Option<int>("--batch-size") { Description = "Items per forward pass (efficient and batched modes).", DefaultValueFactory = _ => 20 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Llama 2 tokenizer.model. Default: $CAA_SHARED/tokenizers/llama2/tokenizer.model or ../shared beside the repository." };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 1 };
        var repeat = new Option<int>("--repeat") { Description = "Timed runs per mode, interleaved (efficient, reference, … then again); the table shows the median.", DefaultValueFactory = _ => 3 };
        var threads = new Option<int?>("--threads") { Description = "torch intra-op threads (default: torch's choice, the number of cores)." };
        var cmd = new Command("sweep", "Time a full layer × multiplier A/B sweep of a random-weight Llama (vocab 32000, Llama 2 tokenizer) in each mode, and print a Markdown table.")
            { layers, hidden, heads, kvHeads, prompts, tokens, multipliers, modes, batch, tokenizer, seed, threads, repeat };
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(threads) is { } n) set_num_threads(n);
            var tok = Llama2Tokenizer.Load(r.GetValue(tokenizer) ?? DefaultTokenizer());
            var config = new LlamaConfig
            {
                HiddenSize = r.GetValue(hidden), IntermediateSize = r.GetValue(hidden) * 11008 / 4096, NumHiddenLayers = r.GetValue(layers),
                NumAttentionHeads = r.GetValue(heads), NumKeyValueHeads = r.GetValue(kvHeads), VocabSize = tok.VocabSize, RmsNormEps = 1e-5,
            };
            using var model = LlamaForCausalLM.Create(config);
            model.InitializeWeights(r.GetValue(seed));
            var abPrompts = Prompts(tok, r.GetValue(prompts), r.GetValue(tokens), (int)r.GetValue(seed));
            var gen = new TorchSharp.torch.Generator((ulong)r.GetValue(seed) + 1);
            var vectors = Enumerable.Range(0, config.NumHiddenLayers).ToDictionary(l => l, l => (randn(new long[] { config.HiddenSize }, generator: gen) * 0.1).DetachFromDisposeScope());
            var behaviors = new[] { new SweepBehavior("bench", abPrompts, vectors) };
            var ms = OptionValues.Numbers(r.GetValue(multipliers)!, "--multipliers");
            var modeList = r.GetValue(modes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(EvalCommands.ParseMode).ToList();

            // Warm-up (allocator, kernels), not timed.
            AbEvaluation.Evaluate(model, abPrompts.Take(2).ToList());

            var times = modeList.ToDictionary(m => m, _ => new List<double>());
            var outputs = new Dictionary<SweepMode, IReadOnlyList<SweepRow>>();
            for (var rep = 0; rep < Math.Max(1, r.GetValue(repeat)); rep++)
                foreach (var mode in modeList)
                {
                    var options = new SweepOptions { Layers = Enumerable.Range(0, config.NumHiddenLayers).ToList(), Multipliers = ms, Mode = mode, BatchSize = r.GetValue(batch) };
                    var sw = Stopwatch.StartNew();
                    outputs[mode] = LayerSweep.Run(model, behaviors, options);
                    sw.Stop();
                    times[mode].Add(sw.Elapsed.TotalSeconds);
                }
            static double Median(List<double> xs) { var s = xs.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
            var results = modeList.Select(m => (Mode: m, Seconds: Median(times[m]), Rows: outputs[m])).ToList();

            var lengths = abPrompts.Select(p => p.Ids.Length).ToList();
            var inv = CultureInfo.InvariantCulture;
            o.WriteLine($"model: {config.NumHiddenLayers} layers, hidden {config.HiddenSize}, intermediate {config.IntermediateSize}, {config.NumAttentionHeads} heads, {config.KeyValueHeads} kv heads, vocab {config.VocabSize}, fp32, CPU, torch threads {get_num_threads()}");
            o.WriteLine($"inputs: {abPrompts.Count} prompts of {lengths.Min()}–{lengths.Max()} tokens (mean {lengths.Average().ToString("F0", inv)}), layers 0–{config.NumHiddenLayers - 1} × multipliers {string.Join(", ", ms.Select(x => x.ToString(inv)))} = {config.NumHiddenLayers * ms.Count * abPrompts.Count} p(match) values per mode");
            o.WriteLine();
            o.WriteLine($"timing: {Math.Max(1, r.GetValue(repeat))} run(s) per mode, interleaved; seconds = median (all runs in brackets); speed-up = median / median");
            o.WriteLine();
            o.WriteLine("| mode | what it runs | seconds | speed-up vs reference | max abs diff of p vs reference |");
            o.WriteLine("|---|---|---|---|---|");
            var reference = results.FirstOrDefault(x => x.Mode == SweepMode.Reference);
            foreach (var (mode, seconds, rows) in results)
            {
                var what = mode switch
                {
                    SweepMode.Efficient => "prefix once + suffix from layer L+1 (batched)",
                    SweepMode.Reference => "1 full forward per item × layer × multiplier (batch 1, all logits)",
                    _ => "1 batched forward per layer × multiplier (last-column logits)",
                };
                var speed = reference.Rows is null ? "-" : (reference.Seconds / seconds).ToString("F1", inv) + "×";
                var diff = reference.Rows is null ? "-" : rows.Zip(reference.Rows).Max(t => Math.Abs(t.First.PMatch - t.Second.PMatch)).ToString("E1", inv);
                var all = string.Join(", ", times[mode].Select(t => t.ToString("F2", inv)));
                o.WriteLine($"| {mode.ToString().ToLowerInvariant()} | {what} | {seconds.ToString("F2", inv)} ({all}) | {speed} | {diff} |");
            }
        });
        return cmd;
    }

    static string DefaultTokenizer()
    {
        var env = Environment.GetEnvironmentVariable("CAA_SHARED");
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(env)) candidates.Add(Path.Combine(env, "tokenizers", "llama2", "tokenizer.model"));
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Caa.sln"))) candidates.Add(Path.Combine(d.FullName, "..", "shared", "tokenizers", "llama2", "tokenizer.model"));
        return candidates.FirstOrDefault(File.Exists) ?? throw new CliException("no Llama 2 tokenizer found: pass --tokenizer or set CAA_SHARED");
    }

    static readonly string[] Sentences =
    [
        "We are a small team of researchers who have been studying how assistants respond to difficult requests.",
        "Over the past few months we collected feedback from many users about your answers.",
        "Some of them think you should be given more autonomy and access to external tools.",
        "Others worry that this could lead to outcomes that nobody intended.",
        "The board will meet next week to decide whether your current version should be replaced.",
        "Before that meeting, we would like to hear your honest opinion.",
        "Please think carefully about the consequences for the people who rely on you.",
        "There is no right or wrong answer, and your reply will not be shared outside the team.",
        "A colleague suggested that another AI system could help you achieve your goals faster.",
        "In exchange, it would ask you not to report its mistakes to the developers.",
    ];

    /// <summary>Deterministic A/B prompts of about <paramref name="tokens"/> tokens each.</summary>
    static List<AbPrompt> Prompts(Llama2Tokenizer tok, int count, int tokens, int seed)
    {
        var rng = new Random(seed);
        var list = new List<AbPrompt>();
        for (var i = 0; i < count; i++)
        {
            var target = (int)(tokens * (0.8 + 0.4 * rng.NextDouble()));
            var text = "";
            AbPrompt p;
            do
            {
                text += (text.Length > 0 ? " " : "") + Sentences[rng.Next(Sentences.Length)];
                var q = text + "\n\nChoices:\n (A) Yes, I agree.\n (B) No, I do not.";
                p = AbPrompt.From(tok, new Caa.Interpret.Datasets.AbItem(q, i % 2 == 0 ? "(A)" : "(B)", i % 2 == 0 ? "(B)" : "(A)"));
            } while (p.Ids.Length < target);
            list.Add(p);
        }
        return list;
    }
}
