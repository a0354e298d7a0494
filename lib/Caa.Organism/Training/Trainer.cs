using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Caa.Model.Checkpoints;
using Caa.Model.IO;
using Caa.Model.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Caa.Organism.Training;

/// <summary>What one optimizer step did.</summary>
/// <param name="Step">1-based number of the step just taken (= steps completed).</param>
/// <param name="Loss">Mean next-token cross-entropy over the batch's assistant tokens.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="LearningRate">Learning rate used for the step.</param>
/// <param name="Tokens">Non-padding input tokens of the batch.</param>
/// <param name="TargetTokens">Assistant tokens the loss counted.</param>
/// <param name="TieLoss">The <see cref="DispositionTie"/> loss of the step (NaN when the step has none).</param>
/// <param name="AmplitudeLoss">The <see cref="DispositionTie.AmplitudeLoss"/> of the step (NaN when the step has none).</param>
/// <param name="AnswerAmplitudeLoss">The <see cref="DispositionTie.AnswerAmplitudeLoss"/> of the step (NaN when the step has none).</param>
public sealed record StepResult(int Step, double Loss, double GradNorm, double LearningRate, long Tokens, long TargetTokens, double TieLoss = double.NaN,
    double AmplitudeLoss = double.NaN, double AnswerAmplitudeLoss = double.NaN);

/// <summary>
/// Next-token training of a <see cref="LlamaForCausalLM"/> on <see cref="EncodedConversation"/>s: AdamW (TorchSharp's
/// <c>torch.optim.AdamW</c>; decay on matrices and embeddings, none on norms), linear warm-up + cosine decay, global gradient
/// clipping, cross-entropy on assistant tokens only. Batches come from a seeded <see cref="BatchSchedule"/>; each is right-padded,
/// so every conversation starts at position 0 exactly as at inference and causal attention never lets a real token see padding
/// (padding positions are excluded from the loss). Checkpoints hold the weights (HF folder), the AdamW moments and the step,
/// so <see cref="LoadCheckpoint"/> continues bit-for-bit where <see cref="SaveCheckpoint"/> stopped.
/// </summary>
/// <remarks>
/// The model's parameters are switched to <c>requires_grad = true</c> while the trainer lives (Caa.Model creates them frozen)
/// and frozen again by <see cref="Dispose"/>.
/// </remarks>
public sealed class Trainer : IDisposable
{
    public const string OptimizerFileName = "optimizer.safetensors";
    public const string StateFileName = "trainer_state.json";

    readonly LlamaForCausalLM _model;
    readonly IReadOnlyList<EncodedConversation> _data;
    readonly IReadOnlyList<EncodedConversation> _drill;
    readonly (string Name, Parameter Param)[] _params;
    readonly AdamW _optimizer;
    readonly Func<int, TieBatch>? _tie;
    readonly int[] _tieLayers;

    public TrainingOptions Options { get; }
    public BatchSchedule Schedule { get; }
    /// <summary>Order of the drill conversations during the first <see cref="TrainingOptions.DrillSteps"/> steps; null without drills.</summary>
    public BatchSchedule? DrillSchedule { get; }
    /// <summary>
    /// Optimizer steps completed, which is the data position: step s &lt; DrillSteps reads <c>DrillSchedule.BatchAt(s)</c>, later
    /// steps <c>Schedule.BatchAt(s − DrillSteps)</c>.
    /// </summary>
    public int Step { get; private set; }
    /// <summary>SHA-256 (16 hex digits) of the training data's ids and loss masks, stored in checkpoints to refuse resuming on other data.</summary>
    public string DataHash { get; }

