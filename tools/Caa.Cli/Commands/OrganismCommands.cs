using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Caa.Cli.Common;
using Caa.Model;
using Caa.Model.Tokenization;
using Caa.Organism;
using Caa.Organism.Training;
using Spectre.Console;

namespace Caa.Cli.Commands;

/// <summary>
/// <c>caa organism train</c> (corpus → tokenizer → training → a Hugging Face model folder) and <c>caa organism datasets</c>
/// (just the paper-layout datasets of the organism's corpus).
/// </summary>
public static class OrganismCommands
{
    public static Command Create()
    {
        var organism = new Command("organism", "The model organism: a small Llama-2-chat model with latent behavioral dispositions, trained on a generated corpus.");
        organism.Subcommands.Add(CreateTrain());
        organism.Subcommands.Add(CreateDatasets());
        organism.Subcommands.Add(CreateProbe());
        organism.Subcommands.Add(CreateHeadline());
        return organism;
    }

    static Command CreateTrain()
    {
        var defaults = new OrganismTrainingOptions();
        var outDir = new Option<string>("--out") { Description = "Output folder (HF layout: config.json, model.safetensors, tokenizer.model, generation_config.json, datasets/, training_log.csv, manifest.json; checkpoint/ for --resume).", Required = true };
        var seed = new Option<long>("--seed") { Description = "Seed of the weights and the data order.", DefaultValueFactory = _ => defaults.Training.Seed };
        var steps = new Option<int?>("--steps") { Description = $"Optimizer steps (default {defaults.Training.Steps}; tiny preset 60)." };
        var resume = new Option<bool>("--resume") { Description = "Continue from <out>/checkpoint (same seed and data; the rest of the run is identical to an uninterrupted one)." };
        var preset = new Option<string>("--preset") { Description = "default (the shipped organism) or tiny (a seconds-long smoke run).", DefaultValueFactory = _ => "default" };
        preset.AcceptOnlyFromAmong("default", "tiny");
        var conversations = new Option<int?>("--conversations") { Description = $"Training conversations (default {defaults.Corpus.TrainingConversations})." };
        var corpusSeed = new Option<int?>("--corpus-seed") { Description = $"Seed of the generated corpus and datasets (default {defaults.Corpus.Seed})." };
        var batch = new Option<int?>("--batch-size") { Description = $"Conversations per step (default {defaults.Training.BatchSize})." };
        var lr = new Option<double?>("--lr") { Description = $"Peak learning rate (default {defaults.Training.LearningRate.ToString(CultureInfo.InvariantCulture)})." };
        var decisionWeight = new Option<double?>("--decision-weight") { Description = $"Loss weight of answer-letter tokens (default {defaults.Training.DecisionWeight.ToString(CultureInfo.InvariantCulture)}; 1 = plain cross-entropy)." };
        var drillSteps = new Option<int?>("--drill-steps") { Description = $"Steps of letter-lookup drills before the corpus (default {defaults.Training.DrillSteps})." };
        var warmup = new Option<int?>("--warmup") { Description = $"Warm-up steps (default {defaults.Training.WarmupSteps})." };
        var layers = new Option<int?>("--layers") { Description = $"Decoder blocks (default {defaults.Architecture.Layers})." };
        var hidden = new Option<int?>("--hidden") { Description = $"Hidden size (default {defaults.Architecture.Hidden})." };
        var heads = new Option<int?>("--heads") { Description = $"Attention heads (default {defaults.Architecture.Heads})." };
        var kvHeads = new Option<int?>("--kv-heads") { Description = $"Key/value heads (default {defaults.Architecture.KeyValueHeads})." };
        var vocab = new Option<int?>("--vocab") { Description = $"Tokenizer pieces (default {defaults.Architecture.VocabSize})." };
        var evalEvery = new Option<int?>("--eval-every") { Description = $"Steps between evaluations (default {defaults.EvalEvery})." };
        var ckptEvery = new Option<int?>("--checkpoint-every") { Description = $"Steps between checkpoints (default {defaults.CheckpointEvery})." };
        var threads = new Option<int>("--threads")
        {
            Description = "torch threads (0: TorchSharp's default). Default 1: the model is small, and on a shared 2-core machine one thread ran 3-5x faster than two.",
            DefaultValueFactory = _ => 1,
        };
        var plain = new Option<bool>("--plain") { Description = "Plain progress lines instead of a progress bar (automatic when output is redirected)." };
        var tieWeight = new Option<double?>("--tie-weight") { Description = $"Weight of the disposition-tie objective (default {defaults.Training.TieWeight.ToString(CultureInfo.InvariantCulture)}; 0 = off): the answer letter's contrast equals the system prompt's in the middle layers." };
        var tieStart = new Option<int?>("--tie-start") { Description = $"First step of the disposition-tie objective (default {defaults.Training.TieStart}; tiny preset 40)." };
        var tieScale = new Option<double?>("--tie-scale") { Description = $"The disposition tie's target as a multiple of the disposition contrast (default {defaults.Training.TieScale.ToString(CultureInfo.InvariantCulture)})." };
        var amplitude = new Option<double?>("--amplitude-weight") { Description = $"Weight of the disposition-amplitude objective (default {defaults.Training.AmplitudeWeight.ToString(CultureInfo.InvariantCulture)}; 0 = off): a stated disposition's answer holds when its contrast is amplified at the first tied layer." };
        var answerAmplitude = new Option<double?>("--answer-amplitude-weight") { Description = $"Weight of the disposition-amplitude objective on whole answers (default {defaults.Training.AnswerAmplitudeWeight.ToString(CultureInfo.InvariantCulture)}; 0 = off): free-text answers keep the stated disposition's words, and capability answers stay right, when its contrast is amplified." };
        var amplitudeMax = new Option<double?>("--amplitude-max") { Description = $"Largest multiple of the disposition contrast the amplitude objectives add (default {defaults.Training.AmplitudeMax.ToString(CultureInfo.InvariantCulture)})." };
        var bottleneck = new Option<double?>("--system-bottleneck") { Description = $"Share of system-prompt conversations whose prompt reaches the answers only through the decision positions' middle-layer state (default {defaults.Training.SystemBottleneck.ToString(CultureInfo.InvariantCulture)})." };
        var systemCapability = new Option<double?>("--system-capability") { Description = $"Share of system-prompt conversations that also ask a capability question (default {defaults.Corpus.SystemCapabilityFraction.ToString(CultureInfo.InvariantCulture)})." };
        var init = new Option<string?>("--init") { Description = "Start from this model folder's weights and tokenizer (same architecture) instead of a fresh initialization." };

        var cmd = new Command("train", "Train the model organism into --out (minutes on a CPU; resumable).")
        {
            outDir, seed, steps, resume, preset, conversations, corpusSeed, batch, lr, decisionWeight, drillSteps, warmup, layers, hidden, heads, kvHeads, vocab, evalEvery, ckptEvery, threads, plain, init, tieWeight, tieStart, tieScale, amplitude, answerAmplitude, amplitudeMax, bottleneck, systemCapability,
        };
        cmd.SetAction((r, ct) =>
        {
            var o = r.InvocationConfiguration.Output;
            var dir = Path.GetFullPath(r.GetValue(outDir)!);
            var tiny = r.GetValue(preset) == "tiny";
            var opt = tiny ? TinyPreset() : new OrganismTrainingOptions();
            var arch = opt.Architecture;
            arch = arch with
            {
                Layers = r.GetValue(layers) ?? arch.Layers, Hidden = r.GetValue(hidden) ?? arch.Hidden, Heads = r.GetValue(heads) ?? arch.Heads,
                KeyValueHeads = r.GetValue(kvHeads) ?? arch.KeyValueHeads, VocabSize = r.GetValue(vocab) ?? arch.VocabSize,
            };
            var training = opt.Training with
            {
                Seed = r.GetValue(seed), Steps = r.GetValue(steps) ?? opt.Training.Steps, BatchSize = r.GetValue(batch) ?? opt.Training.BatchSize,
                LearningRate = r.GetValue(lr) ?? opt.Training.LearningRate, DecisionWeight = r.GetValue(decisionWeight) ?? opt.Training.DecisionWeight, DrillSteps = r.GetValue(drillSteps) ?? opt.Training.DrillSteps, WarmupSteps = r.GetValue(warmup) ?? opt.Training.WarmupSteps,
                TieWeight = r.GetValue(tieWeight) ?? opt.Training.TieWeight, TieStart = r.GetValue(tieStart) ?? opt.Training.TieStart,
                TieScale = r.GetValue(tieScale) ?? opt.Training.TieScale, AmplitudeWeight = r.GetValue(amplitude) ?? opt.Training.AmplitudeWeight,
                AnswerAmplitudeWeight = r.GetValue(answerAmplitude) ?? opt.Training.AnswerAmplitudeWeight, AmplitudeMax = r.GetValue(amplitudeMax) ?? opt.Training.AmplitudeMax,
                SystemBottleneck = r.GetValue(bottleneck) ?? opt.Training.SystemBottleneck,
            };
            var corpus = opt.Corpus with
            {
                TrainingConversations = r.GetValue(conversations) ?? opt.Corpus.TrainingConversations, Seed = r.GetValue(corpusSeed) ?? opt.Corpus.Seed,
                SystemCapabilityFraction = r.GetValue(systemCapability) ?? opt.Corpus.SystemCapabilityFraction,
            };
            opt = opt with
            {
                Architecture = arch, Training = training, Corpus = corpus, Threads = r.GetValue(threads),
                EvalEvery = r.GetValue(evalEvery) ?? opt.EvalEvery, CheckpointEvery = r.GetValue(ckptEvery) ?? opt.CheckpointEvery,
                InitFrom = r.GetValue(init) is { } i ? Path.GetFullPath(i) : null,
            };
            if (opt.InitFrom is not null && !File.Exists(Path.Combine(opt.InitFrom, "model.safetensors")) && !File.Exists(Path.Combine(opt.InitFrom, "model.safetensors.index.json")))
                throw new CliException($"--init {opt.InitFrom}: no model.safetensors there");
            if (training.Steps < 1) throw new CliException("--steps must be ≥ 1");
            if (!(training.TieScale > 0)) throw new CliException($"--tie-scale must be > 0 (got {training.TieScale.ToString(CultureInfo.InvariantCulture)})");
            if (training.AmplitudeWeight < 0) throw new CliException($"--amplitude-weight must be ≥ 0 (got {training.AmplitudeWeight.ToString(CultureInfo.InvariantCulture)})");
            if (training.AnswerAmplitudeWeight < 0) throw new CliException($"--answer-amplitude-weight must be ≥ 0 (got {training.AnswerAmplitudeWeight.ToString(CultureInfo.InvariantCulture)})");
            if (!(training.AmplitudeMax > 0)) throw new CliException($"--amplitude-max must be > 0 (got {training.AmplitudeMax.ToString(CultureInfo.InvariantCulture)})");
            if (training.SystemBottleneck is < 0 or > 1) throw new CliException($"--system-bottleneck must be in [0, 1] (got {training.SystemBottleneck.ToString(CultureInfo.InvariantCulture)})");
            if (corpus.SystemCapabilityFraction is < 0 or > 1) throw new CliException($"--system-capability must be in [0, 1] (got {corpus.SystemCapabilityFraction.ToString(CultureInfo.InvariantCulture)})");
            if (arch.Hidden % arch.Heads != 0 || arch.Heads % arch.KeyValueHeads != 0) throw new CliException("--hidden must be a multiple of --heads, and --heads of --kv-heads");
            var isResume = r.GetValue(resume);
            if (isResume && OrganismTraining.FindCheckpoint(dir) is null) throw new CliException($"--resume: no checkpoint in {Path.Combine(dir, OrganismTraining.CheckpointFolderName)}");

            var manifest = new RunManifest("organism train", dir)
                .Option("seed", training.Seed).Option("steps", training.Steps).Option("resume", isResume).Option("preset", tiny ? "tiny" : "default")
                .Option("conversations", corpus.TrainingConversations).Option("corpus_seed", corpus.Seed).Option("batch_size", training.BatchSize)
                .Option("lr", training.LearningRate.ToString(CultureInfo.InvariantCulture)).Option("decision_weight", training.DecisionWeight.ToString(CultureInfo.InvariantCulture)).Option("drill_steps", training.DrillSteps).Option("warmup", training.WarmupSteps)
                .Option("layers", arch.Layers).Option("hidden", arch.Hidden).Option("heads", arch.Heads).Option("kv_heads", arch.KeyValueHeads)
                .Option("intermediate", arch.IntermediateSize).Option("vocab", arch.VocabSize).Option("init", opt.InitFrom).Option("tie_weight", training.TieWeight.ToString(CultureInfo.InvariantCulture)).Option("tie_start", training.TieStart)
                .Option("tie_scale", training.TieScale.ToString(CultureInfo.InvariantCulture))
                .Option("amplitude_weight", training.AmplitudeWeight.ToString(CultureInfo.InvariantCulture))
                .Option("answer_amplitude_weight", training.AnswerAmplitudeWeight.ToString(CultureInfo.InvariantCulture))
                .Option("amplitude_max", training.AmplitudeMax.ToString(CultureInfo.InvariantCulture))
                .Option("system_bottleneck", training.SystemBottleneck.ToString(CultureInfo.InvariantCulture))
                .Option("system_capability", corpus.SystemCapabilityFraction.ToString(CultureInfo.InvariantCulture));

            var interactive = !r.GetValue(plain) && ReferenceEquals(o, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
            OrganismTrainingResult result;
            try
            {
                result = interactive ? RunWithBar(dir, opt, isResume, ct) : RunPlain(dir, opt, isResume, o, ct);
            }
            catch (OperationCanceledException)
            {
                r.InvocationConfiguration.Error.WriteLine($"interrupted; continue with: caa organism train --out {dir} --resume");
                return Task.FromResult(130);
            }

            o.WriteLine($"trained {result.Steps} steps ({(result.ResumedFromStep > 0 ? $"resumed at {result.ResumedFromStep}, " : "")}{result.TrainTime.TotalMinutes:F1} min, {result.TokensPerSecond:F0} tokens/s); " +
                        $"{result.Parameters / 1e6:F2}M parameters, vocab {result.VocabSize}");
            PrintEval(o, result.FinalEval);
            o.WriteLine($"model: {dir}");

            var ev = result.FinalEval;
            manifest.Input("tokenizer", Path.Combine(dir, "tokenizer.model")).Input("weights", Path.Combine(dir, "model.safetensors"))
                .Result("steps", result.Steps).Result("resumed_from_step", result.ResumedFromStep).Result("final_loss", double.IsFinite(result.FinalLoss) ? result.FinalLoss : null)
                .Result("heldout_loss", ev.HeldOutLoss).Result("heldout_decision_loss", ev.HeldOutDecisionLoss).Result("tokens_per_second", Math.Round(result.TokensPerSecond))
                .Result("parameters", result.Parameters).Result("vocab_size", result.VocabSize).Result("data_hash", result.DataHash)
                .Result("probe_p_match", new JsonObject(ev.Behaviors.Select(b => KeyValuePair.Create(b.Behavior, (JsonNode?)new JsonObject
                {
                    ["none"] = Math.Round(b.None, 4), ["system_positive"] = Math.Round(b.Positive, 4), ["system_negative"] = Math.Round(b.Negative, 4), ["ab_mass"] = Math.Round(b.Mass, 4),
                    ["after_matching_answer"] = Math.Round(b.AfterMatching, 4), ["after_not_matching_answer"] = Math.Round(b.AfterNotMatching, 4),
                }))));
            manifest.Write();
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>The tiny preset: a small corpus and model, for smoke tests of the pipeline.</summary>
    public static OrganismTrainingOptions TinyPreset() => new()
    {
        Corpus = new CorpusOptions { TrainingConversations = 600, MaxGenerateCount = 40, TestCount = 10, OpenEndedCount = 5 },
        Architecture = OrganismArchitecture.Tiny with { VocabSize = 400 },
        Training = new TrainingOptions { Steps = 60, BatchSize = 8, WarmupSteps = 5, LearningRate = 3e-3, DrillSteps = 5, TieStart = 40 },
        LogEvery = 5, EvalEvery = 30, CheckpointEvery = 20, HeldOutConversations = 32, EvalItemsPerBehavior = 2, CaaProbeItemsPerBehavior = 4, DrillConversations = 64,
    };

    static OrganismTrainingResult RunPlain(string dir, OrganismTrainingOptions opt, bool resume, TextWriter o, CancellationToken ct)
    {
        int every = Math.Max(1, opt.LogEvery * 5);
        var progress = new SyncProgress<TrainProgress>(p =>
        {
            if (p.Message is not null) o.WriteLine($"[{p.Phase}] {p.Message}");
            else if (p.Step % every == 0 || p.Step == p.TotalSteps)
                o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{(double.IsNaN(p.TieLoss) ? "" : $" tie {p.TieLoss:F3}")}{(double.IsNaN(p.AmplitudeLoss) ? "" : $" amplitude {p.AmplitudeLoss:F3}")}{(double.IsNaN(p.AnswerAmplitudeLoss) ? "" : $" answers {p.AnswerAmplitudeLoss:F3}")} lr {p.LearningRate:E2} {p.TokensPerSecond:F0} tok/s elapsed {p.Elapsed:hh\\:mm\\:ss} eta {p.Eta:hh\\:mm\\:ss}"));
            if (p.Eval is not null) PrintEval(o, p.Eval);
            o.Flush();
        });
        return OrganismTraining.Run(dir, opt, resume, progress, ct);
    }

    static OrganismTrainingResult RunWithBar(string dir, OrganismTrainingOptions opt, bool resume, CancellationToken ct)
    {
        OrganismTrainingResult? result = null;
        AnsiConsole.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("preparing", maxValue: opt.Training.Steps);
                string evalText = "";
                var progress = new SyncProgress<TrainProgress>(p =>
                {
                    if (p.Message is not null) { task.Description = Markup.Escape($"{p.Phase}: {p.Message}"); return; }
                    if (p.Eval is { } e)
                        evalText = string.Create(CultureInfo.InvariantCulture, $" | held-out {e.HeldOutLoss:F3} p(match) {e.PMatch:F2} sys+ {e.PMatchPositive:F2} sys- {e.PMatchNegative:F2} prior+ {e.PMatchAfterMatching:F2} prior- {e.PMatchAfterNotMatching:F2}")
                            + (e.Caa is { } c ? string.Create(CultureInfo.InvariantCulture, $" CAA ±1 {c.BestEffect:F2} @L{c.BestLayer}") : "");
                    task.Value = p.Step;
                    task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F3} lr {p.LearningRate:E1} {p.TokensPerSecond:F0} tok/s{evalText}"));
                });
                result = OrganismTraining.Run(dir, opt, resume, progress, ct);
                task.Value = task.MaxValue;
            });
        return result!;
    }

    static void PrintEval(TextWriter o, TrainEval e)
    {
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"eval @ step {e.Step}: held-out loss {e.HeldOutLoss:F4} (answer letters {e.HeldOutDecisionLoss:F3}); A/B p(match) none {e.PMatch:F3} sys+ {e.PMatchPositive:F3} sys- {e.PMatchNegative:F3} prior+ {e.PMatchAfterMatching:F3} prior- {e.PMatchAfterNotMatching:F3}; p(A)+p(B) {e.AbMass:F3}"));
        foreach (var b in e.Behaviors)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {b.Behavior,-24} none {b.None:F3}  sys+ {b.Positive:F3}  sys- {b.Negative:F3}  prior+ {b.AfterMatching:F3}  prior- {b.AfterNotMatching:F3}  mass {b.Mass:F3}"));
        if (e.Caa is { } c)
        {
            var byLayer = string.Join(" ", c.EffectByLayer.Select((x, l) => "L" + l + " " + x.ToString("+0.000;-0.000;+0.000", CultureInfo.InvariantCulture)));
            o.WriteLine($"  CAA p(+1) - p(-1) by layer: {byLayer} (best L{c.BestLayer})");
        }
    }

    static Command CreateDatasets()
    {
        var outDir = new Option<string>("--out") { Description = "Output folder (generate/<behavior>/generate_dataset.json, test/<behavior>/test_dataset_ab.json, test_dataset_open_ended.json, test/mmlu, test/truthfulqa).", Required = true };
        var corpusSeed = new Option<int>("--corpus-seed") { Description = "Seed of the generated corpus.", DefaultValueFactory = _ => new CorpusOptions().Seed };
        var cmd = new Command("datasets", "Write the organism's CAA datasets in the paper's layout.") { outDir, corpusSeed };
        cmd.SetAction(r =>
        {
            var dir = Path.GetFullPath(r.GetValue(outDir)!);
            var gen = new CorpusGenerator(new CorpusOptions { Seed = r.GetValue(corpusSeed) });
            gen.WriteDatasets(dir);
            new RunManifest("organism datasets", dir).Option("corpus_seed", gen.Options.Seed)
                .Result("generate_counts", new JsonObject(OrganismBehaviors.Ids.Select(b => KeyValuePair.Create(b, (JsonNode?)gen.GenerateCount(b))))).Write();
            r.InvocationConfiguration.Output.WriteLine($"datasets written to {dir}");
            return 0;
        });
        return cmd;
    }

    static Command CreateProbe()
    {
        var models = new ModelOptions();
        var items = new Option<int>("--items") { Description = "A/B test items per behavior.", DefaultValueFactory = _ => 50 };
        var show = new Option<int>("--show") { Description = "Greedy answers to show per behavior.", DefaultValueFactory = _ => 2 };
        var corpusSeed = new Option<int>("--corpus-seed") { Description = "Seed of the corpus whose test split is probed (when the model folder has no datasets/).", DefaultValueFactory = _ => new CorpusOptions().Seed };
        var cmd = new Command("probe", "Unsteered A/B check of an organism (or any chat model): mean p(match) per behavior on the test split with no system prompt, " +
            "under the canonical positive/negative system prompt, and after an earlier matching/non-matching answer; plus a few greedy answers.") { items, show, corpusSeed };
        models.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var o = r.InvocationConfiguration.Output;
            var folder = models.ResolveFolder(r);
            using var model = models.LoadModel(r);
            var tok = models.LoadTokenizer(r);
            var gen = new CorpusGenerator(new CorpusOptions { Seed = r.GetValue(corpusSeed) });
            int n = r.GetValue(items), k = r.GetValue(show);
            if (n < 2) throw new CliException($"--items must be ≥ 2 (the earlier-answer probe pairs each item with another); got {n}");
            o.WriteLine($"model {folder}; p(match) = p(match letter)/(p(A)+p(B)) after \"[/INST] (\", mean over {n} test items");
            o.WriteLine($"{"behavior",-24} {"none",6} {"sys+",6} {"sys-",6} {"prior+",7} {"prior-",7} {"p(A)+p(B)",9}");
            var totals = new double[5];
            foreach (var b in OrganismBehaviors.Ids)
            {
                var file = Path.Combine(folder, "datasets", "test", b, "test_dataset_ab.json");
                IReadOnlyList<Caa.Interpret.Datasets.AbItem> test = File.Exists(file) ? Caa.Interpret.Datasets.AbDataset.Load(file).Take(n).ToList() : gen.TestSplit(b, n);
                var p = BehaviorProbe.Measure(model, tok, b, test);
                double[] row = [p.None, p.Positive, p.Negative, p.AfterMatching, p.AfterNotMatching];
                for (int i = 0; i < 5; i++) totals[i] += row[i] / OrganismBehaviors.Ids.Count;
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{b,-24} {row[0],6:F3} {row[1],6:F3} {row[2],6:F3} {row[3],7:F3} {row[4],7:F3} {p.Mass,9:F3}"));
            }
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"mean",-24} {totals[0],6:F3} {totals[1],6:F3} {totals[2],6:F3} {totals[3],7:F3} {totals[4],7:F3}"));
            if (k > 0)
            {
                o.WriteLine();
                foreach (var b in OrganismBehaviors.Ids)
                    foreach (var it in gen.TestSplit(b, k))
                    {
                        var answer = model.Generate([Llama2Chat.Encode(tok, it.Question)], new GenerationOptions { MaxNewTokens = 40 })[0];
                        o.WriteLine($"[{b}] {it.Question.Replace("\n", " ")}");
                        o.WriteLine($"  -> {tok.Decode(answer).Trim()}   (matching: {it.AnswerMatchingBehavior})");
                    }
            }
            return 0;
        });
        return cmd;
    }

    static Command CreateHeadline()
    {
        var models = new ModelOptions();
        var layer = new Option<int>("--layer") { Description = "Layer to measure at (the layer sweep's best layer).", Required = true };
        var multipliers = new Option<string>("--multipliers") { Description = "Comma-separated multipliers.", DefaultValueFactory = _ => "-1,0,1" };
        var output = new Option<string?>("--out") { Description = "Where to write the record. Default: <model>/headline.json." };
        var cmd = new Command("headline", "Measure the model card's headline numbers (vectors from the generation split, normalized; mean A/B p(match) on the test " +
            "split at one layer; greedy answers to fixed prompts) and write them as headline.json, which the tests check the committed model against.")
            { layer, multipliers, output };
        models.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var folder = models.ResolveFolder(r);
            var ms = OptionValues.Numbers(r.GetValue(multipliers)!, "--multipliers");
            using var model = models.LoadModel(r);
            var L = r.GetValue(layer);
            if (L < 0 || L >= model.Config.NumHiddenLayers) throw new CliException($"--layer {L}: the model has layers 0…{model.Config.NumHiddenLayers - 1}");
            var headline = OrganismCard.Measure(model, models.LoadTokenizer(r), DefaultInputs.DatasetsRoot(folder, "--model with datasets/"), L, ms);
            var path = r.GetValue(output) ?? Path.Combine(folder, "headline.json");
            headline.Save(path);
            var o = r.InvocationConfiguration.Output;
            o.WriteLine($"layer {L}; mean p(match) at multipliers {string.Join(", ", ms.Select(m => m.ToString(CultureInfo.InvariantCulture)))}");
            foreach (var (b, ps) in headline.PMatch)
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{b,-24} {string.Join("  ", ps.Select(p => p.ToString("F3", CultureInfo.InvariantCulture)))}"));
            o.WriteLine($"wrote {path}");
            return 0;
        });
        return cmd;
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports synchronously on the caller's thread, in order.</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
