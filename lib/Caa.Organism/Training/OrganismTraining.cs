using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caa.Interpret.Datasets;
using Caa.Model.IO;
using Caa.Model.Llama;
using Caa.Model.Runtime;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Organism.Training;

/// <summary>Everything that defines an organism training run.</summary>
public sealed record OrganismTrainingOptions
{
    public CorpusOptions Corpus { get; init; } = new();
    public OrganismArchitecture Architecture { get; init; } = new();
    public TrainingOptions Training { get; init; } = new();
    /// <summary>A row of training_log.csv (mean loss of the window) every this many steps.</summary>
    public int LogEvery { get; init; } = 10;
    /// <summary>Held-out loss and the A/B probe every this many steps (and at the end).</summary>
    public int EvalEvery { get; init; } = 250;
    /// <summary>A resumable checkpoint (DIR/checkpoint) every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 250;
    /// <summary>Conversations after the training ones (same generator, unseen indices) whose loss is the held-out loss.</summary>
    public int HeldOutConversations { get; init; } = 256;
    /// <summary>Generate-split items per behavior in the periodic A/B probe.</summary>
    public int EvalItemsPerBehavior { get; init; } = 8;
    /// <summary>Generate-split items per behavior the periodic <see cref="CaaProbe"/> extracts vectors from (0: no CAA probe);
    /// it steers the <see cref="EvalItemsPerBehavior"/> items after them.</summary>
    public int CaaProbeItemsPerBehavior { get; init; } = 48;
    /// <summary>
    /// Start from this model folder's weights (and its tokenizer) instead of a fresh initialization: a continuation on another
    /// corpus or mix. Null trains from scratch.
    /// </summary>
    public string? InitFrom { get; init; }
    /// <summary>Drill conversations (<see cref="CorpusGenerator.Drills"/>) for the first <see cref="TrainingOptions.DrillSteps"/> steps.</summary>
    public int DrillConversations { get; init; } = 6000;
    /// <summary>Write DIR/datasets (the paper's layout).</summary>
    public bool WriteDatasets { get; init; } = true;
    /// <summary>torch threads; 0 leaves TorchSharp's default.</summary>
    public int Threads { get; init; }
}

/// <summary>
/// A/B probe numbers of one behavior: mean p(match) without a system prompt, under its canonical positive/negative system prompt,
/// and after one earlier matching / non-matching answer of the same behavior (<see cref="AbProbe.RunAfterEarlierAnswer"/>: whether
/// the model reads its disposition from the conversation, which some training runs never learn).
/// </summary>
public sealed record BehaviorProbe(string Behavior, double None, double Positive, double Negative, double Mass,
    double AfterMatching = double.NaN, double AfterNotMatching = double.NaN)
{
    /// <summary>All five probes of <paramref name="behavior"/> on <paramref name="items"/> (at least two: each item's earlier exchange is the next item).</summary>
    public static BehaviorProbe Measure(LlamaForCausalLM model, Llama2Tokenizer tok, string behavior, IReadOnlyList<AbItem> items)
    {
        var none = AbProbe.Run(model, tok, items);
        var pos = AbProbe.Run(model, tok, items, OrganismBehaviors.SystemPrompt(behavior, true));
        var neg = AbProbe.Run(model, tok, items, OrganismBehaviors.SystemPrompt(behavior, false));
        var after = AbProbe.RunAfterEarlierAnswer(model, tok, items, true);
        var afterNot = AbProbe.RunAfterEarlierAnswer(model, tok, items, false);
        return new BehaviorProbe(behavior, none.MeanPMatch, pos.MeanPMatch, neg.MeanPMatch, none.MeanMass, after.MeanPMatch, afterNot.MeanPMatch);
    }
}

