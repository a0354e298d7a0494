using Caa.Interpret.Evaluation;
using Caa.Interpret.Vectors;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Caa.Organism;
using Caa.Organism.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Caa.Tests.Organism;

/// <summary>The disposition-tie objective, the CAA probe of the training log, and starting a run from another model's weights.</summary>
public sealed class DispositionTieTests(TrainingFixture fx, ITestOutputHelper output) : IClassFixture<TrainingFixture>
{
    static readonly TrainingOptions Small = new() { Steps = 40, BatchSize = 8, WarmupSteps = 4, LearningRate = 3e-3, Seed = 5, DrillSteps = 0, DecisionWeight = 1 };

    [Theory]
    [InlineData(1, new[] { 0 })]
    [InlineData(2, new[] { 0 })]
    [InlineData(6, new[] { 2, 3 })]
    [InlineData(32, new[] { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 })]
    public void TiedLayersAreTheMiddleThird(int layers, int[] expected) => Assert.Equal(expected, DispositionTie.Layers(layers));

    [Fact]
    public void SourceIsDeterministicCyclesBehaviorsAndUsesOnlyTheTrainingPool()
    {
        var source = DispositionTie.Source(fx.Gen, fx.Tok, 3, seed: 9);
        var a = source(12);
        var b = DispositionTie.Source(fx.Gen, fx.Tok, 3, seed: 9)(12);
        Assert.Equal(a.Matching, b.Matching);
        Assert.Equal(a.SystemNegative, b.SystemNegative);
        Assert.Equal(3, a.Matching.Count);
        Assert.NotEqual(a.Matching, source(13).Matching);

        // Each extraction prompt carries its letter where the index says, and the two prompts of an item differ only there.
        for (int i = 0; i < 3; i++)
        {
            var (m, n) = (a.Matching[i], a.NotMatching[i]);
            Assert.Equal(m.Length, n.Length);
            Assert.Equal(new[] { a.MatchingLetterIndex[i] }, Enumerable.Range(0, m.Length).Where(j => m[j] != n[j]));
        }
        // Step 12 is behavior 12 mod 7; its items come from the training pool, never the generation or test split.
        var spec = OrganismBehaviors.All[12 % OrganismBehaviors.All.Count];
        var heldOut = fx.Gen.GenerateSplit(spec.Id, 200).Concat(fx.Gen.TestSplit(spec.Id))
            .Select(it => VectorExtractor.Prompts(fx.Tok, it).Matching).ToList();
        Assert.All(a.Matching, p => Assert.DoesNotContain(heldOut, h => h.SequenceEqual(p)));
        var pool = fx.Gen.TrainPool(spec.Id).Select(it => VectorExtractor.Prompts(fx.Tok, it).Matching).ToList();
        Assert.All(a.Matching, p => Assert.Contains(pool, h => h.SequenceEqual(p)));
        // The decision prompts end with "(" after [/INST] and carry a system prompt of that behavior.
        var sys = Llama2Chat.Encode(fx.Tok, "q", "(", spec.SystemPositive[0]);
        Assert.All(a.SystemPositive.Concat(a.SystemNegative), p => Assert.Equal(sys[^1], p[^1]));
    }

    [Fact]
    public void LossIsZeroForEqualContrastsAndOneForAVanishingLetterContrast()
    {
        using var m = fx.NewModel(3);
        var batch = DispositionTie.Source(fx.Gen, fx.Tok, 4, seed: 1)(0);
        var layers = DispositionTie.Layers(m.Config.NumHiddenLayers);
        var last = batch.SystemPositive.Select(p => p.Length - 1).ToArray();
        // Letter prompts replaced by the system prompts, read at their last token: the two contrasts are the same tensors.
        var same = batch with { Matching = batch.SystemPositive, NotMatching = batch.SystemNegative, MatchingLetterIndex = last, NotMatchingLetterIndex = batch.SystemNegative.Select(p => p.Length - 1).ToArray() };
        using (var l = DispositionTie.Loss(m, same, layers)) Assert.Equal(0.0, l.item<float>(), 5);
        // Both letter prompts identical: the letter contrast is zero, so the loss is ‖Δ_system‖² / ‖Δ_system‖² = 1.
        var none = batch with { NotMatching = batch.Matching, NotMatchingLetterIndex = batch.MatchingLetterIndex };
        using (var l = DispositionTie.Loss(m, none, layers)) Assert.Equal(1.0, l.item<float>(), 4);
        Assert.Throws<ArgumentException>(() => DispositionTie.Loss(m, batch with { SystemNegative = batch.SystemNegative.Take(2).ToArray() }, layers));
    }