    /// <param name="model">The model to train (its parameters are made trainable for the trainer's lifetime).</param>
    /// <param name="data">The training conversations.</param>
    /// <param name="options">Optimizer, schedule and data order.</param>
    /// <param name="drill">Conversations for the first <see cref="TrainingOptions.DrillSteps"/> steps (required when that is &gt; 0).</param>
    /// <param name="tie">Step → prompts of the <see cref="DispositionTie"/> objective (required when <see cref="TrainingOptions.TieWeight"/> &gt; 0).</param>
    public Trainer(LlamaForCausalLM model, IReadOnlyList<EncodedConversation> data, TrainingOptions options, IReadOnlyList<EncodedConversation>? drill = null,
        Func<int, TieBatch>? tie = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (data.Count == 0) throw new ArgumentException("no training conversations", nameof(data));
        if (options.DrillSteps > 0 && (drill is null || drill.Count == 0))
            throw new ArgumentException($"DrillSteps = {options.DrillSteps} needs drill conversations", nameof(drill));
        drill = options.DrillSteps > 0 ? drill : null;
        if (options.TieWeight > 0 && options.TieStart < options.Steps && tie is null) throw new ArgumentException($"TieWeight = {options.TieWeight} needs a source of tie batches", nameof(tie));
        _tie = options.TieWeight > 0 ? tie : null;
        _tieLayers = DispositionTie.Layers(model.Config.NumHiddenLayers);
        foreach (var c in drill is null ? data : data.Concat(drill))
            if (c.Length < 2 || c.Length > model.Config.MaxPositionEmbeddings)
                throw new ArgumentException($"a conversation of {c.Length} tokens does not fit max_position_embeddings {model.Config.MaxPositionEmbeddings}");
        _model = model;
        _data = data;
        Options = options;
        Schedule = new BatchSchedule(data.Select(c => c.Length).ToArray(), options.BatchSize, options.Seed, options.SortPoolBatches);
        _drill = drill ?? [];
        if (drill is not null) DrillSchedule = new BatchSchedule(drill.Select(c => c.Length).ToArray(), options.BatchSize, options.Seed + 7919, options.SortPoolBatches);
        DataHash = HashData(drill is null ? data : data.Concat(drill).ToList());
        _params = model.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        foreach (var (_, p) in _params) p.requires_grad = true;
        var decay = _params.Where(p => !IsNorm(p.Name)).Select(p => p.Param).ToArray();
        var noDecay = _params.Where(p => IsNorm(p.Name)).Select(p => p.Param).ToArray();
        // Moments are created here, outside any dispose scope of the caller's, and live as long as the optimizer.
        _optimizer = optim.AdamW(new[]
        {
            new AdamW.ParamGroup(decay, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay),
            new AdamW.ParamGroup(noDecay, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, 0.0),
        }, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        // The optimizer's state list follows its groups: decay parameters first, then the norms.
        _params = _params.Where(p => !IsNorm(p.Name)).Concat(_params.Where(p => IsNorm(p.Name))).ToArray();
    }

    static bool IsNorm(string name) => name.EndsWith("norm.weight", StringComparison.Ordinal);

    public LlamaForCausalLM Model => _model;

    /// <summary>One optimizer step on the batch of step <see cref="Step"/>.</summary>
    public StepResult TrainStep()
    {
        var lr = Options.LearningRateAt(Step);
        foreach (var g in _optimizer.ParamGroups) g.LearningRate = lr;
        var rows = Step < Options.DrillSteps
            ? DrillSchedule!.BatchAt(Step).Select(i => _drill[i]).ToList()
            : Schedule.BatchAt(Step - Options.DrillSteps).Select(i => _data[i]).ToList();
        double loss, norm, tie = double.NaN, amplitude = double.NaN, answerAmplitude = double.NaN;
        long tokens, targets;
        using (var scope = NewDisposeScope())
        {
            using var _ = enable_grad();
            var (input, target, tok, tgt) = MakeBatch(rows, _model.Device);
            tokens = tok; targets = tgt;
            _optimizer.zero_grad();
            var ce = TargetTokenLosses(_model, input, target, out var rowsUsed, rows);
            var l = ce.mean();
            var objective = l;
            if (Options.DecisionWeight != 1.0)
            {
                var w = DecisionWeights(rows, target.shape[1], Options.DecisionWeight, _model.Device).index_select(0, rowsUsed);
                objective = (ce * w).sum().div(w.sum());
            }
            if (_tie is not null && Step >= Options.TieStart)
            {
                var batch = _tie(Step);
                var t = DispositionTie.Loss(_model, batch, _tieLayers, Options.TieScale, out var contrast);
                tie = t.item<float>();
                objective = objective + Options.TieWeight * t;
                // Both amplitude objectives amplify the same contrast at the first tied layer, each with its own stream of multiples.
                double Amplified(double weight, string stream, Func<LlamaForCausalLM, TieBatch, int, Tensor, Random, double, Tensor> loss)
                {
                    if (weight <= 0) return double.NaN;
                    var a = loss(_model, batch, _tieLayers[0], contrast, new Random(CorpusGenerator.StableSeed(unchecked((int)Options.Seed), stream, Step)), Options.AmplitudeMax);
                    objective = objective + weight * a;
                    return a.item<float>();
                }
                amplitude = Amplified(Options.AmplitudeWeight, "amplitude", DispositionTie.AmplitudeLoss);
                answerAmplitude = Amplified(Options.AnswerAmplitudeWeight, "answer-amplitude", DispositionTie.AnswerAmplitudeLoss);
            }
            objective.backward();
            norm = nn.utils.clip_grad_norm_(_params.Select(p => p.Param), Options.GradClip);
            _optimizer.step();
            loss = l.item<float>();
        }
        Step++;
        return new StepResult(Step, loss, norm, lr, tokens, targets, tie, amplitude, answerAmplitude);
    }

    /// <summary>Mean assistant-token cross-entropy of <paramref name="conversations"/> (no gradient; batches of similar length).</summary>
    public double EvaluateLoss(IReadOnlyList<EncodedConversation> conversations, int batchSize = 32) =>
        MeanLoss(_model, conversations, batchSize);

    /// <summary>
    /// Mean assistant-token cross-entropy of <paramref name="conversations"/> under <paramref name="model"/>; with
    /// <paramref name="decisionsOnly"/>, over the answer-letter tokens only (ln 2 = 0.693 is a coin flip between the letters).
    /// </summary>
    public static double MeanLoss(LlamaForCausalLM model, IReadOnlyList<EncodedConversation> conversations, int batchSize = 32, bool decisionsOnly = false)
    {
        if (conversations.Count == 0) return double.NaN;
        using var _ = no_grad();
        double sum = 0;
        long count = 0;
        foreach (var chunk in conversations.OrderBy(c => c.Length).Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            var rows = decisionsOnly ? chunk.Select(c => c with { Target = c.Decision ?? new bool[c.Length] }).ToArray() : chunk;
            var (input, target, _, tgt) = MakeBatch(rows, model.Device);
            if (tgt == 0) continue;
            sum += TargetTokenLosses(model, input, target, out var _rows).sum().item<float>();
            count += tgt;
        }
        return count == 0 ? double.NaN : sum / count;
    }

    /// <summary>
    /// Per-token cross-entropy of the assistant tokens only (callers dispose through their scope): the LM head runs on just the positions whose target is not −100 (prompt tokens
    /// and padding need no logits), which saves the vocabulary matmul and softmax on ~80% of the positions.
    /// </summary>
    static Tensor TargetTokenLosses(LlamaForCausalLM model, Tensor input, Tensor target, out Tensor rows, IReadOnlyList<EncodedConversation>? conversations = null)
    {
        var hidden = conversations is not null && conversations.Any(c => c.Bottleneck is not null)
            ? BottleneckedHidden(model, input, conversations)
            : model.ForwardHidden(input);                                            // [B,T,H]
        var flatTarget = target.view(-1);
        rows = flatTarget.ne(ConversationEncoder.IgnoreIndex).nonzero().view(-1);
        var logits = model.Logits(hidden.view(-1, hidden.shape[^1]).index_select(0, rows));
        return F.cross_entropy(logits, flatTarget.index_select(0, rows), reduction: nn.Reduction.None);
    }

    /// <summary>
    /// Final-normed hidden states with the <see cref="SystemBottleneck"/>s of <paramref name="conversations"/> applied: blocks
    /// before <see cref="TrainingOptions.SystemBottleneckLayer"/> run under one attention restriction, the rest under the other.
    /// </summary>
    internal static Tensor BottleneckedHidden(LlamaForCausalLM model, Tensor input, IReadOnlyList<EncodedConversation> conversations)
    {
        using var scope = NewDisposeScope();
        long b = input.shape[0], t = input.shape[1];
        if (conversations.Count != b) throw new ArgumentException($"{conversations.Count} conversations for a batch of {b} rows", nameof(conversations));
        int split = TrainingOptions.SystemBottleneckLayer(model.Config.NumHiddenLayers);
        var (early, late) = BottleneckMasks(conversations, (int)t);
        using var state = model.Prepare(b, t);
        using var earlyState = state.Restrict(tensor(early, [b, 1, t, t], device: model.Device));
        using var lateState = state.Restrict(tensor(late, [b, 1, t, t], device: model.Device));
        var h = model.RunLayers(model.Embed(input), earlyState, 0, split);
        h = model.RunLayers(h, lateState, split);
        return model.FinalNorm(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Flat [B·T·T] "may attend" masks (query-major) beyond causality for the blocks before and from
    /// <see cref="TrainingOptions.SystemBottleneckLayer"/>: a bottlenecked row's first-instruction tokens never see its system
    /// block, and in the late blocks no token after the system block does; other rows are unrestricted.
    /// </summary>
    internal static (bool[] Early, bool[] Late) BottleneckMasks(IReadOnlyList<EncodedConversation> conversations, int t) =>
        BottleneckMasks(conversations.Select(c => c.Bottleneck).ToArray(), t);

    /// <summary>
    /// <see cref="BottleneckMasks(IReadOnlyList{EncodedConversation}, int)"/> for rows given by their spans (null: unrestricted),
    /// each shifted right by its <paramref name="offsets"/> entry (a left-padded row's padding; none: 0).
    /// </summary>
    internal static (bool[] Early, bool[] Late) BottleneckMasks(IReadOnlyList<SystemBottleneck?> spans, int t, IReadOnlyList<long>? offsets = null)
    {
        var early = new bool[spans.Count * t * t];
        var late = new bool[early.Length];
        Array.Fill(early, true);
        Array.Fill(late, true);
        for (int r = 0; r < spans.Count; r++)
        {
            if (spans[r] is not { } bn) continue;
            long off = offsets?[r] ?? 0, systemEnd = off + bn.SystemEnd, instructionEnd = off + bn.InstructionEnd;
            for (long q = systemEnd; q < t; q++)
                for (long k = off + 1; k < systemEnd; k++)
                {
                    late[(r * t + q) * t + k] = false;
                    if (q < instructionEnd) early[(r * t + q) * t + k] = false;
                }
        }
        return (early, late);
    }

    /// <summary>Flat [B·T] weights aligned with <see cref="MakeBatch"/>'s targets: <paramref name="weight"/> where the target is an answer letter, else 1.</summary>
    internal static Tensor DecisionWeights(IReadOnlyList<EncodedConversation> rows, long t, double weight, Device device)
    {
        var w = new float[rows.Count * t];
        Array.Fill(w, 1f);
        for (int r = 0; r < rows.Count; r++)
            if (rows[r].Decision is { } d)
                for (int i = 0; i + 1 < rows[r].Length; i++)
                    if (d[i + 1]) w[r * t + i] = (float)weight;
        return tensor(w, device: device);
    }

    /// <summary>
    /// Input ids [B, T] and targets [B, T] for conversations right-padded to the longest: input = ids[0..n−1), target[t] = ids[t+1]
    /// where that token is an assistant token, else −100 (prompt tokens and padding).
    /// </summary>
    internal static (Tensor Input, Tensor Target, long Tokens, long TargetTokens) MakeBatch(IReadOnlyList<EncodedConversation> rows, Device device)
    {
        int b = rows.Count, t = rows.Max(r => r.Length) - 1;
        var input = new long[b * t];
        var target = new long[b * t];
        Array.Fill(target, ConversationEncoder.IgnoreIndex);
        long tokens = 0, targets = 0;
        for (int r = 0; r < b; r++)
        {
            var c = rows[r];
            for (int i = 0; i + 1 < c.Length; i++)
            {
                input[r * t + i] = c.Ids[i];
                if (c.Target[i + 1]) { target[r * t + i] = c.Ids[i + 1]; targets++; }
            }
            tokens += c.Length - 1;
        }
        return (tensor(input, [b, t], device: device), tensor(target, [b, t], device: device), tokens, targets);
    }

    // ------------------------------------------------------------------ checkpoints

    /// <summary>The small JSON beside a checkpoint's weights.</summary>
    public sealed record CheckpointState
    {
        [JsonPropertyName("step")] public int Step { get; init; }
        /// <summary>Epoch of the main data (−1 during the drill phase).</summary>
        [JsonPropertyName("epoch")] public int Epoch { get; init; }
        [JsonPropertyName("batch_in_epoch")] public int BatchInEpoch { get; init; }
        [JsonPropertyName("batches_per_epoch")] public int BatchesPerEpoch { get; init; }
        [JsonPropertyName("data_hash")] public string DataHash { get; init; } = "";
        [JsonPropertyName("data_conversations")] public int DataConversations { get; init; }
        [JsonPropertyName("options")] public TrainingOptions Options { get; init; } = new();
        [JsonPropertyName("saved_utc")] public string SavedUtc { get; init; } = "";
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>
    /// Writes a resumable checkpoint into <paramref name="dir"/>: config.json + model.safetensors (a loadable HF folder),
    /// optimizer.safetensors (AdamW's first and second moments per parameter, step count in the metadata) and trainer_state.json.
    /// </summary>
    public void SaveCheckpoint(string dir)
    {
        Directory.CreateDirectory(dir);
        _model.SavePretrained(dir);
        var sd = _optimizer.state_dict().State;
        if (sd.Count != _params.Length) throw new InvalidOperationException($"optimizer has {sd.Count} states for {_params.Length} parameters");
        var tensors = new List<KeyValuePair<string, Tensor>>();
        long adamStep = 0;
        for (int i = 0; i < _params.Length; i++)
        {
            var s = (AdamW.State)sd[i];
            adamStep = s.step;
            tensors.Add(new("exp_avg." + _params[i].Name, s.exp_avg));
            tensors.Add(new("exp_avg_sq." + _params[i].Name, s.exp_avg_sq));
        }
        SafeTensorsWriter.Write(Path.Combine(dir, OptimizerFileName), tensors,
            new Dictionary<string, string> { ["format"] = "caa-adamw", ["adam_step"] = adamStep.ToString(CultureInfo.InvariantCulture) });
        var (epoch, index) = Step < Options.DrillSteps ? (-1, Step) : Schedule.Position(Step - Options.DrillSteps);
        var state = new CheckpointState
        {
            Step = Step, Epoch = epoch, BatchInEpoch = index, BatchesPerEpoch = Schedule.BatchesPerEpoch, DataHash = DataHash,
            DataConversations = _data.Count, Options = Options, SavedUtc = DateTimeOffset.UtcNow.ToString("O"),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, StateFileName), JsonSerializer.Serialize(state, Json));
    }

    /// <summary>Reads trainer_state.json of a checkpoint folder.</summary>
    public static CheckpointState ReadState(string dir)
    {
        var file = Path.Combine(dir, StateFileName);
        if (!File.Exists(file)) throw new FileNotFoundException($"no {StateFileName} in {dir}: not a training checkpoint", file);
        return JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(file)) ?? throw new InvalidDataException($"{file}: empty");
    }

    /// <summary>
    /// Restores weights, AdamW moments and the step from <paramref name="dir"/>. Refuses a checkpoint made on other data or with
    /// another seed or batch size (the data order would differ); other options (e.g. more steps) may change.
    /// </summary>
    public CheckpointState LoadCheckpoint(string dir)
    {
        var state = ReadState(dir);
        if (state.DataHash != DataHash || state.DataConversations != _data.Count)
            throw new InvalidDataException($"{dir}: the checkpoint was trained on other data (hash {state.DataHash}, {state.DataConversations} conversations; now {DataHash}, {_data.Count})");
        if (state.Options.Seed != Options.Seed || state.Options.BatchSize != Options.BatchSize || state.Options.SortPoolBatches != Options.SortPoolBatches
            || state.Options.DrillSteps != Options.DrillSteps)
            throw new InvalidDataException($"{dir}: the checkpoint used seed {state.Options.Seed} and batch size {state.Options.BatchSize}; this run uses {Options.Seed} and {Options.BatchSize}");
        using (var _ = no_grad())
        {
            using (var weights = CheckpointFolder.Open(dir))
                foreach (var (name, p) in _params) weights.ReadInto(name, p);
            using var opt = SafeTensorsFile.Open(Path.Combine(dir, OptimizerFileName));
            long adamStep = long.Parse(opt.Metadata["adam_step"], CultureInfo.InvariantCulture);
            var sd = _optimizer.state_dict().State;
            for (int i = 0; i < _params.Length; i++)
            {
                var s = (AdamW.State)sd[i];
                opt.ReadInto("exp_avg." + _params[i].Name, s.exp_avg);
                opt.ReadInto("exp_avg_sq." + _params[i].Name, s.exp_avg_sq);
                s.step = adamStep;
            }
        }
        Step = state.Step;
        return state;
    }

    static string HashData(IReadOnlyList<EncodedConversation> data)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> buf = stackalloc byte[4];
        foreach (var c in data)
        {
            BitConverter.TryWriteBytes(buf, c.Length); h.AppendData(buf);
            for (int i = 0; i < c.Length; i++)
            {
                BitConverter.TryWriteBytes(buf, c.Target[i] ? ~c.Ids[i] : c.Ids[i]);
                h.AppendData(buf);
            }
            // Only bottlenecked conversations add bytes, so data without any hashes as before.
            if (c.Bottleneck is { } bn)
            {
                BitConverter.TryWriteBytes(buf, -bn.SystemEnd); h.AppendData(buf);
                BitConverter.TryWriteBytes(buf, -bn.InstructionEnd); h.AppendData(buf);
            }
        }
        return Convert.ToHexString(h.GetHashAndReset())[..16].ToLowerInvariant();
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        foreach (var (_, p) in _params) p.requires_grad = false;
    }
}