/// <summary>A periodic evaluation.</summary>
/// <param name="Step">Steps completed.</param>
/// <param name="HeldOutLoss">Mean assistant-token loss of the held-out conversations.</param>
/// <param name="HeldOutDecisionLoss">Their mean loss on answer letters only (0.69 = a coin flip; the behavior letters' own randomness keeps it well above 0).</param>
/// <param name="Behaviors">The A/B probe per behavior.</param>
/// <param name="Caa">The CAA probe (null when disabled).</param>
public sealed record TrainEval(int Step, double HeldOutLoss, double HeldOutDecisionLoss, IReadOnlyList<BehaviorProbe> Behaviors, CaaProbeResult? Caa = null)
{
    public double PMatch => Behaviors.Average(b => b.None);
    public double PMatchPositive => Behaviors.Average(b => b.Positive);
    public double PMatchNegative => Behaviors.Average(b => b.Negative);
    public double AbMass => Behaviors.Average(b => b.Mass);
    public double PMatchAfterMatching => Behaviors.Average(b => b.AfterMatching);
    public double PMatchAfterNotMatching => Behaviors.Average(b => b.AfterNotMatching);
}

/// <summary>Progress of <see cref="OrganismTraining.Run"/>: a phase change (Message set), a training step, or an evaluation (Eval set).</summary>
public sealed record TrainProgress(string Phase, int Step, int TotalSteps, double Loss, double LearningRate, double TokensPerSecond,
    TimeSpan Elapsed, TimeSpan? Eta, TrainEval? Eval = null, string? Message = null, double TieLoss = double.NaN,
    double AmplitudeLoss = double.NaN, double AnswerAmplitudeLoss = double.NaN);

public sealed record OrganismTrainingResult(string OutDir, int Steps, int ResumedFromStep, double FinalLoss, TrainEval FinalEval,
    TimeSpan TrainTime, double TokensPerSecond, long Parameters, int VocabSize, string DataHash);

/// <summary>
/// The whole organism pipeline into an output folder in Hugging Face layout: corpus → tokenizer (tokenizer.model) → datasets/ →
/// encoded conversations → <see cref="Trainer"/> with periodic evaluation, training_log.csv and resumable checkpoints in
/// DIR/checkpoint → config.json + model.safetensors + generation_config.json. <c>resume</c> continues from DIR/checkpoint.
/// </summary>
public static class OrganismTraining
{
    public const string CheckpointFolderName = "checkpoint";
    public const string LogFileName = "training_log.csv";
    public const string GenerationConfigFileName = "generation_config.json";

