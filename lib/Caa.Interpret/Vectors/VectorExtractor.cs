using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Caa.Interpret.Datasets;
using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Interpret.Vectors;

/// <summary>Settings of <see cref="VectorExtractor.Extract"/>.</summary>
public sealed record ExtractionOptions
{
    /// <summary>Layers (block indices) to extract at; null = every layer. All come from the same forward passes.</summary>
    public IReadOnlyList<int>? Layers { get; init; }

    /// <summary>A/B items per forward pass; each item gives two rows (matching and not-matching answer).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>System prompt for every prompt (the prompting comparison), placed as the paper's code does; null = none (the main experiments).</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>Also return every item's activations (<see cref="ItemActivations"/>, on the CPU) for PCA.</summary>
    public bool KeepActivations { get; init; }

    /// <summary>SHA-256 recorded as <see cref="VectorMetadata.DatasetSha256"/> (e.g. of the dataset file); null = hash of the items' canonical JSON.</summary>
    public string? DatasetSha256 { get; init; }
}

/// <summary>What <see cref="VectorExtractor.Extract"/> returns: the vectors and, when asked for, the per-item activations.</summary>
public sealed class ExtractionResult(SteeringVectorSet vectors, ItemActivations? activations) : IDisposable
{
    public SteeringVectorSet Vectors { get; } = vectors;
    public ItemActivations? Activations { get; } = activations;

    public void Dispose() { Vectors.Dispose(); Activations?.Dispose(); }
}

/// <summary>
/// Contrastive Activation Addition's extraction, as the paper's code does it: for each A/B item, the prompts
/// <c>&lt;s&gt;[INST] {question} [/INST] {answer}</c> with the behavior-matching and with the other answer; the output of
/// block L (<c>resid_post</c>) at the answer-letter token ("A" in "(A)"); vector(L) = mean over items of
/// act(matching) − act(not matching).
/// </summary>
/// <remarks>
/// Every requested layer is read in one forward pass per batch (one capture over all layers, gathering only each row's
/// letter column, so memory stays small); the pass stops after the last requested block. Rows are left-padded
/// (<see cref="TokenBatch"/>), items batched in order of length to keep padding small; positions follow each row's
/// padding, so batched and one-at-a-time extraction agree. Differences are summed in float64 on the model's device; the
/// vector is float32 on the CPU whatever the model's dtype and device. Hooks already attached to the model stay active.
/// </remarks>
public static partial class VectorExtractor
{
    /// <summary>
    /// The mean over items (rows) of <paramref name="matching"/> − <paramref name="notMatching"/>, both [items, hidden]
    /// in any dtype: float32 [hidden] on their device, computed in float64.
    /// </summary>
    public static Tensor MeanDifference(Tensor matching, Tensor notMatching)
    {
        ArgumentNullException.ThrowIfNull(matching);
        ArgumentNullException.ThrowIfNull(notMatching);
        if (matching.dim() != 2) throw new ArgumentException($"activations must be [items, hidden]; got [{string.Join(",", matching.shape)}]", nameof(matching));
        using var acc = new MeanDifferenceAccumulator(matching.shape[1], matching.device);
        acc.Add(matching, notMatching);
        return acc.Mean();
    }

    /// <summary>The two prompts of an item (matching answer, other answer) as token ids with BOS, and the answer letter's index in each.</summary>
    /// <exception cref="ArgumentException">The item is not a valid A/B item (answers of the form "(X)", different letters, a question).</exception>
    public static (int[] Matching, int[] NotMatching, int MatchingLetterIndex, int NotMatchingLetterIndex) Prompts(Llama2Tokenizer tok, AbItem item, string? systemPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(item);
        var problem = Problem(item);
        if (problem is not null) throw new ArgumentException(problem, nameof(item));
        var m = Llama2Chat.Encode(tok, item.Question, assistantPrefix: item.AnswerMatchingBehavior, system: systemPrompt);
        var n = Llama2Chat.Encode(tok, item.Question, assistantPrefix: item.AnswerNotMatchingBehavior, system: systemPrompt);
        return (m, n, Llama2Chat.AnswerLetterPosition(m, tok), Llama2Chat.AnswerLetterPosition(n, tok));
    }

