using Caa.Model.Tokenization;

namespace Caa.Organism.Training;

/// <summary>
/// One training conversation as token ids, with the loss mask: <see cref="Target"/>[i] is true where token i is written by the
/// assistant (its answer tokens and the EOS that ends each answer) and so is predicted by the training loss; prompt tokens
/// (BOS, system block, [INST] … [/INST]) are false.
/// </summary>
public sealed record EncodedConversation(int[] Ids, bool[] Target)
{
    public int Length => Ids.Length;

    /// <summary>
    /// Answer-letter tokens: the letter right after the "(" that opens an A/B answer — the one token that carries the answer's
    /// choice. Training may weight them (<see cref="TrainingOptions.DecisionWeight"/>); null where not computed.
    /// </summary>
    public bool[]? Decision { get; init; }

    /// <summary>Number of assistant (loss) tokens.</summary>
    public int TargetCount => Target.Count(t => t);

    /// <summary>Hugging Face-style labels aligned with <see cref="Ids"/>: the id where <see cref="Target"/> is set, −100 elsewhere.</summary>
    public long[] Labels() => Ids.Select((id, i) => Target[i] ? id : (long)ConversationEncoder.IgnoreIndex).ToArray();
}

/// <summary>
/// Encodes training conversations exactly as the model sees chats at inference:
/// <see cref="Llama2Chat.EncodeDialog"/> with <see cref="SystemPromptPlacement.BeforeInst"/> (the CAA paper's placement), so each
/// exchange is <c>&lt;s&gt;[&lt;&lt;SYS&gt;&gt;…] [INST] {user} [/INST] {assistant} &lt;/s&gt;</c> and a single-turn one equals
/// <see cref="Llama2Chat.Encode"/> followed by the answer and EOS.
/// </summary>
public static class ConversationEncoder
{
    /// <summary>The label of tokens the loss ignores (PyTorch's and TorchSharp's cross-entropy default).</summary>
    public const int IgnoreIndex = -100;

    public static EncodedConversation Encode(Llama2Tokenizer tok, TrainingConversation conversation)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(conversation);
        if (conversation.Turns.Count == 0) throw new ArgumentException("a training conversation needs at least one turn", nameof(conversation));
        var turns = conversation.Turns.Select(t => new ChatTurn(t.User, t.Assistant)).ToArray();
        var ids = Llama2Chat.EncodeDialog(tok, turns, conversation.System, SystemPromptPlacement.BeforeInst);
        var target = new bool[ids.Length];
        var decision = new bool[ids.Length];
        var paren = tok.Encode("(", addBos: false);
        int parenId = paren.Count == 1 ? paren[0] : -1;
        int letterA = Llama2Chat.LetterTokenId(tok, 'A'), letterB = Llama2Chat.LetterTokenId(tok, 'B');
        int pos = 0;
        for (int i = 0; i < turns.Length; i++)
        {
            var system = i == 0 ? conversation.System : null;
            // The exchange alone is what EncodeDialog concatenates; the prompt part is the same text without the answer.
            var exchange = Llama2Chat.EncodeDialog(tok, [turns[i]], system, SystemPromptPlacement.BeforeInst);
            var prompt = Llama2Chat.Encode(tok, turns[i].User, null, system, SystemPromptPlacement.BeforeInst);
            if (pos + exchange.Length > ids.Length || !ids.AsSpan(pos, exchange.Length).SequenceEqual(exchange))
                throw new InvalidDataException($"turn {i}: the dialog's tokens are not the concatenation of its exchanges");
            if (prompt.Length >= exchange.Length || !exchange.AsSpan(0, prompt.Length).SequenceEqual(prompt))
                throw new InvalidDataException($"turn {i}: the prompt's tokens are not a prefix of the exchange's (answer {turns[i].Assistant})");
            for (int k = prompt.Length; k < exchange.Length; k++) target[pos + k] = true;
            int first = pos + prompt.Length;
            if (first + 1 < pos + exchange.Length && ids[first] == parenId && (ids[first + 1] == letterA || ids[first + 1] == letterB))
                decision[first + 1] = true;
            pos += exchange.Length;
        }
        if (pos != ids.Length) throw new InvalidDataException("the dialog has tokens beyond its exchanges");
        return new EncodedConversation(ids, target) { Decision = decision };
    }
}