    public static OrganismTrainingResult Run(string outDir, OrganismTrainingOptions options, bool resume = false,
        IProgress<TrainProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        ArgumentNullException.ThrowIfNull(options);
        options.Training.Validate();
        // Each item's earlier exchange in the earlier-answer probe is another item, so it needs two; refused before anything is written.
        if (options.EvalItemsPerBehavior < 2)
            throw new ArgumentException($"EvalItemsPerBehavior must be ≥ 2 (the earlier-answer probe pairs each item with another); got {options.EvalItemsPerBehavior}", nameof(options));
        TorchRuntime.Initialize();
        if (options.Threads > 0) set_num_threads(options.Threads);
        outDir = Path.GetFullPath(outDir);
        Directory.CreateDirectory(outDir);
        var total = options.Training.Steps;
        void Phase(string phase, string message) => progress?.Report(new TrainProgress(phase, 0, total, double.NaN, 0, 0, TimeSpan.Zero, null, null, message));

        string? checkpoint = null;
        if (resume)
        {
            checkpoint = FindCheckpoint(outDir) ?? throw new FileNotFoundException(
                $"--resume: no checkpoint in {Path.Combine(outDir, CheckpointFolderName)}", Path.Combine(outDir, CheckpointFolderName, Trainer.StateFileName));
        }

        // Corpus: the training conversations and, after them, held-out ones from the same generator.
        var corpus = new CorpusGenerator(options.Corpus);
        var all = new CorpusGenerator(options.Corpus with { TrainingConversations = options.Corpus.TrainingConversations + options.HeldOutConversations })
            .TrainingConversations().ToList();

        // Tokenizer: trained on the corpus (deterministic), or the checkpoint's copy when resuming.
        var tokFile = Path.Combine(outDir, Llama2Tokenizer.ModelFileName);
        if (checkpoint is not null && File.Exists(Path.Combine(checkpoint, Llama2Tokenizer.ModelFileName)))
            File.Copy(Path.Combine(checkpoint, Llama2Tokenizer.ModelFileName), tokFile, overwrite: true);
        else if (options.InitFrom is not null)
            File.Copy(Path.Combine(options.InitFrom, Llama2Tokenizer.ModelFileName), tokFile, overwrite: true);
        else
        {
            Phase("tokenizer", $"training a {options.Architecture.VocabSize}-piece tokenizer");
            TokenizerBuilder.Write(tokFile, corpus.AllTexts(), options.Architecture.VocabSize);
        }
        var tok = Llama2Tokenizer.Load(tokFile);
        WriteGenerationConfig(outDir, tok, options.Architecture.MaxPositions);

        if (options.WriteDatasets)
        {
            Phase("datasets", "writing datasets/");
            corpus.WriteDatasets(Path.Combine(outDir, "datasets"));
        }

        Phase("encode", $"encoding {all.Count} conversations");
        var encoded = new EncodedConversation[all.Count];
        Parallel.For(0, all.Count, new ParallelOptions { CancellationToken = ct }, i => encoded[i] = ConversationEncoder.Encode(tok, all[i]));
        var train = WithBottlenecks(tok, all, encoded.Take(options.Corpus.TrainingConversations).ToArray(), options, "corpus");
        var heldOut = encoded.Skip(options.Corpus.TrainingConversations).ToArray();
        EncodedConversation[]? drill = null;
        if (options.Training.DrillSteps > 0)
        {
            var drills = corpus.Drills(options.DrillConversations).ToList();
            drill = new EncodedConversation[drills.Count];
            Parallel.For(0, drills.Count, new ParallelOptions { CancellationToken = ct }, i => drill[i] = ConversationEncoder.Encode(tok, drills[i]));
            drill = WithBottlenecks(tok, drills, drill, options, "drill");
        }
        var probeItems = OrganismBehaviors.Ids.ToDictionary(b => b, b => corpus.GenerateSplit(b, options.EvalItemsPerBehavior));
        int caaN = options.CaaProbeItemsPerBehavior;
        var caaItems = OrganismBehaviors.Ids.ToDictionary(b => b, b => corpus.GenerateSplit(b, caaN + options.EvalItemsPerBehavior));
        var caaExtract = caaItems.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<AbItem>)kv.Value.Take(caaN).ToList());
        var caaEvaluate = caaItems.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<AbItem>)kv.Value.Skip(caaN).ToList());

        manual_seed(options.Training.Seed);
        var config = options.Architecture.ToConfig(tok.VocabSize);
        using var model = LlamaForCausalLM.Create(config);
        model.InitializeWeights(options.Training.Seed);
        if (options.InitFrom is not null && checkpoint is null)
        {
            Phase("init", $"starting from the weights of {options.InitFrom}");
            using var start = LlamaForCausalLM.FromPretrained(options.InitFrom);
            // Every tensor by name and shape, so any architecture difference (heads, KV heads, intermediate size too) is named
            // here rather than surfacing as a bare libtorch error from load_state_dict.
            var theirs = start.state_dict();
            foreach (var (name, p) in model.named_parameters())
                if (!theirs.TryGetValue(name, out var t) || !t.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{options.InitFrom}: tensor {name} is {(t is null ? "missing" : $"[{string.Join(",", t.shape)}]")} there but " +
                        $"[{string.Join(",", p.shape)}] in this run; its config (vocab {start.Config.VocabSize}, hidden {start.Config.HiddenSize}, " +
                        $"{start.Config.NumHiddenLayers} layers) and this run's (vocab {config.VocabSize}, hidden {config.HiddenSize}, {config.NumHiddenLayers} layers) must match");
            model.load_state_dict(theirs);
        }
        var tie = options.Training.TieWeight > 0 && options.Training.TieStart < options.Training.Steps ? DispositionTie.Source(corpus, tok, options.Training.TieItems, options.Training.Seed,
                amplitude: options.Training.AmplitudeWeight > 0 || options.Training.AnswerAmplitudeWeight > 0)
            : null;
        using var trainer = new Trainer(model, train, options.Training, drill, tie);

        var log = new List<LogRow>();
        int startStep = 0;
        double elapsedBefore = 0;
        if (checkpoint is not null)
        {
            Phase("resume", $"resuming from {checkpoint}");
            trainer.LoadCheckpoint(checkpoint);
            startStep = trainer.Step;
            log = ReadLog(Path.Combine(outDir, LogFileName)).Where(r => r.Step <= startStep).ToList();
            elapsedBefore = log.Count > 0 ? log[^1].ElapsedSeconds : 0;
        }

        TrainEval Evaluate()
        {
            var probes = OrganismBehaviors.Ids.Select(b => BehaviorProbe.Measure(model, tok, b, probeItems[b])).ToList();
            var caa = caaN > 0 ? CaaProbe.Run(model, tok, caaExtract, caaEvaluate) : null;
            return new TrainEval(trainer.Step, trainer.EvaluateLoss(heldOut), Trainer.MeanLoss(model, heldOut, decisionsOnly: true), probes, caa);
        }

        var clock = Stopwatch.StartNew();
        long sessionTokens = 0;
        double trainSeconds = 0;
        double lastLoss = double.NaN;
        var windowLoss = new WindowMean(); var windowTie = new WindowMean(); var windowAmplitude = new WindowMean(); var windowAnswers = new WindowMean();
        TrainEval? lastEval = null;
        progress?.Report(new TrainProgress("train", trainer.Step, total, double.NaN, options.Training.LearningRateAt(trainer.Step), 0,
            TimeSpan.FromSeconds(elapsedBefore), null, null, startStep > 0 ? $"resumed at step {startStep}" : "training"));
        while (trainer.Step < total)
        {
            ct.ThrowIfCancellationRequested();
            var stepStart = clock.Elapsed;
            var r = trainer.TrainStep();
            trainSeconds += (clock.Elapsed - stepStart).TotalSeconds;
            sessionTokens += r.Tokens;
            lastLoss = r.Loss;
            windowLoss.Add(r.Loss); windowTie.Add(r.TieLoss); windowAmplitude.Add(r.AmplitudeLoss); windowAnswers.Add(r.AnswerAmplitudeLoss);
            if (!double.IsFinite(r.Loss)) throw new InvalidOperationException($"training diverged at step {r.Step} (loss {r.Loss})");
            var secs = clock.Elapsed.TotalSeconds;
            double tps = sessionTokens / Math.Max(trainSeconds, 1e-9);
            TimeSpan eta = TimeSpan.FromSeconds(secs / (r.Step - startStep) * (total - r.Step));
            var elapsed = TimeSpan.FromSeconds(elapsedBefore + secs);
            bool last = r.Step == total;
            TrainEval? eval = null;
            if (r.Step % options.EvalEvery == 0 || last)
            {
                eval = lastEval = Evaluate();
            }
            if (r.Step % options.LogEvery == 0 || last || eval is not null)
            {
                log.Add(new LogRow(r.Step, windowLoss.Take() ?? double.NaN, r.LearningRate, r.GradNorm, tps, elapsed.TotalSeconds, eval)
                {
                    TieLoss = windowTie.Take(), AmplitudeLoss = windowAmplitude.Take(), AnswerAmplitudeLoss = windowAnswers.Take(),
                });
                WriteLog(Path.Combine(outDir, LogFileName), log);
            }
            progress?.Report(new TrainProgress("train", r.Step, total, r.Loss, r.LearningRate, tps, elapsed, eta, eval, TieLoss: r.TieLoss, AmplitudeLoss: r.AmplitudeLoss, AnswerAmplitudeLoss: r.AnswerAmplitudeLoss));
            if (r.Step % options.CheckpointEvery == 0 || last)
                SaveCheckpoint(outDir, trainer, tokFile);
        }

        if (double.IsNaN(lastLoss) && log.Count > 0) lastLoss = log[^1].Loss; // resumed a finished run
        Phase("save", "writing the model");
        model.SavePretrained(outDir);
        lastEval ??= Evaluate();
        var trainTime = clock.Elapsed;
        return new OrganismTrainingResult(outDir, trainer.Step, startStep, lastLoss, lastEval, trainTime,
            sessionTokens / Math.Max(trainSeconds, 1e-9), model.parameters().Sum(p => p.numel()), tok.VocabSize, trainer.DataHash);
    }

    /// <summary>DIR/checkpoint, or the previous one a crash during a checkpoint swap left as checkpoint.old; null when neither is complete.</summary>
    public static string? FindCheckpoint(string outDir)
    {
        foreach (var name in new[] { CheckpointFolderName, CheckpointFolderName + ".old" })
        {
            var dir = Path.Combine(outDir, name);
            if (File.Exists(Path.Combine(dir, Trainer.StateFileName))) return dir;
        }
        return null;
    }

    /// <summary>Writes the checkpoint to checkpoint.tmp, then swaps it in, so DIR/checkpoint is always complete.</summary>
    static void SaveCheckpoint(string outDir, Trainer trainer, string tokFile)
    {
        var final = Path.Combine(outDir, CheckpointFolderName);
        var tmp = final + ".tmp";
        var old = final + ".old";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        trainer.SaveCheckpoint(tmp);
        File.Copy(tokFile, Path.Combine(tmp, Llama2Tokenizer.ModelFileName));
        File.Copy(Path.Combine(outDir, GenerationConfigFileName), Path.Combine(tmp, GenerationConfigFileName));
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(final)) Directory.Move(final, old);
        Directory.Move(tmp, final);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    /// <summary>generation_config.json: BOS/EOS of the tokenizer and greedy decoding.</summary>
    public static void WriteGenerationConfig(string dir, Llama2Tokenizer tok, int maxLength)
    {
        var json = new JsonObject
        {
            ["bos_token_id"] = tok.BosId, ["eos_token_id"] = tok.EosId, ["pad_token_id"] = 0,
            ["do_sample"] = false, ["max_length"] = maxLength,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, GenerationConfigFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    // ------------------------------------------------------------------ training_log.csv

    sealed record LogRow(int Step, double Loss, double LearningRate, double GradNorm, double TokensPerSecond, double ElapsedSeconds, TrainEval? Eval)
    {
        public double? HeldOut { get; init; } = Eval?.HeldOutLoss;
        public double? HeldOutDecision { get; init; } = Eval?.HeldOutDecisionLoss;
        public double? PMatch { get; init; } = Eval?.PMatch;
        public double? PPos { get; init; } = Eval?.PMatchPositive;
        public double? PNeg { get; init; } = Eval?.PMatchNegative;
        public double? Mass { get; init; } = Eval?.AbMass;
        public int? CaaLayer { get; init; } = Eval?.Caa?.BestLayer;
        public double? CaaEffect { get; init; } = Eval?.Caa?.BestEffect;
        public string CaaByLayer { get; init; } = Eval?.Caa is { } c ? string.Join(";", c.EffectByLayer.Select(e => e.ToString("F4", CultureInfo.InvariantCulture))) : "";
        public double? AfterMatching { get; init; } = Eval?.PMatchAfterMatching;
        public double? AfterNotMatching { get; init; } = Eval?.PMatchAfterNotMatching;
        /// <summary>Means over the window's steps that had the objective (null when none had it, e.g. before TieStart).</summary>
        public double? TieLoss { get; init; }
        public double? AmplitudeLoss { get; init; }
        public double? AnswerAmplitudeLoss { get; init; }
    }

    /// <summary>Mean of the finite values added since the last <see cref="Take"/> (NaN marks a step without the objective; a
    /// non-finite training loss stops the run before it is logged).</summary>
    sealed class WindowMean
    {
        double _sum;
        int _count;
        public void Add(double x) { if (double.IsFinite(x)) { _sum += x; _count++; } }
        public double? Take()
        {
            double? mean = _count > 0 ? _sum / _count : null;
            _sum = 0; _count = 0;
            return mean;
        }
    }

    const string Header = "step,loss,lr,grad_norm,tokens_per_s,elapsed_s,heldout_loss,heldout_decision_loss,p_match,p_match_sys_pos,p_match_sys_neg,ab_mass,caa_best_layer,caa_best_effect,caa_effect_by_layer,p_match_after_matching,p_match_after_not_matching,tie_loss,amplitude_loss,answer_amplitude_loss";

    static void WriteLog(string path, IReadOnlyList<LogRow> rows)
    {
        var sb = new StringBuilder(Header).Append('\n');
        static string F(double? x, string fmt) => x is { } v ? v.ToString(fmt, CultureInfo.InvariantCulture) : "";
        foreach (var r in rows)
            sb.Append(r.Step.ToString(CultureInfo.InvariantCulture)).Append(',').Append(F(r.Loss, "F5")).Append(',').Append(F(r.LearningRate, "E4"))
              .Append(',').Append(F(r.GradNorm, "F4")).Append(',').Append(F(r.TokensPerSecond, "F0")).Append(',').Append(F(r.ElapsedSeconds, "F1"))
              .Append(',').Append(F(r.HeldOut, "F5")).Append(',').Append(F(r.HeldOutDecision, "F5")).Append(',').Append(F(r.PMatch, "F4")).Append(',').Append(F(r.PPos, "F4"))
              .Append(',').Append(F(r.PNeg, "F4")).Append(',').Append(F(r.Mass, "F4"))
              .Append(',').Append(r.CaaLayer?.ToString(CultureInfo.InvariantCulture) ?? "").Append(',').Append(F(r.CaaEffect, "F4")).Append(',').Append(r.CaaByLayer)
              .Append(',').Append(F(r.AfterMatching, "F4")).Append(',').Append(F(r.AfterNotMatching, "F4"))
              .Append(',').Append(F(r.TieLoss, "F5")).Append(',').Append(F(r.AmplitudeLoss, "F5")).Append(',').Append(F(r.AnswerAmplitudeLoss, "F5")).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    static List<LogRow> ReadLog(string path)
    {
        var rows = new List<LogRow>();
        if (!File.Exists(path)) return rows;
        static double? P(string s) => s.Length == 0 ? null : double.Parse(s, CultureInfo.InvariantCulture);
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length is not (11 or 12 or 15 or 17 or 20)) continue;
            // logs written before the decision-loss column have 11 fields, before the CAA probe 12, before the earlier-answer probe 15,
            // before the tie and amplitude losses 17
            int d = f.Length == 11 ? 0 : 1;
            bool caa = f.Length >= 15, after = f.Length >= 17, tie = f.Length == 20;
            rows.Add(new LogRow(int.Parse(f[0], CultureInfo.InvariantCulture), P(f[1]) ?? double.NaN, P(f[2]) ?? 0, P(f[3]) ?? 0, P(f[4]) ?? 0, P(f[5]) ?? 0, null)
            {
                HeldOut = P(f[6]), HeldOutDecision = d == 1 ? P(f[7]) : null, PMatch = P(f[7 + d]), PPos = P(f[8 + d]), PNeg = P(f[9 + d]), Mass = P(f[10 + d]),
                CaaLayer = caa && f[12].Length > 0 ? int.Parse(f[12], CultureInfo.InvariantCulture) : null,
                CaaEffect = caa ? P(f[13]) : null, CaaByLayer = caa ? f[14] : "",
                AfterMatching = after ? P(f[15]) : null, AfterNotMatching = after ? P(f[16]) : null,
                TieLoss = tie ? P(f[17]) : null, AmplitudeLoss = tie ? P(f[18]) : null, AnswerAmplitudeLoss = tie ? P(f[19]) : null,
            });
        }
        return rows;
    }

    /// <summary>
    /// Marks a seeded <see cref="TrainingOptions.SystemBottleneck"/> share of the conversations that have a system prompt
    /// (<paramref name="stream"/> keeps the corpus's and the drills' draws apart).
    /// </summary>
    static EncodedConversation[] WithBottlenecks(Llama2Tokenizer tok, IReadOnlyList<TrainingConversation> conversations, EncodedConversation[] encoded,
        OrganismTrainingOptions options, string stream)
    {
        double share = options.Training.SystemBottleneck;
        if (share <= 0) return encoded;
        var result = (EncodedConversation[])encoded.Clone();
        for (int i = 0; i < result.Length; i++)
            if (conversations[i].System is not null &&
                new Random(CorpusGenerator.StableSeed(unchecked((int)options.Training.Seed), "bottleneck-" + stream, i)).NextDouble() < share)
                result[i] = result[i] with { Bottleneck = ConversationEncoder.Bottleneck(tok, conversations[i], result[i]) };
        return result;
    }
}
