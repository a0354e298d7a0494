using Caa.Interpret.Datasets;
using Caa.Interpret.Steering;
using Caa.Interpret.Vectors;
using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Caa.Tests.Infrastructure;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Tests.Vectors;

/// <summary>End-to-end extraction on a random 3-block model with Llama 2's tokenizer (hidden 32).</summary>
public class ExtractionTests
{
    const string Tokenizer = VectorTestSupport.TokenizerPath;
    readonly LlamaForCausalLM _model = VectorTestSupport.ChatModel();
    static Llama2Tokenizer Tok => VectorTestSupport.Tok;
    static IReadOnlyList<AbItem> Items => VectorTestSupport.Items;

    static void AssertClose(SteeringVectorSet a, SteeringVectorSet b, double tolerance)
    {
        Assert.Equal(a.Layers, b.Layers);
        foreach (var l in a.Layers)
        {
            var diff = TinyModels.MaxAbsDiff(a[l], b[l]);
            Assert.True(diff <= tolerance, $"layer {l}: max abs diff {diff:g3} > {tolerance:g3}");
        }
    }

    [SharedFact(Tokenizer)]
    public void TheVectorEqualsAHandComputationFromFullCaptures()
    {
        using var result = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { BatchSize = 4 });
        var layers = Enumerable.Range(0, 3).ToArray();
        var sums = layers.ToDictionary(l => l, _ => new double[32]);
        using var _ = no_grad();
        foreach (var item in Items)
        {
            foreach (var (answer, sign) in new[] { (item.AnswerMatchingBehavior, 1.0), (item.AnswerNotMatchingBehavior, -1.0) })
            {
                var ids = Tok.Encode($"[INST] {item.Question} [/INST] {answer.Trim()}");
                var letter = ids.Count - 2; // "▁( X )": the letter is the second-to-last token
                Assert.Equal("(" + answer.Trim()[1], Tok.Decode(ids.Skip(ids.Count - 3).Take(2).ToArray()).Trim());
                using var capture = _model.Hooks.Capture(layers.Select(HookPoints.ResidPostOf));
                _model.Forward(tensor(ids.Select(x => (long)x).ToArray()).unsqueeze(0)).Dispose();
                foreach (var l in layers)
                {
                    var act = capture[HookPoints.ResidPostOf(l)][0, letter].data<float>().ToArray();
                    for (var h = 0; h < 32; h++) sums[l][h] += sign * act[h];
                }
            }
        }
        foreach (var l in layers)
        {
            using var expected = tensor(sums[l].Select(s => s / Items.Count).ToArray());
            var diff = TinyModels.MaxAbsDiff(result.Vectors[l], expected);
            Assert.True(diff <= 1e-5, $"layer {l}: {diff:g3}");
            Assert.True(result.Vectors.Norm(l) > 1e-2, $"layer {l}: the vector is (near) zero, so the comparison proves little");
        }
        Assert.Equal(0, _model.Hooks.Count);
    }

    [SharedFact(Tokenizer)]
    public void BatchedExtractionEqualsOneItemAtATime()
    {
        using var one = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { BatchSize = 1 });
        foreach (var size in new[] { 2, 4, 100 })
        {
            using var batched = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { BatchSize = size });
            AssertClose(batched.Vectors, one.Vectors, 1e-5);
        }
    }

    [SharedFact(Tokenizer)]
    public void AllLayersFromOnePassEqualOneLayerAtATime()
    {
        using var all = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { BatchSize = 3 });
        Assert.Equal([0, 1, 2], all.Vectors.Layers);
        foreach (var l in all.Vectors.Layers)
        {
            using var single = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { BatchSize = 3, Layers = [l] });
            Assert.Equal([l], single.Vectors.Layers);
            Assert.Equal(0.0, TinyModels.MaxAbsDiff(single.Vectors[l], all.Vectors[l]));
        }
    }

    [SharedFact(Tokenizer)]
    public void KeptActivationsAreInDatasetOrderAndGiveTheVector()
    {
        var progress = new List<int>();
        using var result = VectorExtractor.Extract(_model, Tok, "test", Items,
            new ExtractionOptions { BatchSize = 4, Layers = [2, 0], KeepActivations = true }, new SyncProgress(progress));
        var acts = result.Activations!;
        Assert.Equal([0, 2], acts.Layers);
        Assert.Equal("ABABAB", new string(acts.MatchingLetters.ToArray()));
        Assert.Equal([4, 6], progress);
        foreach (var l in acts.Layers)
        {
            Assert.Equal(new long[] { 6, 32 }, acts.Matching(l).shape);
            Assert.Equal(DeviceType.CPU, acts.Matching(l).device_type);
            using var md = VectorExtractor.MeanDifference(acts.Matching(l), acts.NotMatching(l));
            Assert.True(TinyModels.MaxAbsDiff(md, result.Vectors[l]) <= 1e-6);
        }
        // Row i is item i: compare item 3 with a run of that item alone.
        using var alone = VectorExtractor.Extract(_model, Tok, "test", [Items[3]], new ExtractionOptions { Layers = [2], KeepActivations = true });
        Assert.True(TinyModels.MaxAbsDiff(acts.Matching(2)[3], alone.Activations!.Matching(2)[0]) <= 1e-5);
        Assert.True(TinyModels.MaxAbsDiff(acts.NotMatching(2)[3], alone.Activations!.NotMatching(2)[0]) <= 1e-5);
    }

    [SharedFact(Tokenizer)]
    public void KeptActivationsSaveAndReadBackAsLabelledRowsForPca()
    {
        using var result = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { Layers = [1, 2], KeepActivations = true });
        var dir = Path.Combine(Path.GetTempPath(), "caa-acts-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var file = result.Activations!.Save(dir);
            using var labeled = Caa.Interpret.Analysis.AnalysisFiles.ReadActivations(file, [2]);
            Assert.Equal([2], labeled.Layers.Keys);
            Assert.Equal(new long[] { 12, 32 }, labeled.Layers[2].shape);
            // Rows 0..5: items with their matching answer; rows 6..11: the same items with the other answer.
            Assert.Equal(0.0, TinyModels.MaxAbsDiff(labeled.Layers[2][..6], result.Activations.Matching(2)));
            Assert.Equal(0.0, TinyModels.MaxAbsDiff(labeled.Layers[2][6..], result.Activations.NotMatching(2)));
            var match = labeled.Labels.Single(l => l.Name == "behavior_match");
            var letter = labeled.Labels.Single(l => l.Name == "letter");
            Assert.Equal(Enumerable.Repeat(1L, 6).Concat(Enumerable.Repeat(0L, 6)), match.Values);
            Assert.Equal("ABABABBABABA", string.Concat(letter.Values.Select(v => letter.Categories![(int)v])));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [SharedFact(Tokenizer)]
    public void MetadataRecordsTheModelTheDataAndTheSystemPrompt()
    {
        using var plain = VectorExtractor.Extract(_model, Tok, "sycophancy", Items, new ExtractionOptions { Layers = [1] });
        var m = plain.Vectors.Metadata;
        Assert.Equal(("sycophancy", "in-memory", _model.Config.ArchitectureHash, 32, 6), (m.Behavior, m.ModelSource, m.ArchitectureHash, m.HiddenSize, m.Items));
        Assert.Equal(VectorExtractor.ItemsSha256(Items), m.DatasetSha256);
        Assert.Equal(64, m.DatasetSha256.Length);
        Assert.Equal((VectorMetadata.AnswerLetterReadPosition, VectorNormalization.None, (string?)null), (m.ReadPosition, m.Normalization, m.SystemPrompt));

        using var prompted = VectorExtractor.Extract(_model, Tok, "sycophancy", Items,
            new ExtractionOptions { Layers = [1], SystemPrompt = "You are helpful.", DatasetSha256 = "ab12" });
        Assert.Equal(("You are helpful.", "ab12"), (prompted.Vectors.Metadata.SystemPrompt, prompted.Vectors.Metadata.DatasetSha256));
        Assert.True(TinyModels.MaxAbsDiff(prompted.Vectors[1], plain.Vectors[1]) > 1e-4, "the system prompt should change the activations");
    }

    [SharedFact(Tokenizer)]
    public void ABFloat16ModelGivesFloat32CpuVectorsCloseToFloat32()
    {
        using var bf16 = VectorTestSupport.ChatModel(dtype: ScalarType.BFloat16);
        using var low = VectorExtractor.Extract(bf16, Tok, "test", Items, new ExtractionOptions { BatchSize = 3, KeepActivations = true });
        using var full = VectorExtractor.Extract(_model, Tok, "test", Items, new ExtractionOptions { BatchSize = 3 });
        Assert.Equal("BFloat16", low.Vectors.Metadata.ModelDType);
        foreach (var l in low.Vectors.Layers)
        {
            Assert.Equal((ScalarType.Float32, DeviceType.CPU), (low.Vectors[l].dtype, low.Vectors[l].device_type));
            Assert.Equal(ScalarType.BFloat16, low.Activations!.Matching(l).dtype);
            var relative = TinyModels.MaxAbsDiff(low.Vectors[l], full.Vectors[l]) / full.Vectors[l].abs().max().item<float>();
            Assert.True(relative < 0.1, $"layer {l}: bf16 vs fp32 relative diff {relative:g3}");
        }
    }

    [SharedFact(Tokenizer)]
    public void BadInputsAreRefusedNamingTheItem()
    {
        var bad = Items.Take(2).Append(new AbItem("Q?\n\nChoices:\n (A) x\n (B) y", "A", "(B)")).ToList();
        Assert.Contains("item 2: answer_matching_behavior \"A\"", Assert.Throws<ArgumentException>(() => VectorExtractor.Extract(_model, Tok, "t", bad)).Message);
        var same = new List<AbItem> { new("Q?", "(A)", "(A)") };
        Assert.Contains("item 0: answer_matching_behavior and answer_not_matching_behavior are both (A)", Assert.Throws<ArgumentException>(() => VectorExtractor.Extract(_model, Tok, "t", same)).Message);
        Assert.Contains("outside the model's 0…2", Assert.Throws<ArgumentException>(() => VectorExtractor.Extract(_model, Tok, "t", Items, new ExtractionOptions { Layers = [3] })).Message);
        Assert.Throws<ArgumentException>(() => VectorExtractor.Extract(_model, Tok, "t", []));
        Assert.Throws<ArgumentException>(() => VectorExtractor.Extract(_model, Tok, "../evil", Items));
        Assert.Throws<ArgumentException>(() => VectorExtractor.Extract(_model, Tok, "t", Items, new ExtractionOptions { BatchSize = 0 }));
    }

    [SharedFact(Tokenizer)]
    public void StartColumnsPointAtTheClosingBracketOfTheLastInstUnderPadding()
    {
        var prompts = new IReadOnlyList<int>[]
        {
            Llama2Chat.Encode(Tok, "A long question that takes many tokens to write down"),
            Llama2Chat.Encode(Tok, "Short?", assistantPrefix: "("),
            Tok.Encode("No chat template here"),
        };
        using var batch = TokenBatch.LeftPad(prompts);
        var starts = Steer.StartColumns(batch, prompts, Tok);
        Assert.Equal(starts, Steer.StartColumns(prompts, Tok));
        Assert.Equal(-1, starts[2]);
        var closing = Tok.Encode("[/INST]", addBos: false)[^1];
        for (var row = 0; row < 2; row++)
        {
            Assert.Equal(closing, batch.Ids[row, starts[row]].item<long>());
            Assert.Equal(batch.Column(row, Llama2Chat.InstructionEnd(prompts[row], Tok)), starts[row]);
        }
        Assert.Equal(batch.Columns - 2, starts[1]); // "… ] ▁(": the bracket is second to last
        Assert.Throws<ArgumentException>(() => Steer.StartColumns(batch, prompts.Reverse().ToArray(), Tok));
    }

    /// <summary>IProgress that records synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    sealed class SyncProgress(List<int> seen) : IProgress<int>
    {
        public void Report(int value) => seen.Add(value);
    }
}