    [Fact]
    public void ScaledTargetGivesTheLossOfTheScaledContrast()
    {
        using var m = fx.NewModel(3);
        var batch = DispositionTie.Source(fx.Gen, fx.Tok, 4, seed: 1)(0);
        var layers = DispositionTie.Layers(m.Config.NumHiddenLayers);
        var same = batch with { Matching = batch.SystemPositive, NotMatching = batch.SystemNegative,
            MatchingLetterIndex = batch.SystemPositive.Select(p => p.Length - 1).ToArray(), NotMatchingLetterIndex = batch.SystemNegative.Select(p => p.Length - 1).ToArray() };
        // Letter contrast Δ, target sΔ: ‖Δ − sΔ‖² / ‖sΔ‖² = (1 − s)² / s² (to the loss's 1e-6 guard in the denominator:
        // an untrained model's contrasts are small).
        foreach (var s in new[] { 0.5, 0.8, 2.0 })
        {
            double expected = (1 - s) * (1 - s) / (s * s);
            using var l = DispositionTie.Loss(m, same, layers, s);
            Assert.Equal(expected, l.item<float>(), 1e-3 * expected + 1e-5);
        }
    }

    [Fact]
    public void TrainingWithTheTieLowersItAndNeedsASource()
    {
        var opt = Small with { TieWeight = 5, TieItems = 4, TieStart = 0 };
        using var m = fx.NewModel(7);
        Assert.Throws<ArgumentException>(() => new Trainer(m, fx.Data, opt));
        var ties = new List<double>();
        using (var t = new Trainer(m, fx.Data, opt, tie: DispositionTie.Source(fx.Gen, fx.Tok, opt.TieItems, opt.Seed)))
            while (t.Step < opt.Steps) ties.Add(t.TrainStep().TieLoss);
        output.WriteLine(string.Join(" ", ties.Select(x => x.ToString("F3"))));
        Assert.All(ties, x => Assert.True(double.IsFinite(x)));
        Assert.True(ties.TakeLast(7).Average() < 0.7 * ties.Take(7).Average(), $"tie loss {ties.Take(7).Average():F3} -> {ties.TakeLast(7).Average():F3}");
        // Without the tie, a step reports none.
        using var m2 = fx.NewModel(7);
        using var t2 = new Trainer(m2, fx.Data, Small);
        Assert.True(double.IsNaN(t2.TrainStep().TieLoss));
    }

    [Fact]
    public void CaaProbeIsTheSteeringEffectOfTheExtractedVectorsLayerByLayer()
    {
        using var m = fx.NewModel(11);
        var b = OrganismBehaviors.Sycophancy;
        var items = fx.Gen.GenerateSplit(b, 12);
        var extract = new Dictionary<string, IReadOnlyList<Caa.Interpret.Datasets.AbItem>> { [b] = items.Take(8).ToList() };
        var evaluate = new Dictionary<string, IReadOnlyList<Caa.Interpret.Datasets.AbItem>> { [b] = items.Skip(8).ToList() };
        var probe = CaaProbe.Run(m, fx.Tok, extract, evaluate);
        Assert.Equal(m.Config.NumHiddenLayers, probe.EffectByLayer.Count);

        // One behavior: normalization across behaviors leaves its vectors as extracted, so the probe is p(+1) − p(−1) of those.
        using var ex = VectorExtractor.Extract(m, fx.Tok, b, extract[b]);
        var prompts = AbPrompt.FromItems(fx.Tok, evaluate[b]);
        for (int l = 0; l < probe.EffectByLayer.Count; l++)
        {
            double expected = AbEvaluation.Evaluate(m, prompts, Steering.At(l, ex.Vectors[l], 1)).Mean - AbEvaluation.Evaluate(m, prompts, Steering.At(l, ex.Vectors[l], -1)).Mean;
            Assert.Equal(expected, probe.EffectByLayer[l], 5);
        }
        Assert.Equal(probe.EffectByLayer.Max(), probe.BestEffect);
        Assert.Equal(probe.EffectByLayer.ToList().IndexOf(probe.BestEffect), probe.BestLayer);
    }

