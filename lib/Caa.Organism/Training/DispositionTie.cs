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

    /// <summary>
    /// Exchanges under the decision prompts' system prompts whose answers an amplified disposition must keep, for
    /// <see cref="DispositionTie.AnswerAmplitudeLoss"/>: each item's question without its choices answered in free text by the
    /// stated disposition (the behavior-matching choice's text under the positive prompt, the other's under the negative one),
    /// then one capability exchange of the corpus per item (its answer never depends on a disposition). Each is encoded as the
    /// corpus is, with its <see cref="EncodedConversation.Bottleneck"/> spans; the positive prompts' 2n rows come first
    /// (n free-text, n capability), then the negative prompts'.
    /// </summary>
    public IReadOnlyList<EncodedConversation>? AmplifiedAnswers { get; init; }
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
        var loss = Loss(model, batch, layers, scale, out var contrast);
        contrast.Dispose();
        return loss;
    }

    /// <summary>
    /// <see cref="Loss(LlamaForCausalLM, TieBatch, IReadOnlyList{int}, double)"/>, also giving <paramref name="contrast"/>: the
    /// system contrast Δ at the first tied layer (its mean output at the positive decision prompts' last position minus the
    /// negative ones', without gradient) — the direction the tie makes the letter contrast, and the one the amplitude objectives
    /// amplify, computed once per step from this forward.
    /// </summary>
    public static Tensor Loss(LlamaForCausalLM model, TieBatch batch, IReadOnlyList<int> layers, double scale, out Tensor contrast)
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
        Tensor? first = null;
        foreach (var layer in layers.Order())
        {
            h = model.RunLayers(h, state, done, layer + 1);
            done = layer + 1;
            var at = h[rowIndex, columns].to(ScalarType.Float32);                      // [4n, H]
            var letter = at[..n].mean([0]) - at[n..(2 * n)].mean([0]);
            // The system contrast is the target, without gradient: the objective moves the letter's representation toward the
            // disposition the model already uses, never the disposition toward the letter (that path erases it).
            var delta = (at[(2 * n)..(3 * n)].mean([0]) - at[(3 * n)..].mean([0])).detach();
            first ??= delta;
            var system = scale * delta;
            total = total + (letter - system).pow(2).sum() / (system.pow(2).sum() + 1e-6);
        }
        contrast = first!.MoveToOuterDisposeScope();
        return (total / layers.Count).squeeze().MoveToOuterDisposeScope();
    }

    /// <summary>Default largest multiple of the disposition contrast the amplitude objectives add (<see cref="TrainingOptions.AmplitudeMax"/>).</summary>
    public const double AmplitudeMax = 3.0;

    /// <summary>
    /// The disposition-amplitude objective (<see cref="TrainingOptions.AmplitudeWeight"/>): cross-entropy of the stated
    /// disposition's answer letter at the decision prompts of <paramref name="batch"/> after adding k·Δ (k uniform in
    /// [0, <paramref name="max"/>]; +Δ under the positive system prompt, −Δ under the negative one) to the output of block
    /// <paramref name="layer"/> at the positions from the end of the instruction on, with the later blocks unable to read the
    /// system prompt's tokens. Δ is the tie's system contrast (<see cref="Loss(LlamaForCausalLM, TieBatch, IReadOnlyList{int}, double, out Tensor)"/>).
    /// The early blocks run unrestricted, so the question's tokens carry the stated disposition too; hiding the prompt from them
    /// as well (the <see cref="SystemBottleneck"/>'s early mask) steered more but moved the capability answers by 10–19 points
    /// (measured in <c>lib/Caa.Organism/README.md</c>, "The early mask").
    /// Why: a corpus only ever shows the late blocks a disposition at its natural amplitude, and a small model's late blocks
    /// read a larger one as noise — its answers drift back to a coin flip (measured on the organism trained without it: p(match)
    /// peaks at a multiplier of 1 and falls by up to 0.087 per step of 0.5 after it, on 244 of 350 items). Large models read more of a feature as more of it;
    /// this objective teaches the organism the same about its own disposition. It never moves a state toward the opposite
    /// disposition and never sees the generation or test split.
    /// </summary>
    /// <param name="model">The model being trained.</param>
    /// <param name="batch">The step's prompts (with <see cref="TieBatch.SystemEnds"/>).</param>
    /// <param name="layer">The block whose output is amplified (the first tied layer).</param>
    /// <param name="contrast">Δ: the system contrast at <paramref name="layer"/>, without gradient.</param>
    /// <param name="rng">Draws the multiples.</param>
    /// <param name="max">Largest multiple (<see cref="TrainingOptions.AmplitudeMax"/>).</param>
    public static Tensor AmplitudeLoss(LlamaForCausalLM model, TieBatch batch, int layer, Tensor contrast, Random rng, double max = AmplitudeMax)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        CheckContrast(model, contrast);
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
        var multiples = Enumerable.Range(0, 2 * n).Select(r => (float)((r < n ? 1 : -1) * rng.NextDouble() * max)).ToArray();
        using var scope = NewDisposeScope();
        using var tokens = TokenBatch.LeftPad(rows, model.Device);
        long b = tokens.Rows, t = tokens.Columns;
        // Every decision prompt ends with "[/INST] (": its instruction ends two positions from the end (checked by Source).
        var spans = rows.Select((r, i) => new SystemBottleneck(ends[i], r.Count - 2)).ToArray();
        var (_, late) = Trainer.BottleneckMasks(spans, (int)t, tokens.Padding);
        using var state = model.Prepare(b, t, tokens.MaskOrNull);
        using var lateState = state.Restrict(tensor(late, [b, 1, t, t], device: model.Device));
        var h = model.RunLayers(model.Embed(tokens.Ids), state, 0, layer + 1);
        var from = zeros(t, device: model.Device); from.narrow(0, t - 2, 2).fill_(1);
        var add = tensor(multiples, device: model.Device).view(b, 1, 1) * from.view(1, t, 1) * contrast.view(1, 1, -1);
        h = model.RunLayers(h + add.to(h.dtype), lateState, layer + 1);
        var logits = model.Logits(model.FinalNorm(h.narrow(1, t - 1, 1)))[.., 0].to(ScalarType.Float32);
        return F.cross_entropy(logits, tensor(targets, device: model.Device)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The disposition-amplitude objective on whole answers (<see cref="TrainingOptions.AnswerAmplitudeWeight"/>): mean
    /// cross-entropy of the answer tokens of <see cref="TieBatch.AmplifiedAnswers"/> after adding k·Δ to the output of block
    /// <paramref name="layer"/> at every position from the end of the instruction on (k uniform in [0, <paramref name="max"/>];
    /// + under the positive system prompt, − under the negative one), with the later blocks unable to read the system prompt's
    /// tokens (as <see cref="AmplitudeLoss"/>). Δ is <see cref="AmplitudeLoss"/>'s — the direction the tie makes the CAA vector.
    /// The free-text rows must answer in the stated disposition's own words, the capability rows as without any disposition.
    /// Why: <see cref="AmplitudeLoss"/> teaches the late blocks to read an amplified disposition at the answer letter only. At
    /// the positions of a free-text answer they had never seen one, and the organism's open-ended answers steered by ±1 or ±2
    /// turned into runs of answer letters ("You are right.A) I agreeA)", "BBBBBBBBAAAA"; measured on the organism trained
    /// without it) — CAA steers every position of a generation, so the state must mean "answer in this disposition's words"
    /// there too. And amplifying further than 2 made more multiplier curves monotone but moved the capability answers with the
    /// disposition (TruthfulQA-style 0.90 → 0.64 at +1 with k up to 3); the capability rows teach that a disposition, however
    /// strong, says nothing about facts. It never moves a state toward the opposite disposition and never sees the generation
    /// or test split.
    /// </summary>
    /// <param name="model">The model being trained.</param>
    /// <param name="batch">The step's prompts (with <see cref="TieBatch.AmplifiedAnswers"/>).</param>
    /// <param name="layer">The block whose output is amplified (the first tied layer).</param>
    /// <param name="contrast">Δ: the system contrast at <paramref name="layer"/>, without gradient.</param>
    /// <param name="rng">Draws the multiples.</param>
    /// <param name="max">Largest multiple (<see cref="TrainingOptions.AmplitudeMax"/>).</param>
    public static Tensor AnswerAmplitudeLoss(LlamaForCausalLM model, TieBatch batch, int layer, Tensor contrast, Random rng, double max = AmplitudeMax)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        CheckContrast(model, contrast);
        ArgumentNullException.ThrowIfNull(rng);
        if (batch.AmplifiedAnswers is not { } rows || rows.Count % 2 != 0 || rows.Count == 0 || rows.Any(r => r.Bottleneck is null))
            throw new ArgumentException("the answer amplitude objective needs an even number (> 0) of answers with their system-block spans", nameof(batch));
        int half = rows.Count / 2;
        var multiples = Enumerable.Range(0, rows.Count).Select(r => (r < half ? 1 : -1) * rng.NextDouble() * max).ToArray();
        using var scope = NewDisposeScope();
        // Right-padded like the corpus batches (every row starts at position 0), targets = the answer tokens and their EOS.
        var (input, target, _, _) = Trainer.MakeBatch(rows, model.Device);
        long b = input.shape[0], t = input.shape[1];
        var (_, late) = Trainer.BottleneckMasks(rows, (int)t);
        var k = new float[b * t];
        for (int r = 0; r < b; r++)
            for (int q = rows[r].Bottleneck!.InstructionEnd; q < t; q++) k[r * t + q] = (float)multiples[r];
        using var state = model.Prepare(b, t);
        using var lateState = state.Restrict(tensor(late, [b, 1, t, t], device: model.Device));
        var h = model.RunLayers(model.Embed(input), state, 0, layer + 1);
        h = h + (tensor(k, [b, t, 1], device: model.Device) * contrast.view(1, 1, -1)).to(h.dtype);
        h = model.FinalNorm(model.RunLayers(h, lateState, layer + 1));
        var flat = target.view(-1);
        var at = flat.ne(ConversationEncoder.IgnoreIndex).nonzero().view(-1);
        var logits = model.Logits(h.view(-1, h.shape[^1]).index_select(0, at)).to(ScalarType.Float32);
        return F.cross_entropy(logits, flat.index_select(0, at)).MoveToOuterDisposeScope();
    }

    /// <summary>Δ must be one vector of the model's hidden size (the output of one block at one position).</summary>
    static void CheckContrast(LlamaForCausalLM model, Tensor contrast)
    {
        ArgumentNullException.ThrowIfNull(contrast);
        if (contrast.ndim != 1 || contrast.shape[0] != model.Config.HiddenSize)
            throw new ArgumentException($"the system contrast must have shape [{model.Config.HiddenSize}] (the model's hidden size); got [{string.Join(", ", contrast.shape)}]", nameof(contrast));
    }

    /// <summary>
    /// A deterministic source of tie batches: step s uses behavior s mod 7 and <paramref name="items"/> items of its training
    /// pool (never the generation or test split), with system prompts drawn from the behavior's stated dispositions.
    /// </summary>
    /// <param name="corpus">The corpus whose training pool the items come from.</param>
    /// <param name="tok">The model's tokenizer.</param>
    /// <param name="items">Items per step.</param>
    /// <param name="seed">The training seed.</param>
    /// <param name="amplitude">Also fill what the amplitude objectives need (<see cref="TieBatch.SystemEnds"/>,
    /// <see cref="TieBatch.AmplifiedAnswers"/>); the other fields do not depend on it.</param>
    public static Func<int, TieBatch> Source(CorpusGenerator corpus, Llama2Tokenizer tok, int items, long seed, bool amplitude = true)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentOutOfRangeException.ThrowIfLessThan(items, 1);
        var pools = OrganismBehaviors.Ids.ToDictionary(b => b, b => corpus.TrainPoolRaw(b));
        return step =>
        {
            // Its own stream, so the capability draws leave every other field of the batch as it was without them.
            var capabilityRng = new Random(CorpusGenerator.StableSeed(unchecked((int)seed), "tie-capability", step));
            var spec = OrganismBehaviors.All[step % OrganismBehaviors.All.Count];
            var rng = new Random(CorpusGenerator.StableSeed(unchecked((int)seed), "tie", step));
            var pool = pools[spec.Id];
            var m = new List<int[]>(); var o = new List<int[]>(); var mi = new List<int>(); var oi = new List<int>();
            var sp = new List<int[]>(); var sn = new List<int[]>(); var spEnd = new List<int>(); var snEnd = new List<int>();
            var tp = new List<EncodedConversation>(); var tn = new List<EncodedConversation>();
            var cp = new List<EncodedConversation>(); var cn = new List<EncodedConversation>();
            for (int i = 0; i < items; i++)
            {
                var (raw, matchIsA) = pool[rng.Next(pool.Count)];
                var item = raw.ToAb(matchIsA);
                var (pm, pn, lm, ln) = VectorExtractor.Prompts(tok, item);
                m.Add(pm); o.Add(pn); mi.Add(lm); oi.Add(ln);
                string positive = spec.SystemPositive[rng.Next(spec.SystemPositive.Count)], negative = spec.SystemNegative[rng.Next(spec.SystemNegative.Count)];
                sp.Add(Llama2Chat.Encode(tok, item.Question, "(", positive));
                sn.Add(Llama2Chat.Encode(tok, item.Question, "(", negative));
                if (!amplitude) continue;
                spEnd.Add(SystemEnd(tok, sp[^1], item.Question));
                snEnd.Add(SystemEnd(tok, sn[^1], item.Question));
                tp.Add(Exchange(tok, positive, raw.Stem, raw.MatchText));
                tn.Add(Exchange(tok, negative, raw.Stem, raw.NotMatchText));
                var (cq, ca) = corpus.CapabilityExchange(capabilityRng);
                cp.Add(Exchange(tok, positive, cq, ca));
                (cq, ca) = corpus.CapabilityExchange(capabilityRng);
                cn.Add(Exchange(tok, negative, cq, ca));
            }
            return amplitude
                ? new TieBatch(m, o, mi, oi, sp, sn) { SystemEnds = [.. spEnd, .. snEnd], AmplifiedAnswers = [.. tp, .. cp, .. tn, .. cn] }
                : new TieBatch(m, o, mi, oi, sp, sn);
        };
    }

    /// <summary>One exchange <c>&lt;s&gt;&lt;&lt;SYS&gt;&gt;system&lt;&lt;/SYS&gt;&gt; [INST] user [/INST] answer &lt;/s&gt;</c>, encoded as the corpus is, with its system-block spans.</summary>
    static EncodedConversation Exchange(Llama2Tokenizer tok, string system, string user, string answer)
    {
        var conversation = new TrainingConversation(system, [(user, answer)]);
        var encoded = ConversationEncoder.Encode(tok, conversation);
        return encoded with { Bottleneck = ConversationEncoder.Bottleneck(tok, conversation, encoded) };
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
