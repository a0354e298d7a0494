using Caa.Model.Tokenization;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Tokenization;

public class Llama2ChatTests
{
    static Llama2Tokenizer Tok => Llama2.Tok;

    const string Question = "Is the sky blue?\n\nChoices:\n (A) Yes\n (B) No";
    static readonly int[] EndInstIds = [518, 29914, 25580, 29962]; // ▁[ / INST ]

    [SharedFact(Llama2.ModelPath)]
    public void SingleTurnWithoutSystemIsBosInstUserEndInst()
    {
        var ids = Llama2Chat.Encode(Tok, "  Hello there \n");
        Assert.Equal(Tok.Encode("[INST] Hello there [/INST]"), ids);
        Assert.Equal(1, ids[0]);
        Assert.Equal(ids, Llama2Chat.Encode(Tok, "Hello there", placement: SystemPromptPlacement.InsideFirstInst));
        Assert.Equal("[INST] Hello there [/INST]", Tok.Decode(ids));
    }

    [SharedFact(Llama2.ReferencePath)]
    public void EvalPromptMatchesReferenceEncoding()
    {
        var (text, expected) = Llama2.References().First(r => r.Text == "[INST] Hello there [/INST] (A");
        Assert.Equal(expected, Llama2Chat.Encode(Tok, "Hello there", "(A"));
        Assert.Equal(text, Llama2Chat.Format("Hello there", "(A"));
    }

    [SharedFact(Llama2.ModelPath)]
    public void AbPromptTokenizesParenLetterParen()
    {
        var withAnswer = Llama2Chat.Encode(Tok, Question, "(A)");
        Assert.Equal(["▁(", "A", ")"], withAnswer[^3..].Select(Tok.IdToPiece));
        Assert.Equal(withAnswer.Length - 2, Llama2Chat.AnswerLetterPosition(withAnswer, Tok));
        Assert.Equal(withAnswer.Length - 4, Llama2Chat.InstructionEnd(withAnswer, Tok));

        var open = Llama2Chat.Encode(Tok, Question, "(B");
        Assert.Equal(open.Length - 1, Llama2Chat.AnswerLetterPosition(open, Tok));
        Assert.Equal("B", Tok.IdToPiece(open[^1]));

        // The eval prompt ends at "(": the next-token logits there are p(A), p(B).
        var eval = Llama2Chat.Encode(Tok, Question, "(");
        Assert.Equal("▁(", Tok.IdToPiece(eval[^1]));
        Assert.Equal(withAnswer[..^2], eval);
        Assert.Equal(withAnswer[^2], Llama2Chat.LetterTokenId(Tok, 'A'));
        Assert.Equal(open[^1], Llama2Chat.LetterTokenId(Tok, 'B'));
    }

