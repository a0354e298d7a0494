using Caa.Interpret.Datasets;
using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Interpret.Evaluation;

/// <summary>Steering to apply during an evaluation: <c>Multiplier × Vectors[L]</c> added to <c>resid_post</c> of each listed layer L,
/// from each row's <see cref="AbPrompt.SteerStart"/> on (CAA's rule).</summary>
/// <param name="Vectors">Layer → vector [hidden] (any dtype/device).</param>
/// <param name="Multiplier">Scale; 0 leaves the model's output exactly unchanged.</param>
public sealed record Steering(IReadOnlyDictionary<int, Tensor> Vectors, double Multiplier)
{
    /// <summary>One vector at one layer.</summary>
    public static Steering At(int layer, Tensor vector, double multiplier) => new(new Dictionary<int, Tensor> { [layer] = vector }, multiplier);
}

/// <summary>Per-item p(match) of an A/B evaluation and their mean.</summary>
public sealed record AbEvalResult(IReadOnlyList<double> PMatch)
{
    /// <summary>Mean p(match) over items (NaN for none).</summary>
    public double Mean => PMatch.Count == 0 ? double.NaN : PMatch.Average();
}

/// <summary>
/// The paper's A/B evaluation: one forward pass over <c>[INST] {question} [/INST] (</c>, and at the last position
/// p(match) = p(matching letter) / (p(A) + p(B)) (see <see cref="AbScoring"/>). Prompts are left-padded into batches and only
/// the last column's logits are computed. Hooks already attached to the model act as usual (steered evaluation with any hook);
/// <see cref="Steering"/> adds CAA steering with the start column of each row worked out for its padding.
/// </summary>
public static class AbEvaluation
{
    public const int DefaultBatchSize = 16;

    /// <summary>Scores <paramref name="prompts"/> in batches of <paramref name="batchSize"/>, with optional CAA
    /// <paramref name="steering"/>; <paramref name="progress"/> receives the number of prompts scored after each batch.</summary>
    public static AbEvalResult Evaluate(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts, Steering? steering = null,
        int batchSize = DefaultBatchSize, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be ≥ 1");
        Validate(model, prompts);
        var p = new double[prompts.Count];
        using var _ = no_grad();
        for (var start = 0; start < prompts.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = prompts.Skip(start).Take(batchSize).ToList();
            var scores = ScoreBatch(model, batch, steering);
            scores.CopyTo(p, start);
            progress?.Report(start + batch.Count);
        }
        return new AbEvalResult(p);
    }

