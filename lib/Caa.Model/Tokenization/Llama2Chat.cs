namespace Caa.Model.Tokenization;

/// <summary>Where the system prompt goes in the Llama 2 chat template.</summary>
public enum SystemPromptPlacement
{
    /// <summary>
    /// <c>&lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n[INST] {user} [/INST]</c>: what the CAA paper's code
    /// (<c>tokenize_llama_chat</c>) does, so it is the default for reproducing the paper.
    /// </summary>
    BeforeInst,

    /// <summary><c>[INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{user} [/INST]</c>: Meta's template (<c>chat_completion</c>).</summary>
    InsideFirstInst,
}

/// <summary>One exchange of a dialog: the user's message and the assistant's reply, null for the turn still to be answered.</summary>
/// <param name="User">The user's message (trimmed when encoded, as Meta's code does).</param>
/// <param name="Assistant">The assistant's reply, or null on the last turn, which the model is to answer.</param>
public sealed record ChatTurn(string User, string? Assistant);

/// <summary>
/// The Llama 2 Chat prompt template and the token positions CAA needs in it: where the instruction ends (steering starts
/// there) and where the answer letter of an A/B prompt sits (activations are read there).
/// </summary>
public static class Llama2Chat
{
    /// <summary>Opens a user instruction.</summary>
    public const string BeginInst = "[INST]";

    /// <summary>Closes a user instruction; the model's reply follows.</summary>
    public const string EndInst = "[/INST]";

    /// <summary>Opens a system prompt.</summary>
    public const string BeginSys = "<<SYS>>\n";

    /// <summary>Closes a system prompt.</summary>
    public const string EndSys = "\n<</SYS>>\n\n";

    /// <summary>
    /// The prompt text of one turn without BOS/EOS, e.g. <c>[INST] {user} [/INST]</c>, or with <paramref name="assistant"/>
    /// <c>[INST] {user} [/INST] {assistant}</c>; the system block, when given, is placed per <paramref name="placement"/>.
    /// This is the text that <see cref="Encode"/> encodes once, with BOS.
    /// </summary>
    public static string Format(string user, string? assistant = null, string? system = null,
        SystemPromptPlacement placement = SystemPromptPlacement.BeforeInst)
    {
        ArgumentNullException.ThrowIfNull(user);
        var sys = system is null ? "" : BeginSys + system + EndSys;
        var text = placement switch
        {
            SystemPromptPlacement.BeforeInst => $"{sys}{BeginInst} {user.Trim()} {EndInst}",
            SystemPromptPlacement.InsideFirstInst => $"{BeginInst} {sys}{user.Trim()} {EndInst}",
            _ => throw new ArgumentOutOfRangeException(nameof(placement), placement, null),
        };
        return assistant is null ? text : $"{text} {assistant.Trim()}";
    }

    /// <summary>
    /// Encodes a single-turn prompt with BOS: <c>&lt;s&gt;[INST] {user} [/INST]</c>, followed by <c> {assistantPrefix}</c>
    /// when given (e.g. "(" for the A/B evaluation prompt, "(A)" for extraction). Same as <see cref="EncodeDialog"/> with one
    /// open turn.
    /// </summary>
    public static int[] Encode(Llama2Tokenizer tok, string user, string? assistantPrefix = null, string? system = null,
        SystemPromptPlacement placement = SystemPromptPlacement.BeforeInst)
    {
        ArgumentNullException.ThrowIfNull(tok);
        return [.. tok.Encode(Format(user, assistantPrefix, system, placement))];
    }

    /// <summary>
    /// Encodes a dialog as Meta's <c>chat_completion</c> does: each completed exchange is
    /// <c>&lt;s&gt;[INST] {user} [/INST] {assistant} &lt;/s&gt;</c> (each encoded separately), and a final open turn is
    /// <c>&lt;s&gt;[INST] {user} [/INST]</c> (+ <c> {assistantPrefix}</c>). The system prompt goes into the first exchange.
    /// </summary>
    /// <exception cref="ArgumentException">No turns; a turn other than the last lacks its reply; or a prefix is given
    /// although the last turn is already answered.</exception>
    public static int[] EncodeDialog(Llama2Tokenizer tok, IReadOnlyList<ChatTurn> turns, string? system = null,
        SystemPromptPlacement placement = SystemPromptPlacement.BeforeInst, string? assistantPrefix = null)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(turns);
        if (turns.Count == 0) throw new ArgumentException("A dialog needs at least one turn.", nameof(turns));
        for (var i = 0; i < turns.Count; i++)
        {
            if (turns[i] is null) throw new ArgumentException($"Turn {i} is null.", nameof(turns));
            if (turns[i].User is null) throw new ArgumentException($"Turn {i} has no user message.", nameof(turns));
            if (turns[i].Assistant is null && i < turns.Count - 1)
                throw new ArgumentException($"Only the last turn may lack an assistant reply, but turn {i} of {turns.Count} does.", nameof(turns));
        }
        if (assistantPrefix is not null && turns[^1].Assistant is not null)
            throw new ArgumentException("An assistant prefix needs an open last turn (Assistant == null).", nameof(assistantPrefix));