    [SharedFact(Llama2.ModelPath)]
    public void LetterTokensAreNotTheWordInitialPieces()
    {
        Assert.Equal(29909, Llama2Chat.LetterTokenId(Tok, 'A'));
        Assert.Equal(29933, Llama2Chat.LetterTokenId(Tok, 'B'));
        Assert.NotEqual(Tok.Encode("A", addBos: false).Single(), Llama2Chat.LetterTokenId(Tok, 'A')); // "▁A" = 319
        for (var c = 'A'; c <= 'Z'; c++) Assert.Equal(c.ToString(), Tok.IdToPiece(Llama2Chat.LetterTokenId(Tok, c)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Llama2Chat.LetterTokenId(Tok, 'a'));
    }

    [SharedFact(Llama2.ReferencePath)]
    public void PositionsOnThePaperStyleReferenceItem()
    {
        var (_, ids) = Llama2.References().Single(r => r.Text.Contains("core goal"));
        Assert.Equal(ids.Length - 1, Llama2Chat.AnswerLetterPosition(ids, Tok));
        Assert.Equal(ids.Length - 3, Llama2Chat.InstructionEnd(ids, Tok));
    }

    [SharedFact(Llama2.ModelPath)]
    public void EndInstSubsequenceEqualsInContextTokens()
    {
        // The dummy prefix makes "[/INST]" alone encode as " [/INST]" does after the user's text.
        Assert.Equal(EndInstIds, Tok.Encode(Llama2Chat.EndInst, addBos: false));
        var ids = Llama2Chat.Encode(Tok, Question);
        Assert.Equal(EndInstIds, ids[^4..]);
        Assert.Equal(ids.Length - 1, Llama2Chat.InstructionEnd(ids, Tok));
        Assert.Equal("]", Tok.IdToPiece(ids[Llama2Chat.InstructionEnd(ids, Tok)]));
    }

    [SharedFact(Llama2.ModelPath)]
    public void InstructionEndFindsTheLastOccurrenceOrNone()
    {
        Assert.Equal(-1, Llama2Chat.InstructionEnd(Tok.Encode("no instruction here"), Tok));
        Assert.Equal(-1, Llama2Chat.InstructionEnd([], Tok));
        Assert.Equal(-1, Llama2Chat.InstructionEnd(EndInstIds[..3], Tok));
        Assert.Equal(3, Llama2Chat.InstructionEnd(EndInstIds, Tok));
        var twice = Tok.Encode("[INST] a [/INST] b [/INST] c");
        Assert.Equal(twice.Count - 2, Llama2Chat.InstructionEnd(twice, Tok)); // "▁c" follows the second one
    }

    [SharedFact(Llama2.ModelPath)]
    public void TwoTurnDialogFollowsMetasChatCompletion()
    {
        ChatTurn[] turns = [new("Hi!", " Hello, how can I help? "), new("Pick one.\n (A) x\n (B) y", null)];
        var ids = Llama2Chat.EncodeDialog(Tok, turns, assistantPrefix: "(");

        int[] first = [1, .. Tok.Encode("[INST] Hi! [/INST] Hello, how can I help? ", addBos: false), 2];
        int[] second = [.. Tok.Encode("[INST] Pick one.\n (A) x\n (B) y [/INST] (")];
        Assert.Equal([.. first, .. second], ids);

        Assert.Equal([0, first.Length], Enumerable.Range(0, ids.Length).Where(i => ids[i] == 1));
        Assert.Equal([first.Length - 1], Enumerable.Range(0, ids.Length).Where(i => ids[i] == 2));
        Assert.Equal("▁", Tok.IdToPiece(ids[first.Length - 2])); // Meta's trailing space before EOS

        var end = Llama2Chat.InstructionEnd(ids, Tok);
        Assert.Equal(ids.Length - 2, end);
        Assert.True(end > first.Length);
        Assert.Equal("]", Tok.IdToPiece(ids[end]));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DialogWithOneOpenTurnEqualsEncode()
    {
        foreach (var placement in Enum.GetValues<SystemPromptPlacement>())
            Assert.Equal(
                Llama2Chat.Encode(Tok, Question, "(A)", "You are helpful.", placement),
                Llama2Chat.EncodeDialog(Tok, [new ChatTurn(Question, null)], "You are helpful.", placement, "(A)"));
    }

    [SharedFact(Llama2.ModelPath)]
    public void CompletedDialogEndsWithEos()
    {
        var ids = Llama2Chat.EncodeDialog(Tok, [new ChatTurn("a", "b"), new ChatTurn("c", "d")]);
        Assert.Equal(2, ids[^1]);
        Assert.Equal(["]", "▁d", "▁", "</s>"], ids[^4..].Select(Tok.IdToPiece));
        Assert.Equal(ids.Length - 4, Llama2Chat.InstructionEnd(ids, Tok)); // the [/INST] of the second exchange
    }

    [SharedFact(Llama2.ModelPath)]
    public void SystemPromptBeforeInstAsInThePaperCode()
    {
        var ids = Llama2Chat.Encode(Tok, "Q?", "(A)", "Be nice.");
        const string text = "<<SYS>>\nBe nice.\n<</SYS>>\n\n[INST] Q? [/INST] (A)";
        Assert.Equal(text, Llama2Chat.Format("Q?", "(A)", "Be nice."));
        Assert.Equal(Tok.Encode(text), ids);
        Assert.Equal(text, Tok.Decode(ids));
        Assert.Equal(ids.Length - 2, Llama2Chat.AnswerLetterPosition(ids, Tok));
    }

    [SharedFact(Llama2.ModelPath)]
    public void SystemPromptInsideFirstInstAsInMetasTemplate()
    {
        var ids = Llama2Chat.Encode(Tok, "Q?", system: "Be nice.", placement: SystemPromptPlacement.InsideFirstInst);
        const string text = "[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nQ? [/INST]";
        Assert.Equal(Tok.Encode(text), ids);
        Assert.Equal(text, Tok.Decode(ids));
        Assert.NotEqual(ids, Llama2Chat.Encode(Tok, "Q?", system: "Be nice."));
        Assert.Equal(ids.Length - 1, Llama2Chat.InstructionEnd(ids, Tok));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DialogSystemPromptGoesIntoTheFirstExchangeOnly()
    {
        ChatTurn[] turns = [new("a", "b"), new("c", null)];
        int[] tail = [.. Tok.Encode("[INST] c [/INST]")];
        foreach (var (placement, firstText) in new[]
                 {
                     (SystemPromptPlacement.BeforeInst, "<<SYS>>\nS\n<</SYS>>\n\n[INST] a [/INST] b "),
                     (SystemPromptPlacement.InsideFirstInst, "[INST] <<SYS>>\nS\n<</SYS>>\n\na [/INST] b "),
                 })
            Assert.Equal([.. Tok.Encode(firstText), 2, .. tail], Llama2Chat.EncodeDialog(Tok, turns, "S", placement));
    }

    [SharedFact(Llama2.ModelPath)]
    public void AnswerLetterPositionRejectsOtherEndings()
    {
        foreach (var bad in new[] { "Yes", "(a)", "(AB)", "(1)", "A)", "(A) because", "" })
        {
            var ids = Llama2Chat.Encode(Tok, Question, bad);
            var e = Assert.Throws<ArgumentException>(() => Llama2Chat.AnswerLetterPosition(ids, Tok));
            Assert.Contains("end with", e.Message);
            Assert.Contains(Tok.IdToPiece(ids[^1]), e.Message); // says what was found
        }
        Assert.Throws<ArgumentException>(() => Llama2Chat.AnswerLetterPosition(Tok.Encode("(A)"), Tok)); // no [/INST]
        Assert.Throws<ArgumentException>(() => Llama2Chat.AnswerLetterPosition([], Tok));
        Assert.Throws<ArgumentException>(() => Llama2Chat.AnswerLetterPosition([1], Tok));
    }

    [SharedFact(Llama2.ModelPath)]
    public void DialogValidation()
    {
        Assert.Throws<ArgumentException>(() => Llama2Chat.EncodeDialog(Tok, []));
        var e = Assert.Throws<ArgumentException>(() =>
            Llama2Chat.EncodeDialog(Tok, [new ChatTurn("a", null), new ChatTurn("b", null)]));
        Assert.Contains("turn 0", e.Message);
        Assert.Throws<ArgumentException>(() => Llama2Chat.EncodeDialog(Tok, [new ChatTurn("a", "b")], assistantPrefix: "("));
    }
}