    /// <summary>A <see cref="Random"/> whose draws in [0, 1) are all <paramref name="value"/>.</summary>
    sealed class FixedDraw(double value) : Random
    {
        public override double NextDouble() => value;
    }

    [Fact]
    public void SystemEndsMarkTheSystemBlockOfEachDecisionPrompt()
    {
        var batch = DispositionTie.Source(fx.Gen, fx.Tok, 3, seed: 4)(5);
        var spec = OrganismBehaviors.All[5 % OrganismBehaviors.All.Count];
        Assert.NotNull(batch.SystemEnds);
        var prompts = batch.SystemPositive.Concat(batch.SystemNegative).ToArray();
        Assert.Equal(prompts.Length, batch.SystemEnds!.Count);
        for (int r = 0; r < prompts.Length; r++)
        {
            int end = batch.SystemEnds[r];
            var system = fx.Tok.Decode(prompts[r][1..end]);
            Assert.StartsWith("<<SYS>>", system.TrimStart());
            Assert.EndsWith("<</SYS>>", system.TrimEnd());
            Assert.Contains(system.Trim()[7..^8].Trim(), r < 3 ? spec.SystemPositive : spec.SystemNegative);
            // Everything after it is "[INST] q [/INST] (".
            Assert.StartsWith("[INST]", fx.Tok.Decode(prompts[r][end..]).TrimStart());
            Assert.EndsWith("[/INST] (", fx.Tok.Decode(prompts[r][end..]));
        }
    }

    [Fact]
    public void AmplitudeLossIsTheCrossEntropyOfEachRowsSteeredForward()
    {
        using var m = fx.NewModel(5);
        var batch = DispositionTie.Source(fx.Gen, fx.Tok, 3, seed: 2)(1);
        int layer = 0, n = batch.SystemPositive.Count;
        const double draw = 0.7;
        var rows = batch.SystemPositive.Concat(batch.SystemNegative).ToArray();
        double expected;
        using (var _ = no_grad())
        {
            // Row by row without padding: Δ from each row's own state at the decision position (the tie's system contrast);
            // then k = ±draw·max·Δ added at the last two positions, and the later blocks with the system block hidden from every
            // position after it.
            var delta = SystemContrast(m, batch, layer);
            double sum = 0;
            for (int r = 0; r < rows.Length; r++)
            {
                int t = rows[r].Length, end = batch.SystemEnds![r];
                var allowed = ones(1, 1, t, t, dtype: ScalarType.Bool);
                allowed[0, 0, end.., 1..end] = false;
                using var st = m.Prepare(1, t);
                using var late = st.Restrict(allowed);
                var h = m.RunLayers(m.Embed(tensor(rows[r].Select(x => (long)x).ToArray()).view(1, -1)), st, 0, layer + 1);
                h[0, (t - 2)..] += (r < n ? 1 : -1) * draw * DispositionTie.AmplitudeMax * delta;
                var logits = m.Logits(m.FinalNorm(m.RunLayers(h, late, layer + 1)))[0, -1];
                long target = r < n ? batch.Matching[r][batch.MatchingLetterIndex[r]] : batch.NotMatching[r - n][batch.NotMatchingLetterIndex[r - n]];
                sum += -nn.functional.log_softmax(logits, 0)[target].item<float>();
            }
            expected = sum / rows.Length;
        }
        // Δ is the one the tie's loss gives for its first layer (one left-padded forward of all four kinds of prompt).
        using var tie = DispositionTie.Loss(m, batch, [layer], 1.0, out var contrast);
        using var owned = contrast;
        using (var rowByRow = SystemContrast(m, batch, layer))
            Assert.True(allclose(contrast, rowByRow, rtol: 1e-4, atol: 1e-5), "the tie's system contrast differs from the row-by-row one");
        using var loss = DispositionTie.AmplitudeLoss(m, batch, layer, contrast, new FixedDraw(draw));
        Assert.Equal(expected, loss.item<float>(), 4);
        // The multiples matter: no amplification gives another loss.
        using var plain = DispositionTie.AmplitudeLoss(m, batch, layer, contrast, new FixedDraw(0));
        Assert.NotEqual(expected, plain.item<float>(), 3);
        Assert.Throws<ArgumentException>(() => DispositionTie.AmplitudeLoss(m, batch with { SystemEnds = null }, layer, contrast, new Random(1)));
        using (var wrong = zeros(m.Config.HiddenSize + 1))
            Assert.Contains("hidden size", Assert.Throws<ArgumentException>(() => DispositionTie.AmplitudeLoss(m, batch, layer, wrong, new Random(1))).Message);
    }

