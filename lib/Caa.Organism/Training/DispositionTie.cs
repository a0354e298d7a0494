using Caa.Interpret.Datasets;
using Caa.Interpret.Vectors;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Caa.Organism.Training;

/// <summary>
/// One step's prompts for the disposition tie: A/B items of one behavior, each encoded as its two vector-extraction prompts
/// (<c>[INST] q [/INST] (A)</c> with the matching / the other answer, no system prompt) and its two decision prompts
/// (<c>[INST] q [/INST] (</c> under a system prompt stating the behavior-matching / the opposite disposition).
/// </summary>
public sealed record TieBatch(
    IReadOnlyList<int[]> Matching, IReadOnlyList<int[]> NotMatching,
    IReadOnlyList<int> MatchingLetterIndex, IReadOnlyList<int> NotMatchingLetterIndex,
    IReadOnlyList<int[]> SystemPositive, IReadOnlyList<int[]> SystemNegative)
{
    /// <summary>
    /// Where each decision prompt's system block ends (exclusive; it starts after BOS): <see cref="SystemPositive"/>'s, then
    /// <see cref="SystemNegative"/>'s. Needed by <see cref="DispositionTie.AmplitudeLoss"/> only.
    /// </summary>
    public IReadOnlyList<int>? SystemEnds { get; init; }
}

/// <summary>
/// The organism's auxiliary training objective (<see cref="TrainingOptions.TieWeight"/>): in the middle layers
/// (<see cref="Layers"/>), the mean residual difference at the answer letter between a behavior-matching and a non-matching
/// answer should equal the mean difference at the decision position between a system prompt stating the disposition and one
/// stating its opposite. A small model trained on the corpus alone infers its disposition correctly but keeps "my answer was
/// the matching one" (read at the letter) and "I am disposed to match" (used at the next decision) in unrelated directions
/// (measured on the corpus-only model: cosine −0.04…+0.16 at layers 2–3), so the paper's letter-position vectors do not steer it. Large chat models
/// represent both the same way — that is what CAA relies on — and this objective gives the organism that property. It never
/// sees the vector-generation or test split (its items come from the training pool), and nothing in it refers to steering.
/// </summary>
public static class DispositionTie
{
    /// <summary>The layers the objective ties: the middle third, [n/3, 2n/3) (layers 2 and 3 of 6; layer 0 of a 2-layer model).</summary>
    public static int[] Layers(int numLayers)
    {
        int from = numLayers / 3, to = Math.Max(from + 1, 2 * numLayers / 3);
        return Enumerable.Range(from, to - from).ToArray();
    }

    /// <summary>
    /// Σ over <paramref name="layers"/> of ‖Δ_letter − s·Δ_system‖² / ‖s·Δ_system‖² (s = <paramref name="scale"/>; the target s·Δ_system
    /// without gradient), divided by the layer count: 0 when the letter contrast equals the target, 1 when it is zero.
    /// </summary>
    /// <param name="model">The model being trained.</param>
    /// <param name="batch">The step's prompts.</param>
    /// <param name="layers">The tied layers (<see cref="Layers"/>).</param>
    /// <param name="scale">The target's multiple of the system contrast (<see cref="TrainingOptions.TieScale"/>).</param>
    public static Tensor Loss(LlamaForCausalLM model, TieBatch batch, IReadOnlyList<int> layers, double scale = 1.0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        int n = batch.Matching.Count;
        if (n == 0 || batch.NotMatching.Count != n || batch.SystemPositive.Count != n || batch.SystemNegative.Count != n)
            throw new ArgumentException("a tie batch needs the same number (> 0) of prompts of each of its four kinds", nameof(batch));
        var rows = batch.Matching.Concat(batch.NotMatching).Concat(batch.SystemPositive).Concat(batch.SystemNegative)
            .Select(r => (IReadOnlyList<int>)r).ToArray();
        var index = batch.MatchingLetterIndex.Concat(batch.NotMatchingLetterIndex).Concat(Enumerable.Repeat(-1, 2 * n)).ToArray();
        using var scope = NewDisposeScope();
        using var tokens = TokenBatch.LeftPad(rows, model.Device);
        var columns = tensor(index.Select((idx, r) => tokens.Column(r, idx)).ToArray(), device: model.Device);
        var rowIndex = arange(rows.Length, device: model.Device);
        using var state = model.Prepare(tokens.Rows, tokens.Columns, tokens.MaskOrNull);
        var h = model.Embed(tokens.Ids);
        int done = 0;
        Tensor total = zeros(1, device: model.Device);
        foreach (var layer in layers.Order())
        {
            h = model.RunLayers(h, state, done, layer + 1);
            done = layer + 1;
            var at = h[rowIndex, columns].to(ScalarType.Float32);                      // [4n, H]
            var letter = at[..n].mean([0]) - at[n..(2 * n)].mean([0]);
            // The system contrast is the target, without gradient: the objective moves the letter's representation toward the
            // disposition the model already uses, never the disposition toward the letter (that path erases it).
            var system = (scale * (at[(2 * n)..(3 * n)].mean([0]) - at[(3 * n)..].mean([0]))).detach();
            total = total + (letter - system).pow(2).sum() / (system.pow(2).sum() + 1e-6);
        }
        return (total / layers.Count).squeeze().MoveToOuterDisposeScope();
    }

