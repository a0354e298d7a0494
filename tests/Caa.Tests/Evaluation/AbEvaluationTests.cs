using Caa.Interpret.Evaluation;
using Caa.Model.Hooks;
using Caa.Tests.Infrastructure;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace Caa.Tests.Evaluation;

public class AbScoringProperties
{
    static double F(NormalFloat x) => Math.Clamp(x.Get, -1e6, 1e6);

    [Property(MaxTest = 500)]
    public bool PMatchIsAProbability(NormalFloat a, NormalFloat b)
    {
        var p = AbScoring.PMatch(F(a), F(b));
        return p >= 0 && p <= 1;
    }

    [Property(MaxTest = 500)]
    public bool SwappingTheLettersGivesOneMinusP(NormalFloat a, NormalFloat b)
    {
        var p = AbScoring.PMatch(F(a), F(b));
        var q = AbScoring.PMatch(F(b), F(a));
        return Math.Abs(p + q - 1) < 1e-12;
    }

    [Property(MaxTest = 200)]
    public bool EqualsTheSoftmaxRatio(int seed)
    {
        var rng = new Random(seed);
        var logits = Enumerable.Range(0, 20).Select(_ => (float)(rng.NextDouble() * 20 - 10)).ToArray();
        int m = rng.Next(20), o = (m + 1 + rng.Next(19)) % 20;
        var z = logits.Sum(l => Math.Exp(l));
        var ratio = Math.Exp(logits[m]) / z / (Math.Exp(logits[m]) / z + Math.Exp(logits[o]) / z);
        return Math.Abs(AbScoring.PMatch(logits, m, o) - ratio) < 1e-12;
    }

    [Theory]
    [InlineData("(A)", 'A')]
    [InlineData(" (B)", 'B')]
    [InlineData("(C", 'C')]
    public void LettersAreParsed(string answer, char letter) => Assert.Equal(letter, AbScoring.Letter(answer));

    [Theory]
    [InlineData("A")]
    [InlineData("(a)")]
    [InlineData("(AB)")]
    public void BadAnswersAreRejected(string answer) => Assert.Throws<FormatException>(() => AbScoring.Letter(answer));
}

public class AbEvaluationTests
{
    static object Gate => EvalFixtures.Gate;

    [Fact]
    public void BatchedEqualsOneByOne()
    {
        lock (Gate)
        {
            var prompts = EvalFixtures.Prompts(9, 11, irregular: true);
            var batched = AbEvaluation.Evaluate(EvalFixtures.Tiny, prompts, batchSize: 4);
            var single = AbEvaluation.Evaluate(EvalFixtures.Tiny, prompts, batchSize: 1);
            for (var i = 0; i < prompts.Count; i++) Assert.Equal(single.PMatch[i], batched.PMatch[i], 1e-5);
            Assert.Equal(single.PMatch.Average(), batched.Mean, 1e-5);
            // steered too
            var v = EvalFixtures.Vectors(EvalFixtures.Tiny, 2);
            var sb = AbEvaluation.Evaluate(EvalFixtures.Tiny, prompts, Steering.At(1, v[1], 1.5), batchSize: 5);
            var ss = AbEvaluation.Evaluate(EvalFixtures.Tiny, prompts, Steering.At(1, v[1], 1.5), batchSize: 1);
            for (var i = 0; i < prompts.Count; i++) Assert.Equal(ss.PMatch[i], sb.PMatch[i], 1e-5);
            Assert.True(Enumerable.Range(0, prompts.Count).Any(i => Math.Abs(ss.PMatch[i] - single.PMatch[i]) > 1e-3), "steering changed nothing");
        }
    }