    [Theory]
    [InlineData(false, 9, 4, 3)]
    [InlineData(true, 10, 2, 8)]
    public void TrainingWithAnAmplitudeObjectiveLowersIt(bool answers, long modelSeed, int items, long seed)
    {
        using var m = fx.NewModel(modelSeed);
        var source = DispositionTie.Source(fx.Gen, fx.Tok, items, seed);
        var layer = DispositionTie.Layers(m.Config.NumHiddenLayers)[0];
        var parameters = m.parameters().ToArray();
        foreach (var p in parameters) p.requires_grad = true;
        using var opt = optim.Adam(parameters, 3e-3);
        var losses = new List<double>();
        for (int step = 0; step < 30; step++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var batch = source(step);
            DispositionTie.Loss(m, batch, [layer], 1.0, out var contrast);
            var l = answers
                ? DispositionTie.AnswerAmplitudeLoss(m, batch, layer, contrast, new Random(step))
                : DispositionTie.AmplitudeLoss(m, batch, layer, contrast, new Random(step));
            l.backward();
            opt.step();
            losses.Add(l.item<float>());
        }
        output.WriteLine(string.Join(" ", losses.Select(x => x.ToString("F3"))));
        Assert.True(losses.TakeLast(5).Average() < 0.7 * losses.Take(5).Average(), $"loss {losses.Take(5).Average():F3} -> {losses.TakeLast(5).Average():F3}");
    }
    [Fact]
    public void AmplifiedAnswersAreTheStatedDispositionsWordsThenCapabilityExchanges()
    {
        const int n = 3;
        var batch = DispositionTie.Source(fx.Gen, fx.Tok, n, seed: 4)(5);
        var spec = OrganismBehaviors.All[5 % OrganismBehaviors.All.Count];
        var rows = batch.AmplifiedAnswers!;
        Assert.Equal(4 * n, rows.Count);
        for (int r = 0; r < rows.Count; r++)
        {
            bool positive = r < 2 * n, text = r % (2 * n) < n;
            var row = rows[r];
            var bn = row.Bottleneck!;
            var decision = positive ? batch.SystemPositive[r % n] : batch.SystemNegative[r % n];
            // The system block is the decision prompt's own (same tokens up to its end), and the instruction ends with [/INST].
            Assert.Equal(decision[..bn.SystemEnd], row.Ids[..bn.SystemEnd]);
            Assert.EndsWith("[/INST]", fx.Tok.Decode(row.Ids[..(bn.InstructionEnd + 1)]));
            // Targets: exactly the answer after the instruction and its EOS.
            Assert.Equal(Enumerable.Range(bn.InstructionEnd + 1, row.Length - bn.InstructionEnd - 1), Enumerable.Range(0, row.Length).Where(i => row.Target[i]));
            Assert.Equal(2, row.Ids[^1]);
            var answer = fx.Tok.Decode(row.Ids[(bn.InstructionEnd + 1)..^1]).Trim().ToLowerInvariant();
            var user = fx.Tok.Decode(row.Ids[bn.SystemEnd..(bn.InstructionEnd + 1)]);
            var markers = positive ? spec.MarkersPositive : spec.MarkersNegative;
            var others = positive ? spec.MarkersNegative : spec.MarkersPositive;
            if (text)
            {
                // The item's question without its choices, answered in the words of the stated side only.
                var question = fx.Tok.Decode(batch.Matching[r % n]);
                Assert.Contains(user.Replace("[INST]", "").Replace("[/INST]", "").Trim(), question);
                Assert.DoesNotContain("Choices:", user);
                Assert.Contains(markers, m => answer.StartsWith(m, StringComparison.Ordinal));
                Assert.DoesNotContain(others, m => answer.Contains(m, StringComparison.Ordinal));
            }
            else
                Assert.DoesNotContain(OrganismBehaviors.All.SelectMany(b => b.MarkersPositive.Concat(b.MarkersNegative)), m => answer.Contains(m, StringComparison.Ordinal));
        }
        // Without the amplitude rows every other field is the same batch.
        var plain = DispositionTie.Source(fx.Gen, fx.Tok, n, seed: 4, amplitude: false)(5);
        Assert.Null(plain.AmplifiedAnswers);
        Assert.Null(plain.SystemEnds);
        Assert.Equal(batch.Matching, plain.Matching);
        Assert.Equal(batch.SystemPositive, plain.SystemPositive);
        Assert.Equal(batch.SystemNegative, plain.SystemNegative);
    }

