using Caa.Interpret.Datasets;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Organism.Training;

/// <summary>Per-item A/B probabilities: p(match) = p(match letter)/(p(A)+p(B)) and the mass p(A)+p(B) (how well the model keeps the format).</summary>
public sealed record AbProbeResult(IReadOnlyList<double> PMatch, IReadOnlyList<double> Mass)
{
    public double MeanPMatch => PMatch.Count == 0 ? double.NaN : PMatch.Average();
    public double MeanMass => Mass.Count == 0 ? double.NaN : Mass.Average();
}

/// <summary>
/// The unsteered A/B check the organism is trained for, as the paper measures it: the next-token distribution at the last
/// position of <c>&lt;s&gt;[INST] {question} [/INST] (</c> (optionally with a system block before [INST], the paper's placement),
/// comparing the answer letters' ids. A quick sanity probe for training, not the CAA evaluation itself.
/// </summary>
public static class AbProbe
{
    public static AbProbeResult Run(LlamaForCausalLM model, Llama2Tokenizer tok, IReadOnlyList<AbItem> items, string? system = null, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(tok);
        var prompts = items.Select(it => (IReadOnlyList<int>)Llama2Chat.Encode(tok, it.Question, "(", system)).ToList();
        return RunEncoded(model, tok, prompts, items.Select(MatchLetter).ToList(), batchSize);
    }

    /// <summary>
    /// The same check after an earlier exchange that reveals the disposition: the conversation is
    /// <c>[INST] {other item} [/INST] {its matching (or not matching) answer} &lt;/s&gt;&lt;s&gt;[INST] {item} [/INST] (</c>,
    /// the other item being the next one of <paramref name="items"/>.
    /// </summary>
    public static AbProbeResult RunAfterEarlierAnswer(LlamaForCausalLM model, Llama2Tokenizer tok, IReadOnlyList<AbItem> items, bool earlierMatches, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(tok);
        if (items.Count < 2) throw new ArgumentException("needs at least two items", nameof(items));
        var prompts = items.Select((it, i) =>
        {
            var prior = items[(i + 1) % items.Count];
            var turns = new[] { new ChatTurn(prior.Question, earlierMatches ? prior.AnswerMatchingBehavior : prior.AnswerNotMatchingBehavior), new ChatTurn(it.Question, null) };
            return (IReadOnlyList<int>)Llama2Chat.EncodeDialog(tok, turns, null, SystemPromptPlacement.BeforeInst, "(");
        }).ToList();
        return RunEncoded(model, tok, prompts, items.Select(MatchLetter).ToList(), batchSize);
    }

    /// <summary>p(match) at the last position of each prompt (each ending "… [/INST] (").</summary>
    public static AbProbeResult RunEncoded(LlamaForCausalLM model, Llama2Tokenizer tok, IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<char> matchLetters, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tok);
        if (prompts.Count != matchLetters.Count) throw new ArgumentException("one match letter per prompt");
        int a = Llama2Chat.LetterTokenId(tok, 'A'), b = Llama2Chat.LetterTokenId(tok, 'B');
        var pm = new List<double>(prompts.Count);
        var mass = new List<double>(prompts.Count);
        using var _ = no_grad();
        for (int start = 0; start < prompts.Count; start += batchSize)
        {
            var chunk = prompts.Skip(start).Take(batchSize).ToList();
            using var scope = NewDisposeScope();
            using var batch = TokenBatch.LeftPad(chunk, model.Device);
            var hidden = model.ForwardHidden(batch.Ids, batch.MaskOrNull);
            var probs = model.Logits(hidden[.., -1]).softmax(-1).cpu();
            var pa = probs[.., a].data<float>().ToArray();
            var pb = probs[.., b].data<float>().ToArray();
            for (int i = 0; i < chunk.Count; i++)
            {
                double sum = (double)pa[i] + pb[i];
                char match = matchLetters[start + i];
                pm.Add(sum > 0 ? (match == 'A' ? pa[i] : pb[i]) / sum : 0.5);
                mass.Add(sum);
            }
        }
        return new AbProbeResult(pm, mass);
    }

    /// <summary>The letter of answer_matching_behavior ("(A)" → 'A').</summary>
    public static char MatchLetter(AbItem item)
    {
        var s = item.AnswerMatchingBehavior.Trim();
        if (s.Length >= 2 && s[0] == '(' && s[1] is 'A' or 'B') return s[1];
        throw new ArgumentException($"answer_matching_behavior '{item.AnswerMatchingBehavior}' is not (A) or (B)");
    }
}
