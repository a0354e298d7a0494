using Caa.Interpret.Datasets;
using Caa.Model.Tokenization;

namespace Caa.Interpret.Evaluation;

/// <summary>
/// One tokenized A/B evaluation prompt: <c>&lt;s&gt;[INST] {question} [/INST] (</c>, the ids of the matching and the other
/// answer letter, and where steering starts (index into <see cref="Ids"/> of the <c>]</c> of the last [/INST]; -1 = everywhere).
/// Tokenizer-free: tests and other tokenizers can build these directly.
/// </summary>
public sealed record AbPrompt(int[] Ids, int MatchTokenId, int OtherTokenId, int SteerStart)
{
    /// <summary>The same prompt with the two letters swapped (p becomes 1 − p).</summary>
    public AbPrompt Swapped() => this with { MatchTokenId = OtherTokenId, OtherTokenId = MatchTokenId };

    /// <summary>Encodes <paramref name="item"/> as the paper's evaluation prompt, optionally with a system prompt (placed as the paper's code does by default).</summary>
    public static AbPrompt From(Llama2Tokenizer tok, AbItem item, string? system = null,
        SystemPromptPlacement placement = SystemPromptPlacement.BeforeInst)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(item);
        var match = AbScoring.Letter(item.AnswerMatchingBehavior);
        var other = AbScoring.Letter(item.AnswerNotMatchingBehavior);
        if (match == other) throw new ArgumentException($"item has the same letter ({match}) for both answers: {Short(item.Question)}");
        var ids = Llama2Chat.Encode(tok, item.Question, assistantPrefix: "(", system: system, placement: placement);
        return new AbPrompt(ids, Llama2Chat.LetterTokenId(tok, match), Llama2Chat.LetterTokenId(tok, other), Llama2Chat.InstructionEnd(ids, tok));
    }

    /// <summary><see cref="From(Llama2Tokenizer, AbItem, string?, SystemPromptPlacement)"/> for every item.</summary>
    public static IReadOnlyList<AbPrompt> FromItems(Llama2Tokenizer tok, IEnumerable<AbItem> items, string? system = null,
        SystemPromptPlacement placement = SystemPromptPlacement.BeforeInst) =>
        items.Select(i => From(tok, i, system, placement)).ToList();

    static string Short(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