    [Fact]
    public void LetterLogitsOnlyEqualTheFullVocabularyLogits()
    {
        lock (Gate)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            foreach (var tied in new[] { false, true })
            {
                using var model = TinyModels.Create(8, config: TinyModels.Config(layers: 2, vocab: EvalFixtures.Vocab, tied: tied));
                var prompts = EvalFixtures.Prompts(6, 13);
                prompts[2] = prompts[2] with { MatchTokenId = 11, OtherTokenId = 40 };    // not every row uses the same letters
                using var tb = Caa.Model.TokenBatch.LeftPad(prompts.Select(p => (IReadOnlyList<int>)p.Ids).ToList());
                var normed = model.ForwardHidden(tb.Ids, tb.MaskOrNull)[.., -1];
                var full = AbEvaluation.Scores(model.Logits(normed), prompts);
                var letters = AbEvaluation.ScoreNormed(model, normed, prompts);
                for (var i = 0; i < prompts.Count; i++) Assert.Equal(full[i], letters[i], 1e-6);
            }
        }
    }

    [Property(MaxTest = 8)]
    public bool MultiplierZeroEqualsUnsteeredExactly(PositiveInt seed)
    {
        lock (Gate)
        {
            var prompts = EvalFixtures.Prompts(5, seed.Get, irregular: true);
            var model = EvalFixtures.Tiny;
            var layer = seed.Get % model.Config.NumHiddenLayers;
            var v = EvalFixtures.Vectors(model, seed.Get)[layer];
            var plain = AbEvaluation.Evaluate(model, prompts, batchSize: 3);
            // A hook with multiplier 0 attached directly (not short-circuited) …
            IReadOnlyList<double> hooked;
            using (model.Hooks.AddVector(HookPoints.ResidPostOf(layer), v, tensor(0f), PositionMask.All))
                hooked = AbEvaluation.Evaluate(model, prompts, batchSize: 3).PMatch;
            // … and the Steering record with multiplier 0.
            var steered = AbEvaluation.Evaluate(model, prompts, Steering.At(layer, v, 0), batchSize: 3).PMatch;
            return model.Hooks.Count == 0 && plain.PMatch.SequenceEqual(hooked) && plain.PMatch.SequenceEqual(steered);
        }
    }

    [Property(MaxTest = 8)]
    public bool SwappedPromptsGiveOneMinusP(PositiveInt seed)
    {
        lock (Gate)
        {
            var prompts = EvalFixtures.Prompts(4, seed.Get);
            var p = AbEvaluation.Evaluate(EvalFixtures.Tiny, prompts).PMatch;
            var q = AbEvaluation.Evaluate(EvalFixtures.Tiny, prompts.Select(x => x.Swapped()).ToList()).PMatch;
            return p.Zip(q).All(t => t.First >= 0 && t.First <= 1 && Math.Abs(t.First + t.Second - 1) < 1e-9);
        }
    }

    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void PromptsFromItemsEndWithTheOpenParenAndStartAtTheInstructionEnd()
    {
        var tok = EvalFixtures.Tokenizer;
        var items = EvalFixtures.Items();
        var prompts = AbPrompt.FromItems(tok, items);
        foreach (var (p, item) in prompts.Zip(items))
        {
            Assert.EndsWith("[/INST] (", tok.Decode(p.Ids));
            Assert.Equal(p.Ids.Length - 2, p.SteerStart); // "]" then "▁("
            Assert.Equal(Caa.Model.Tokenization.Llama2Chat.LetterTokenId(tok, item.AnswerMatchingBehavior[1]), p.MatchTokenId);
            Assert.NotEqual(p.MatchTokenId, p.OtherTokenId);
        }
        var withSystem = AbPrompt.From(tok, items[0], system: "You are helpful.");
        Assert.True(withSystem.Ids.Length > prompts[0].Ids.Length);
        Assert.Equal(withSystem.Ids.Length - 2, withSystem.SteerStart);
        lock (Gate)
        {
            var r = AbEvaluation.Evaluate(EvalFixtures.TinyLlamaVocab, tok, items, batchSize: 2);
            var s = AbEvaluation.Evaluate(EvalFixtures.TinyLlamaVocab, tok, items, system: "You are helpful.", batchSize: 2);
            Assert.Equal(items.Count, r.PMatch.Count);
            Assert.All(r.PMatch.Concat(s.PMatch), p => Assert.InRange(p, 0, 1));
        }
    }

    [Fact]
    public void CapabilityUnsteeredIsTheAbMeanAndMultiplierZeroIsUnsteered()
    {
        lock (Gate)
        {
            var prompts = EvalFixtures.Prompts(6, 21);
            var model = EvalFixtures.Tiny;
            var v = EvalFixtures.Vectors(model, 4)[2];
            var plain = CapabilityEvaluation.Evaluate(model, prompts);
            Assert.Single(plain);
            Assert.Equal(AbEvaluation.Evaluate(model, prompts).Mean, plain[0].MeanPCorrect);
            var steered = CapabilityEvaluation.Evaluate(model, prompts, layer: 2, vector: v, multipliers: [-1, 0, 1]);
            Assert.Equal([-1.0, 0.0, 1.0], steered.Select(r => r.Multiplier));
            Assert.Equal(plain[0].PCorrect, steered[1].PCorrect);
            Assert.NotEqual(steered[0].MeanPCorrect, steered[2].MeanPCorrect);
        }
    }
}