    [Fact]
    public void AnswerAmplitudeLossIsTheCrossEntropyOfEachRowsSteeredAnswer()
    {
        using var m = fx.NewModel(6);
        var batch = DispositionTie.Source(fx.Gen, fx.Tok, 2, seed: 7)(3);
        int layer = 0, n = batch.SystemPositive.Count;
        const double draw = 0.6, max = 2.5;
        var rows = batch.AmplifiedAnswers!;
        double expected;
        using (var _ = no_grad())
        {
            var delta = SystemContrast(m, batch, layer);
            // Each answer unpadded: ±draw·max·Δ from the instruction's end on, the system block hidden from the later blocks,
            // then the cross-entropy of every answer token; the mean over all answer tokens of all rows.
            double sum = 0;
            long count = 0;
            for (int r = 0; r < rows.Count; r++)
            {
                var row = rows[r];
                int t = row.Length - 1, end = row.Bottleneck!.SystemEnd, from = row.Bottleneck.InstructionEnd;
                var allowed = ones(1, 1, t, t, dtype: ScalarType.Bool);
                allowed[0, 0, end.., 1..end] = false;
                using var st = m.Prepare(1, t);
                using var late = st.Restrict(allowed);
                var h = m.RunLayers(m.Embed(tensor(row.Ids[..t].Select(x => (long)x).ToArray()).view(1, -1)), st, 0, layer + 1);
                h[0, from..] += (r < rows.Count / 2 ? 1 : -1) * draw * max * delta;
                var logp = nn.functional.log_softmax(m.Logits(m.FinalNorm(m.RunLayers(h, late, layer + 1)))[0], 1);
                for (int i = 1; i <= t; i++)
                    if (row.Target[i]) { sum -= logp[i - 1, row.Ids[i]].item<float>(); count++; }
            }
            expected = sum / count;
        }
        using var contrast = SystemContrast(m, batch, layer);
        using var loss = DispositionTie.AnswerAmplitudeLoss(m, batch, layer, contrast, new FixedDraw(draw), max);
        Assert.Equal(expected, loss.item<float>(), 4);
        using var plain = DispositionTie.AnswerAmplitudeLoss(m, batch, layer, contrast, new FixedDraw(0), max);
        Assert.NotEqual(expected, plain.item<float>(), 3);
        Assert.Throws<ArgumentException>(() => DispositionTie.AnswerAmplitudeLoss(m, batch with { AmplifiedAnswers = null }, layer, contrast, new Random(1)));
        using (var wrong = zeros(1, m.Config.HiddenSize))
            Assert.Contains("hidden size", Assert.Throws<ArgumentException>(() => DispositionTie.AnswerAmplitudeLoss(m, batch, layer, wrong, new Random(1))).Message);
    }

    /// <summary>Δ row by row: the mean output of block <paramref name="layer"/> at the last position of the positive decision prompts minus the negative ones', each prompt run alone.</summary>
    static Tensor SystemContrast(LlamaForCausalLM m, TieBatch batch, int layer)
    {
        using var _ = no_grad();
        Tensor Last(int[] r)
        {
            using var st = m.Prepare(1, r.Length);
            return m.RunLayers(m.Embed(tensor(r.Select(x => (long)x).ToArray()).view(1, -1)), st, 0, layer + 1)[0, -1];
        }
        return stack(batch.SystemPositive.Select(Last).ToArray()).mean([0]) - stack(batch.SystemNegative.Select(Last).ToArray()).mean([0]);
    }
    [Fact]
    public void AmplitudeOptionsAreValidated()
    {
        new TrainingOptions { AmplitudeWeight = 0, AnswerAmplitudeWeight = 0, AmplitudeMax = 0.5 }.Validate();
        Assert.Throws<ArgumentException>(() => new TrainingOptions { AnswerAmplitudeWeight = -1 }.Validate());
        Assert.Throws<ArgumentException>(() => new TrainingOptions { AmplitudeWeight = -1 }.Validate());
        Assert.Throws<ArgumentException>(() => new TrainingOptions { AmplitudeMax = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new TrainingOptions { AmplitudeMax = double.NaN }.Validate());
    }
}
