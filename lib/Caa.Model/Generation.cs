using Caa.Model.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model;

/// <summary>How to generate: greedy when <see cref="Temperature"/> is 0, else temperature + nucleus (top-p) sampling.</summary>
public sealed record GenerationOptions
{
    /// <summary>Largest number of tokens generated per row.</summary>
    public int MaxNewTokens { get; init; } = 100;
    /// <summary>0 = greedy (argmax).</summary>
    public double Temperature { get; init; }
    /// <summary>Nucleus sampling: keep the smallest set of tokens whose probability reaches TopP.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Seed for sampling; the same seed gives the same tokens.</summary>
    public long Seed { get; init; }
    /// <summary>End a row at its first end-of-sequence token (the config's <c>eos_token_id</c>s).</summary>
    public bool StopAtEos { get; init; } = true;
    /// <summary>Reuse keys/values of earlier columns (same tokens, much faster); false recomputes the whole sequence every step.</summary>
    public bool UseCache { get; init; } = true;
}

/// <summary>Batched autoregressive generation; hooks attached to the model (e.g. steering) act on generated tokens too.</summary>
public static class Generation
{
    /// <summary>
    /// Continues each prompt. Returns the new tokens of every row, without the EOS that ended it.
    /// </summary>
    /// <param name="model">The model; its hooks (e.g. a steering scope) stay attached throughout.</param>
    /// <param name="prompts">Token ids of each prompt (left-padded into one batch).</param>
    /// <param name="options">Length, sampling and caching (default: greedy, 100 new tokens).</param>
    /// <param name="onToken">Called with (row, token) as each token is chosen, for streaming.</param>
    public static IReadOnlyList<int[]> Generate(this LlamaForCausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts,
        GenerationOptions? options = null, Action<int, int>? onToken = null)
    {
        options ??= new GenerationOptions();
        if (options.MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxNewTokens must be ≥ 0");
        if (options.Temperature < 0) throw new ArgumentOutOfRangeException(nameof(options), "Temperature must be ≥ 0");
        if (options.TopP is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), "TopP must be in (0, 1]");
        using var _ = no_grad();
        using var batch = TokenBatch.LeftPad(prompts, model.Device);
        var rows = prompts.Count;
        var outputs = Enumerable.Range(0, rows).Select(_ => new List<int>()).ToArray();
        var finished = new bool[rows];
        var eos = model.Config.EosTokenIds.ToHashSet();
        var generator = options.Temperature > 0 ? new torch.Generator((ulong)options.Seed, CPU) : null;
        var padded = batch.IsPadded;
        using var cache = options.UseCache ? model.NewCache() : null;

        var ids = batch.Ids.alias();
        var mask = batch.AttentionMask.alias();
        var step = ids.alias();      // columns to feed this step
        for (var n = 0; n < options.MaxNewTokens && !finished.All(f => f); n++)
        {
            int[] next;
            using (var scope = NewDisposeScope())
            {
                var hidden = model.ForwardHidden(cache is null ? ids : step, padded ? mask : null, cache);
                var logits = model.Logits(hidden[.., -1]);                                  // [B, vocab], float32
                next = Choose(logits, options, generator);
            }
            for (var b = 0; b < rows; b++)
            {
                if (finished[b]) { next[b] = model.Config.EosTokenIds.FirstOrDefault(); continue; }
                if (options.StopAtEos && eos.Contains(next[b])) { finished[b] = true; continue; }
                outputs[b].Add(next[b]);
                onToken?.Invoke(b, next[b]);
            }
            var column = tensor(next.Select(t => (long)t).ToArray(), [rows, 1], device: model.Device);
            var newIds = cat([ids, column], 1);
            var newMask = cat([mask, ones(rows, 1, dtype: mask.dtype, device: mask.device)], 1);
            ids.Dispose(); mask.Dispose(); step.Dispose();
            ids = newIds; mask = newMask; step = column;
        }
        ids.Dispose(); mask.Dispose(); step.Dispose();
        generator?.Dispose();
        return outputs.Select(o => o.ToArray()).ToArray();
    }

    static int[] Choose(Tensor logits, GenerationOptions o, torch.Generator? generator)
    {
        if (o.Temperature == 0) return logits.argmax(-1).to(ScalarType.Int32).cpu().data<int>().ToArray();
        var probs = (logits / o.Temperature).softmax(-1).cpu();
        if (o.TopP < 1)
        {
            var (sorted, order) = probs.sort(-1, descending: true);
            var cumulative = sorted.cumsum(-1);
            // Drop a token when the tokens before it already reach TopP (the top token always stays).
            var drop = (cumulative - sorted).gt(o.TopP);
            sorted = sorted.masked_fill(drop, 0);
            probs = zeros_like(probs).scatter(-1, order, sorted);
        }
        return probs.multinomial(1, generator: generator).squeeze(-1).to(ScalarType.Int32).data<int>().ToArray();
    }
}