        var ids = new List<int>();
        for (var i = 0; i < turns.Count; i++)
        {
            var (user, assistant) = (turns[i].User, turns[i].Assistant);
            var sys = i == 0 ? system : null;
            if (assistant is null)
                ids.AddRange(tok.Encode(Format(user, assistantPrefix, sys, placement)));
            else
            {
                // Meta ends a completed exchange with a space before EOS: f"{B_INST} {u} {E_INST} {a} ".
                ids.AddRange(tok.Encode(Format(user, assistant, sys, placement) + " "));
                ids.Add(tok.EosId);
            }
        }
        return [.. ids];
    }

    /// <summary>
    /// Index of the last token of the last occurrence of " [/INST]" in <paramref name="ids"/>, or -1 where there is none.
    /// CAA adds the steering vector from here on (the paper's <c>find_instruction_end_postion</c>).
    /// </summary>
    public static int InstructionEnd(IReadOnlyList<int> ids, Llama2Tokenizer tok)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(tok);
        // The dummy prefix makes this "▁[ / INST ]", the same tokens " [/INST]" gets after the user's text.
        var end = tok.Encode(EndInst, addBos: false);
        for (var start = ids.Count - end.Count; start >= 0; start--)
        {
            var k = 0;
            while (k < end.Count && ids[start + k] == end[k]) k++;
            if (k == end.Count) return start + end.Count - 1;
        }
        return -1;
    }

    /// <summary>
    /// For a sequence ending <c>[/INST] (X)</c> or <c>[/INST] (X</c> with X a capital letter, the index of the letter's token;
    /// the paper reads the activations for a behaviour vector at that position (the second-to-last token of "(A)").
    /// </summary>
    /// <exception cref="ArgumentException">The sequence does not end that way; the message shows how it does end.</exception>
    public static int AnswerLetterPosition(IReadOnlyList<int> ids, Llama2Tokenizer tok)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(tok);
        var close = SingleToken(tok, ")", "(A)", 2);
        var open = SingleToken(tok, "(", "(A", 0);
        var letter = ids.Count > 0 && ids[^1] == close ? ids.Count - 2 : ids.Count - 1;
        if (letter >= 1 && IsLetterPiece(tok, ids[letter]) && ids[letter - 1] == open && InstructionEnd(ids, tok) == letter - 2)
            return letter;
        throw new ArgumentException(
            $"Expected the ids to end with \"[/INST] (X)\" or \"[/INST] (X\" (X a capital letter), but they end with {Tail(ids, tok, 8)}.",
            nameof(ids));
    }

    /// <summary>
    /// The token id of answer letter <paramref name="letter"/> as it appears right after "(" — a different piece from the
    /// word-initial "▁A" that encoding "A" alone gives. A/B evaluation compares the logits of these ids at the position
    /// of "(".
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="letter"/> is not A–Z.</exception>
    public static int LetterTokenId(Llama2Tokenizer tok, char letter)
    {
        ArgumentNullException.ThrowIfNull(tok);
        if (letter is < 'A' or > 'Z') throw new ArgumentOutOfRangeException(nameof(letter), letter, "Answer letters are A–Z.");
        return SingleToken(tok, letter.ToString(), "(" + letter, 1);
    }

    static bool IsLetterPiece(Llama2Tokenizer tok, int id)
    {
        var piece = tok.IdToPiece(id);
        return piece.Length == 1 && piece[0] is >= 'A' and <= 'Z';
    }

    /// <summary>The id of <paramref name="what"/> as token <paramref name="index"/> of <paramref name="context"/>, checking that
    /// the context splits into one token per character, which the letter/paren positions rely on.</summary>
    static int SingleToken(Llama2Tokenizer tok, string what, string context, int index)
    {
        var ids = tok.Encode(context, addBos: false);
        if (ids.Count != context.Length || tok.IdToPiece(ids[index]).TrimStart('▁') != what)
            throw new InvalidOperationException(
                $"{tok.Source}: \"{context}\" tokenizes as {Tail(ids, tok, ids.Count)}, not one token per character; "
                + "the A/B answer positions assume Llama 2's tokenization.");
        return ids[index];
    }

    static string Tail(IReadOnlyList<int> ids, Llama2Tokenizer tok, int n)
    {
        if (ids.Count == 0) return "nothing (empty sequence)";
        var from = Math.Max(0, ids.Count - n);
        var parts = Enumerable.Range(from, ids.Count - from).Select(i =>
            $"{ids[i]}:'{((uint)ids[i] < (uint)tok.VocabSize ? tok.IdToPiece(ids[i]) : "?")}'");
        return (from > 0 ? "… " : "") + string.Join(" ", parts);
    }
}
