using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Interpret.OpenEnded;

/// <summary>One steered answer: <paramref name="Item"/> is the question's index in the dataset.</summary>
public sealed record OpenEndedResult(string Behavior, int Layer, double Multiplier, int Item, string Question, string Answer);

/// <summary>How to generate open-ended answers.</summary>
public sealed record OpenEndedOptions
{
    /// <summary>New tokens per answer (the paper: 100), greedy; generation stops early at EOS.</summary>
    public int MaxNewTokens { get; init; } = 100;
    /// <summary>Rows (question × multiplier pairs) generated together. Results do not depend on it.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Use the KV cache (same tokens, much faster).</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>Optional system prompt (the paper's open-ended runs use none).</summary>
    public string? SystemPrompt { get; init; }
}

/// <summary>Progress of <see cref="OpenEndedGeneration.Generate(LlamaForCausalLM, Llama2Tokenizer, string, int, Tensor, IReadOnlyList{string}, IReadOnlyList{double}, OpenEndedOptions?, IProgress{OpenEndedProgress}?, CancellationToken)"/>.</summary>
public readonly record struct OpenEndedProgress(int RowsDone, int RowsTotal, long TokensGenerated);

/// <summary>
/// CAA's open-ended evaluation: greedy answers to <c>[INST] {question} [/INST]</c> with <c>multiplier × vector</c> added to the
/// output of block <c>layer</c> from the instruction's closing <c>]</c> on, generated tokens included.
/// Every (question, multiplier) pair is a batch row with its own multiplier; each row's answer is the one it would get alone.
/// </summary>
public static class OpenEndedGeneration
{
    /// <summary>Steers with <paramref name="vectors"/>[<paramref name="layer"/>].</summary>
    public static IReadOnlyList<OpenEndedResult> Generate(LlamaForCausalLM model, Llama2Tokenizer tokenizer, string behavior,
        IReadOnlyDictionary<int, Tensor> vectors, int layer, IReadOnlyList<string> questions, IReadOnlyList<double> multipliers,
        OpenEndedOptions? options = null, IProgress<OpenEndedProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (!vectors.TryGetValue(layer, out var v))
            throw new ArgumentException($"no steering vector for layer {layer}; have layers {string.Join(", ", vectors.Keys.Order())}", nameof(vectors));
        return Generate(model, tokenizer, behavior, layer, v, questions, multipliers, options, progress, ct);
    }

    /// <summary>
    /// Answers every question at every multiplier with <c>vector</c> ([hidden], any float dtype/device) steering block <c>layer</c>.
    /// Results are ordered by multiplier (as given), then by question index.
    /// </summary>
    public static IReadOnlyList<OpenEndedResult> Generate(LlamaForCausalLM model, Llama2Tokenizer tokenizer, string behavior,
        int layer, Tensor vector, IReadOnlyList<string> questions, IReadOnlyList<double> multipliers,
        OpenEndedOptions? options = null, IProgress<OpenEndedProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(vector);
        ArgumentNullException.ThrowIfNull(questions);
        ArgumentNullException.ThrowIfNull(multipliers);
        options ??= new OpenEndedOptions();
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), "BatchSize must be ≥ 1");
        if (options.MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxNewTokens must be ≥ 0");
        if (layer < 0 || layer >= model.Config.NumHiddenLayers)
            throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} is outside 0…{model.Config.NumHiddenLayers - 1}");
        if (vector.dim() != 1 || vector.shape[0] != model.Config.HiddenSize)
            throw new ArgumentException($"steering vector has shape [{string.Join(",", vector.shape)}]; the model needs [{model.Config.HiddenSize}]", nameof(vector));
        foreach (var m in multipliers)
            if (!double.IsFinite(m)) throw new ArgumentException($"multiplier {m} is not finite", nameof(multipliers));

        var prompts = questions.Select(q => (IReadOnlyList<int>)Llama2Chat.Encode(tokenizer, q, system: options.SystemPrompt)).ToArray();
        var instructionEnd = prompts.Select(p => Llama2Chat.InstructionEnd(p, tokenizer)).ToArray();

        // Rows: every (question, multiplier); longest prompts first so that a batch holds similar lengths (little padding).
        var rows = (from q in Enumerable.Range(0, questions.Count) from m in Enumerable.Range(0, multipliers.Count) select (Q: q, M: m))
            .OrderByDescending(r => prompts[r.Q].Count).ThenBy(r => r.Q).ThenBy(r => r.M).ToArray();
        var answers = new string[questions.Count, multipliers.Count];
        var generation = new GenerationOptions { MaxNewTokens = options.MaxNewTokens, Temperature = 0, StopAtEos = true, UseCache = options.UseCache };
        var hook = HookPoints.ResidPostOf(layer);
        long tokens = 0;
        var done = 0;
        progress?.Report(new OpenEndedProgress(0, rows.Length, 0));
        foreach (var chunk in rows.Chunk(options.BatchSize))
        {
            ct.ThrowIfCancellationRequested();
            var batchPrompts = chunk.Select(r => prompts[r.Q]).ToArray();
            long[] starts;
            using (var batch = TokenBatch.LeftPad(batchPrompts))
                // Generate left-pads the same way, so these are the columns it will use. No [/INST] (cannot happen with the
                // chat template) would mean "every position", as in the paper's code.
                starts = chunk.Select((r, i) => instructionEnd[r.Q] < 0 ? -1L : batch.Column(i, instructionEnd[r.Q])).ToArray();
            IReadOnlyList<int[]> outputs;
            using (var mult = tensor(chunk.Select(r => (float)multipliers[r.M]).ToArray()))
            using (model.Hooks.AddVector(hook, vector, mult, PositionMask.From(starts)))
                outputs = model.Generate(batchPrompts, generation, (_, _) => tokens++);
            for (var i = 0; i < chunk.Length; i++)
                answers[chunk[i].Q, chunk[i].M] = Answer(tokenizer, outputs[i]);
            done += chunk.Length;
            progress?.Report(new OpenEndedProgress(done, rows.Length, tokens));
        }

        var results = new List<OpenEndedResult>(rows.Length);
        for (var m = 0; m < multipliers.Count; m++)
            for (var q = 0; q < questions.Count; q++)
                results.Add(new OpenEndedResult(behavior, layer, multipliers[m], q, questions[q], answers[q, m]));
        return results;
    }

    /// <summary>The answer text of generated tokens, stripped like the paper's <c>split("[/INST]")[-1].strip()</c>.</summary>
    public static string Answer(Llama2Tokenizer tokenizer, IReadOnlyList<int> generated) => tokenizer.Decode(generated).Trim();
}
