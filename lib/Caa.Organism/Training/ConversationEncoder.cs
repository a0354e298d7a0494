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

    /// <summary>
    /// Where training routes this conversation's system prompt through the decision positions only
    /// (<see cref="TrainingOptions.SystemBottleneck"/>); null for ordinary attention.
    /// </summary>
    public SystemBottleneck? Bottleneck { get; init; }

    /// <summary>Number of assistant (loss) tokens.</summary>
    public int TargetCount => Target.Count(t => t);

    /// <summary>Hugging Face-style labels aligned with <see cref="Ids"/>: the id where <see cref="Target"/> is set, −100 elsewhere.</summary>
    public long[] Labels() => Ids.Select((id, i) => Target[i] ? id : (long)ConversationEncoder.IgnoreIndex).ToArray();
}

/// <summary>
/// Token spans of a conversation whose system prompt reaches the answers only through the residual stream of the positions
/// from the first <c>[/INST]</c>'s closing <c>]</c> on (the positions CAA steers): in the blocks before
/// <see cref="TrainingOptions.SystemBottleneckLayer"/> the first instruction's tokens [<paramref name="SystemEnd"/>,
/// <paramref name="InstructionEnd"/>) may not attend to the system block [1, <paramref name="SystemEnd"/>), and from that block
/// on no later token may. (BOS, position 0, stays visible to all.)
/// </summary>
/// <param name="SystemEnd">First token after the system block (the <c>[INST]</c> that opens the first instruction).</param>
/// <param name="InstructionEnd">Position of the first instruction's closing <c>]</c> (<see cref="Llama2Chat.InstructionEnd"/>).</param>
public sealed record SystemBottleneck(int SystemEnd, int InstructionEnd);

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

    /// <summary>The <see cref="SystemBottleneck"/> spans of a conversation with a system prompt, located in its encoded ids.</summary>
    /// <exception cref="ArgumentException">The conversation has no system prompt.</exception>
    /// <exception cref="InvalidDataException">The ids do not start with the system block and the first instruction.</exception>
    public static SystemBottleneck Bottleneck(Llama2Tokenizer tok, TrainingConversation conversation, EncodedConversation encoded)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(conversation);
        ArgumentNullException.ThrowIfNull(encoded);
        if (conversation.System is null) throw new ArgumentException("a system bottleneck needs a conversation with a system prompt", nameof(conversation));
        var user = conversation.Turns[0].User;
        var withSystem = Llama2Chat.Encode(tok, user, null, conversation.System, SystemPromptPlacement.BeforeInst);
        int systemEnd = SystemBlockEnd(withSystem, Llama2Chat.Encode(tok, user));
        if (systemEnd < 0 || !encoded.Ids.AsSpan(0, withSystem.Length).SequenceEqual(withSystem))
            throw new InvalidDataException($"the encoded conversation does not start with its system block and first instruction (system \"{conversation.System}\")");
        return new SystemBottleneck(systemEnd, Llama2Chat.InstructionEnd(withSystem, tok));
    }

    /// <summary>
    /// Where the system block of <paramref name="withSystem"/> (<c>&lt;s&gt;&lt;&lt;SYS&gt;&gt;…[INST] …</c>) ends (exclusive), given
    /// the same prompt <paramref name="without"/> it; −1 when the two do not have that form.
    /// </summary>
    internal static int SystemBlockEnd(int[] withSystem, int[] without)
    {
        // After "<</SYS>>\n\n" the "[" of "[INST]" has no word-boundary piece, so the two prompts agree from the token after it:
        // the system block ends one token before that common tail.
        if (without.Length < 2) return -1;
        var tail = without.AsSpan(2);
        int end = withSystem.Length - tail.Length - 1;
        return end >= 2 && withSystem.AsSpan(end + 1).SequenceEqual(tail) ? end : -1;
    }
}