    /// <summary>Encodes <paramref name="items"/> (optionally with a system prompt, for the prompting comparison) and scores them.</summary>
    public static AbEvalResult Evaluate(LlamaForCausalLM model, Llama2Tokenizer tok, IEnumerable<AbItem> items, string? system = null,
        Steering? steering = null, int batchSize = DefaultBatchSize, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        Evaluate(model, AbPrompt.FromItems(tok, items, system), steering, batchSize, progress, cancellationToken);

    /// <summary>p(match) for one batch, in order.</summary>
    static double[] ScoreBatch(LlamaForCausalLM model, IReadOnlyList<AbPrompt> batch, Steering? steering)
    {
        using var scope = NewDisposeScope();
        using var tb = TokenBatch.LeftPad(batch.Select(b => (IReadOnlyList<int>)b.Ids).ToList(), model.Device);
        var starts = StartColumns(batch, tb.Padding);
        var hooks = new List<IDisposable>();
        try
        {
            if (steering is not null && steering.Multiplier != 0)
                foreach (var (layer, v) in steering.Vectors.OrderBy(kv => kv.Key))
                    hooks.Add(model.Hooks.AddVector(HookPoints.ResidPostOf(layer), v, tensor((float)steering.Multiplier), PositionMask.From(starts)));
            var hidden = model.ForwardHidden(tb.Ids, tb.MaskOrNull);
            return ScoreNormed(model, hidden[.., -1], batch);
        }
        finally
        {
            foreach (var h in hooks) h.Dispose();
        }
    }

    /// <summary>Absolute steering start column per row of a left-padded batch (-1 stays -1: every column).</summary>
    internal static long[] StartColumns(IReadOnlyList<AbPrompt> batch, IReadOnlyList<long> padding) =>
        batch.Select((b, i) => b.SteerStart < 0 ? -1L : padding[i] + b.SteerStart).ToArray();

    /// <summary>
    /// p(match) per row from final-normed last-position hidden states [rows, hidden]: only the logits of the answer letters are
    /// computed (the rows of the output matrix for the distinct letter ids, usually two), with the same linear layer and float32
    /// cast as <see cref="LlamaForCausalLM.Logits"/>. Row r is scored against <paramref name="prompts"/>[r % count].
    /// </summary>
    internal static double[] ScoreNormed(LlamaForCausalLM model, Tensor normed, IReadOnlyList<AbPrompt> prompts)
    {
        using var scope = NewDisposeScope();
        var rows = (int)normed.shape[0];
        var letters = prompts.SelectMany(p => new[] { p.MatchTokenId, p.OtherTokenId }).Distinct().ToArray();
        var column = letters.Select((id, k) => (id, k)).ToDictionary(x => x.id, x => (long)x.k);
        var weight = model.lm_head?.weight ?? model.model.embed_tokens.weight;
        var w = weight.index_select(0, tensor(letters.Select(x => (long)x).ToArray(), device: weight.device));     // [K, H]
        var logits = nn.functional.linear(normed.to(weight.device), w).to(ScalarType.Float32);                 // [R, K]
        var idx = new long[rows * 2];
        for (var r = 0; r < rows; r++)
        {
            var pr = prompts[r % prompts.Count];
            idx[2 * r] = column[pr.MatchTokenId]; idx[2 * r + 1] = column[pr.OtherTokenId];
        }
        var picked = logits.gather(1, tensor(idx, [rows, 2], device: logits.device)).cpu().data<float>().ToArray();
        var p = new double[rows];
        for (var r = 0; r < rows; r++) p[r] = AbScoring.PMatch(picked[2 * r], picked[2 * r + 1]);
        return p;
    }

    /// <summary>p(match) per row from last-position logits [rows, vocab]; row r is scored against <paramref name="prompts"/>[r % count].</summary>
    internal static double[] Scores(Tensor logits, IReadOnlyList<AbPrompt> prompts)
    {
        using var scope = NewDisposeScope();
        var rows = (int)logits.shape[0];
        var ids = new long[rows * 2];
        for (var r = 0; r < rows; r++)
        {
            var pr = prompts[r % prompts.Count];
            ids[2 * r] = pr.MatchTokenId; ids[2 * r + 1] = pr.OtherTokenId;
        }
        var picked = logits.gather(1, tensor(ids, [rows, 2], device: logits.device)).to(ScalarType.Float32).cpu().data<float>().ToArray();
        var p = new double[rows];
        for (var r = 0; r < rows; r++) p[r] = AbScoring.PMatch(picked[2 * r], picked[2 * r + 1]);
        return p;
    }

    internal static void Validate(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts)
    {
        var vocab = model.Config.VocabSize;
        for (var i = 0; i < prompts.Count; i++)
        {
            var p = prompts[i] ?? throw new ArgumentException($"prompt {i} is null", nameof(prompts));
            if (p.Ids is null || p.Ids.Length == 0) throw new ArgumentException($"prompt {i} has no tokens", nameof(prompts));
            if (p.SteerStart >= p.Ids.Length) throw new ArgumentException($"prompt {i}: steering start {p.SteerStart} is past its {p.Ids.Length} tokens", nameof(prompts));
            foreach (var id in p.Ids.Append(p.MatchTokenId).Append(p.OtherTokenId))
                if ((uint)id >= (uint)vocab) throw new ArgumentException($"prompt {i}: token id {id} is outside the model's vocabulary (0…{vocab - 1})", nameof(prompts));
        }
    }
}