    /// <summary>
    /// Extracts the steering vectors of <paramref name="behavior"/> from <paramref name="items"/>.
    /// </summary>
    /// <param name="model">Any dtype/device; left in eval (no-grad) use.</param>
    /// <param name="tok">The model's Llama 2 tokenizer.</param>
    /// <param name="behavior">Behavior id (names the file the vectors are saved as).</param>
    /// <param name="items">A/B items; answers "(A)"/"(B)" (a leading space as in Anthropic's raw files is accepted).</param>
    /// <param name="options">Layers, batch size, system prompt, whether to keep per-item activations.</param>
    /// <param name="progress">Receives the number of items done after each batch.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    /// <exception cref="ArgumentException">No items, an invalid item (its index is named), a bad layer or batch size.</exception>
    public static ExtractionResult Extract(LlamaForCausalLM model, Llama2Tokenizer tok, string behavior, IReadOnlyList<AbItem> items,
        ExtractionOptions? options = null, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(items);
        options ??= new ExtractionOptions();
        SteeringVectorSet.CheckBehaviorId(behavior);
        if (items.Count == 0) throw new ArgumentException($"'{behavior}': no A/B items to extract from", nameof(items));
        if (options.BatchSize < 1) throw new ArgumentException($"batch size must be at least 1; got {options.BatchSize}", nameof(options));
        var layers = ResolveLayers(options.Layers, model.Config.NumHiddenLayers);
        var hidden = model.Config.HiddenSize;

        // Tokenize and locate every letter first, so a bad item fails before any compute.
        var prompts = new (int[] M, int[] N, int Lm, int Ln)[items.Count];
        var letters = new char[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            try { prompts[i] = Prompts(tok, items[i], options.SystemPrompt); }
            catch (ArgumentException e) { throw new ArgumentException($"'{behavior}' item {i}: {e.Message}", nameof(items), e); }
            letters[i] = AbDataset.AnswerLetter(items[i].AnswerMatchingBehavior)!.Value;
        }

        var names = layers.Select(HookPoints.ResidPostOf).ToArray();
        var sums = layers.ToDictionary(l => l, _ => new MeanDifferenceAccumulator(hidden, model.Device));
        var kept = options.KeepActivations
            ? new SortedDictionary<int, (Tensor, Tensor)>(layers.ToDictionary(l => l, _ => (
                empty(items.Count, hidden, dtype: model.DType).DetachFromDisposeScope(),
                empty(items.Count, hidden, dtype: model.DType).DetachFromDisposeScope())))
            : null;
        try
        {
            var order = Enumerable.Range(0, items.Count).OrderBy(i => Math.Max(prompts[i].M.Length, prompts[i].N.Length)).ToArray();
            var done = 0;
            using var _ = no_grad();
            foreach (var chunk in order.Chunk(options.BatchSize))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var k = chunk.Length;
                // Rows 0…k−1: matching answers; rows k…2k−1: the other answers, same items in the same order.
                var rows = chunk.Select(i => (IReadOnlyList<int>)prompts[i].M).Concat(chunk.Select(i => (IReadOnlyList<int>)prompts[i].N)).ToArray();
                var letterIndex = chunk.Select(i => prompts[i].Lm).Concat(chunk.Select(i => prompts[i].Ln)).ToArray();
                using var batch = TokenBatch.LeftPad(rows, model.Device);
                var columns = tensor(letterIndex.Select((idx, r) => batch.Column(r, idx)).ToArray(), device: model.Device);
                using (var capture = model.Hooks.Capture(names, columns))
                {
                    using var state = model.Prepare(batch.Rows, batch.Columns, batch.MaskOrNull);
                    model.RunLayers(model.Embed(batch.Ids), state, 0, layers[^1] + 1);
                    var itemIndex = tensor(chunk.Select(i => (long)i).ToArray());
                    foreach (var (layer, name) in layers.Zip(names))
                    {
                        var acts = capture[name];                                           // [2k, H]
                        var m = acts[..k];
                        var n = acts[k..];
                        sums[layer].Add(m, n);
                        if (kept is not null)
                        {
                            kept[layer].Item1.index_copy_(0, itemIndex, m.cpu());
                            kept[layer].Item2.index_copy_(0, itemIndex, n.cpu());
                        }
                    }
                }
                done += k;
                progress?.Report(done);
            }

            var metadata = VectorMetadata.For(model, behavior, options.DatasetSha256 ?? ItemsSha256(items), items.Count, options.SystemPrompt);
            var vectors = new Dictionary<int, Tensor>();
            try
            {
                foreach (var layer in layers) vectors[layer] = sums[layer].Mean();
                var set = new SteeringVectorSet(metadata, vectors);
                var activations = kept is null ? null : new ItemActivations(metadata, letters, kept);
                kept = null; // owned by the result now
                return new ExtractionResult(set, activations);
            }
            finally
            {
                foreach (var v in vectors.Values) v.Dispose();
            }
        }
        finally
        {
            foreach (var s in sums.Values) s.Dispose();
            if (kept is not null) foreach (var (m, n) in kept.Values) { m.Dispose(); n.Dispose(); }
        }
    }

    /// <summary>Validates and sorts requested layers; null = all.</summary>
    static int[] ResolveLayers(IReadOnlyList<int>? layers, int modelLayers)
    {
        if (layers is null) return Enumerable.Range(0, modelLayers).ToArray();
        if (layers.Count == 0) throw new ArgumentException("no layers requested", nameof(layers));
        var bad = layers.Where(l => l < 0 || l >= modelLayers).ToArray();
        if (bad.Length > 0) throw new ArgumentException($"layers {SteeringVectorSet.FormatLayers(bad)} are outside the model's 0…{modelLayers - 1}", nameof(layers));
        return layers.Distinct().Order().ToArray();
    }

    static string? Problem(AbItem item) => AbDataset.ValidateItem(item).FirstOrDefault();

    /// <summary>SHA-256 of the items' canonical JSON: equals the hash of a dataset file the dataset tools wrote for these items.</summary>
    public static string ItemsSha256(IReadOnlyList<AbItem> items) => ContentHash.OfItems(items);
}