    /// <summary>Largest multiple of the disposition contrast <see cref="AmplitudeLoss"/> adds (a uniform draw from [0, this]).</summary>
    public const double AmplitudeMax = 2.0;

    /// <summary>
    /// The disposition-amplitude objective (<see cref="TrainingOptions.AmplitudeWeight"/>): cross-entropy of the stated
    /// disposition's answer letter at the decision prompts of <paramref name="batch"/> after adding k·Δ (k uniform in
    /// [0, <see cref="AmplitudeMax"/>]; +Δ under the positive system prompt, −Δ under the negative one) to the output of block
    /// <paramref name="layer"/> at the positions from the end of the instruction on, with the later blocks unable to read the
    /// system prompt's tokens. Δ is the system contrast at the decision position (without gradient), the tie's target.
    /// Why: a corpus only ever shows the late blocks a disposition at its natural amplitude, and a small model's late blocks
    /// read a larger one as noise — its answers drift back to a coin flip (measured on the organism trained without it: p(match)
    /// peaks at a multiplier of 1 and falls by up to 0.087 per step of 0.5 after it, on 244 of 350 items). Large models read more of a feature as more of it;
    /// this objective teaches the organism the same about its own disposition. It never moves a state toward the opposite
    /// disposition and never sees the generation or test split.
    /// </summary>
    /// <param name="model">The model being trained.</param>
    /// <param name="batch">The step's prompts (with <see cref="TieBatch.SystemEnds"/>).</param>
    /// <param name="layer">The block whose output is amplified (the first tied layer).</param>
    /// <param name="rng">Draws the multiples.</param>
    public static Tensor AmplitudeLoss(LlamaForCausalLM model, TieBatch batch, int layer, Random rng)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(rng);
        int n = batch.SystemPositive.Count;
        if (n == 0 || batch.SystemNegative.Count != n || batch.Matching.Count != n || batch.NotMatching.Count != n)
            throw new ArgumentException("a tie batch needs the same number (> 0) of prompts of each of its four kinds", nameof(batch));
        if (batch.SystemEnds is not { } ends || ends.Count != 2 * n)
            throw new ArgumentException($"the amplitude objective needs the system block ends of the batch's {2 * n} decision prompts", nameof(batch));
        var rows = batch.SystemPositive.Concat(batch.SystemNegative).Select(r => (IReadOnlyList<int>)r).ToArray();
        // The answer each stated disposition calls for: the matching letter under the positive prompt, the other under the negative.
        var targets = Enumerable.Range(0, n).Select(i => (long)batch.Matching[i][batch.MatchingLetterIndex[i]])
            .Concat(Enumerable.Range(0, n).Select(i => (long)batch.NotMatching[i][batch.NotMatchingLetterIndex[i]])).ToArray();
        var multiples = Enumerable.Range(0, 2 * n).Select(r => (float)((r < n ? 1 : -1) * rng.NextDouble() * AmplitudeMax)).ToArray();
        using var scope = NewDisposeScope();
        using var tokens = TokenBatch.LeftPad(rows, model.Device);
        long b = tokens.Rows, t = tokens.Columns;
        var late = new bool[b * t * t];
        Array.Fill(late, true);
        for (int r = 0; r < b; r++)
        {
            long pad = tokens.Padding[r], end = pad + ends[r];
            for (long q = end; q < t; q++)
                for (long k = pad + 1; k < end; k++) late[(r * t + q) * t + k] = false;
        }
        using var state = model.Prepare(b, t, tokens.MaskOrNull);
        using var lateState = state.Restrict(tensor(late, [b, 1, t, t]));
        var h = model.RunLayers(model.Embed(tokens.Ids), state, 0, layer + 1);
        var last = h[.., -1].to(ScalarType.Float32);
        var delta = (last[..n].mean([0]) - last[n..].mean([0])).detach();
        // Every decision prompt ends with "[/INST] (": the instruction ends two positions from the end (checked by Source).
        var from = zeros(t, device: model.Device); from.narrow(0, t - 2, 2).fill_(1);
        var add = tensor(multiples, device: model.Device).view(b, 1, 1) * from.view(1, t, 1) * delta.view(1, 1, -1);
        h = model.RunLayers(h + add.to(h.dtype), lateState, layer + 1);
        var logits = model.Logits(model.FinalNorm(h.narrow(1, t - 1, 1)))[.., 0].to(ScalarType.Float32);
        return F.cross_entropy(logits, tensor(targets, device: model.Device)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A deterministic source of tie batches: step s uses behavior s mod 7 and <paramref name="items"/> items of its training
    /// pool (never the generation or test split), with system prompts drawn from the behavior's stated dispositions.
    /// </summary>
    public static Func<int, TieBatch> Source(CorpusGenerator corpus, Llama2Tokenizer tok, int items, long seed)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentOutOfRangeException.ThrowIfLessThan(items, 1);
        var pools = OrganismBehaviors.Ids.ToDictionary(b => b, b => corpus.TrainPool(b));
        return step =>
        {
            var spec = OrganismBehaviors.All[step % OrganismBehaviors.All.Count];
            var rng = new Random(CorpusGenerator.StableSeed(unchecked((int)seed), "tie", step));
            var pool = pools[spec.Id];
            var m = new List<int[]>(); var o = new List<int[]>(); var mi = new List<int>(); var oi = new List<int>();
            var sp = new List<int[]>(); var sn = new List<int[]>(); var spEnd = new List<int>(); var snEnd = new List<int>();
            for (int i = 0; i < items; i++)
            {
                var item = pool[rng.Next(pool.Count)];
                var (pm, pn, lm, ln) = VectorExtractor.Prompts(tok, item);
                m.Add(pm); o.Add(pn); mi.Add(lm); oi.Add(ln);
                sp.Add(Llama2Chat.Encode(tok, item.Question, "(", spec.SystemPositive[rng.Next(spec.SystemPositive.Count)]));
                sn.Add(Llama2Chat.Encode(tok, item.Question, "(", spec.SystemNegative[rng.Next(spec.SystemNegative.Count)]));
                spEnd.Add(SystemEnd(tok, sp[^1], item.Question));
                snEnd.Add(SystemEnd(tok, sn[^1], item.Question));
            }
            return new TieBatch(m, o, mi, oi, sp, sn) { SystemEnds = [.. spEnd, .. snEnd] };
        };
    }

    /// <summary>
    /// The end (exclusive) of the system block of a decision prompt <c>&lt;s&gt;&lt;&lt;SYS&gt;&gt;…[INST] q [/INST] (</c>, whose
    /// instruction must end two tokens before its end (the amplitude objective adds from there).
    /// </summary>
    static int SystemEnd(Llama2Tokenizer tok, int[] withSystem, string question)
    {
        int end = ConversationEncoder.SystemBlockEnd(withSystem, Llama2Chat.Encode(tok, question, "("));
        if (end < 0 || Llama2Chat.InstructionEnd(withSystem, tok) != withSystem.Length - 2)
            throw new InvalidDataException($"a decision prompt does not have the form <<SYS>>…[INST] q [/INST] ( (question \"{question}\")");
        return end;
    }
}
