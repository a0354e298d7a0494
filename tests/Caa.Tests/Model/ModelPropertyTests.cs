using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Caa.Tests.Infrastructure;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace Caa.Tests.Model;

/// <summary>Invariants of the Llama implementation, checked on small random-weight models.</summary>
public class ModelPropertyTests
{
    static readonly LlamaForCausalLM Model = TinyModels.Create();
    const int Vocab = 61;

    static Tensor Ids(params long[] ids) => tensor(ids).unsqueeze(0);

    [Property(MaxTest = 25)]
    public bool RmsNormIsInvariantToInputScale(PositiveInt seed, PositiveInt scaleTenths)
    {
        using var _ = NewDisposeScope();
        var norm = Model.model.layers[0].input_layernorm;
        var x = randn(new long[] { 2, 3, 32 }, generator: new TorchSharp.torch.Generator((ulong)seed.Get));
        var s = 1 + scaleTenths.Get % 1000 / 10.0; // scales ≥ 1: below, eps (1e-5) starts to matter
        return TinyModels.MaxAbsDiff(norm.call(x), norm.call(x * s)) < 1e-4;
    }

    [Property(MaxTest = 25)]
    public bool RopePreservesNormsAndDotProductsDependOnlyOnOffset(PositiveInt seed, NonNegativeInt p, NonNegativeInt shift)
    {
        using var _ = NewDisposeScope();
        var g = new TorchSharp.torch.Generator((ulong)seed.Get);
        var q = randn(new long[] { 1, 1, 1, 16 }, generator: g);
        var k = randn(new long[] { 1, 1, 1, 16 }, generator: g);
        long i = p.Get % 200, j = (p.Get * 7 + 3) % 200, d = shift.Get % 300;
        Tensor Rot(Tensor x, long pos)
        {
            var (cos, sin) = Rotary.CosSin(tensor(new[] { pos }).view(1, 1), 16, 10000, ScalarType.Float32);
            return Rotary.Apply(x, cos, sin);
        }
        var normKept = Math.Abs(Rot(q, i).norm().item<float>() - q.norm().item<float>()) < 1e-4;
        var dot1 = (Rot(q, i) * Rot(k, j)).sum().item<float>();
        var dot2 = (Rot(q, i + d) * Rot(k, j + d)).sum().item<float>();
        return normKept && Math.Abs(dot1 - dot2) < 2e-3;
    }

    [Property(MaxTest = 10)]
    public bool LaterTokensDoNotChangeEarlierLogits(PositiveInt seed, PositiveInt cut)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = TinyModels.RandomIds(12, Vocab, seed.Get);
        var t = 1 + cut.Get % 10;
        var changed = ids.ToArray();
        for (var i = t + 1; i < changed.Length; i++) changed[i] = (changed[i] + 5) % Vocab;
        var a = Model.Forward(Ids(ids))[.., ..(t + 1)];
        var b = Model.Forward(Ids(changed))[.., ..(t + 1)];
        return TinyModels.MaxAbsDiff(a, b) == 0;
    }

    [Fact]
    public void GroupedQueryAttentionEqualsMultiHeadWithRepeatedKeyValueHeads()
    {
        using var _ = no_grad();
        var gqa = TinyModels.Create(seed: 3);
        var mha = LlamaForCausalLM.Create(TinyModels.Config(kvHeads: 4));
        var src = gqa.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in mha.named_parameters())
        {
            Tensor w = src[name];
            // K/V head h of the GQA model serves query heads 2h and 2h+1: repeat its rows.
            if (name.EndsWith("k_proj.weight") || name.EndsWith("v_proj.weight"))
                w = w.view(2, 1, 8, 32).expand(2, 2, 8, 32).reshape(32, 32);
            p.copy_(w);
        }
        var ids = Ids(TinyModels.RandomIds(10, Vocab, 5));
        Assert.True(TinyModels.MaxAbsDiff(gqa.Forward(ids), mha.Forward(ids)) < 1e-5);
    }

    [Fact]
    public void LeftPaddedBatchEqualsRowsRunAlone()
    {
        using var _ = no_grad();
        var rows = new[] { TinyModels.RandomIds(9, Vocab, 1), TinyModels.RandomIds(4, Vocab, 2), TinyModels.RandomIds(7, Vocab, 3) };
        using var batch = TokenBatch.LeftPad(rows.Select(r => (IReadOnlyList<int>)r.Select(x => (int)x).ToList()).ToList());
        using var logits = Model.Forward(batch.Ids, batch.AttentionMask);
        for (var b = 0; b < rows.Length; b++)
        {
            using var alone = Model.Forward(Ids(rows[b]));
            var pad = (int)batch.Padding[b];
            var diff = TinyModels.MaxAbsDiff(logits[b, pad..], alone[0]);
            Assert.True(diff < 1e-4, $"row {b}: max diff {diff:g3}");
        }
    }

    [Fact]
    public void CachedDecodingEqualsFullRecomputation()
    {
        using var _ = no_grad();
        var ids = TinyModels.RandomIds(14, Vocab, 9);
        using var full = Model.Forward(Ids(ids));
        using var cache = Model.NewCache();
        var parts = new List<Tensor> { Model.Forward(Ids(ids[..6]), cache: cache) };
        for (var t = 6; t < ids.Length; t++) parts.Add(Model.Forward(Ids(ids[t..(t + 1)]), cache: cache));
        Assert.Equal(14, cache.Length);
        Assert.True(TinyModels.MaxAbsDiff(cat(parts, 1), full) < 1e-4);
    }

    [Fact]
    public void CachedDecodingOfAPaddedBatchEqualsFullRecomputation()
    {
        using var _ = no_grad();
        var rows = new[] { TinyModels.RandomIds(8, Vocab, 4), TinyModels.RandomIds(5, Vocab, 6) };
        var extra = new long[,] { { 7, 8, 9 }, { 10, 11, 12 } };
        using var batch = TokenBatch.LeftPad(rows.Select(r => (IReadOnlyList<int>)r.Select(x => (int)x).ToList()).ToList());
        var allIds = cat([batch.Ids, tensor(extra)], 1);
        var allMask = cat([batch.AttentionMask, ones(2, 3, dtype: ScalarType.Int64)], 1);
        using var full = Model.Forward(allIds, allMask);
        using var cache = Model.NewCache();
        var parts = new List<Tensor> { Model.Forward(batch.Ids, batch.AttentionMask, cache) };
        for (var t = 0; t < 3; t++)
            parts.Add(Model.Forward(tensor(extra)[.., t..(t + 1)], allMask[.., ..(int)(batch.Columns + t + 1)], cache));
        var realColumns = allMask.to(ScalarType.Bool).unsqueeze(-1);
        Assert.True(TinyModels.MaxAbsDiff(cat(parts, 1) * realColumns, full * realColumns) < 1e-4);
    }

    [Fact]
    public void FinalNormOfLastResidPostGivesTheLogits()
    {
        using var _ = no_grad();
        var ids = Ids(TinyModels.RandomIds(8, Vocab, 11));
        var last = HookPoints.ResidPostOf(Model.Config.NumHiddenLayers - 1);
        using var capture = Model.Hooks.Capture([last]);
        using var logits = Model.Forward(ids);
        using var fromHook = Model.Logits(Model.FinalNorm(capture[last]));
        Assert.Equal(0.0, TinyModels.MaxAbsDiff(fromHook, logits));
    }

    [Property(MaxTest = 10)]
    public bool AddingAZeroVectorChangesNothing(PositiveInt seed, NonNegativeInt layer)
    {
        using var _ = no_grad();
        var ids = Ids(TinyModels.RandomIds(7, Vocab, seed.Get));
        using var plain = Model.Forward(ids);
        using (Model.Hooks.AddVector(HookPoints.ResidPostOf(layer.Get % 3), zeros(32), tensor(3.0f), PositionMask.All))
        {
            using var hooked = Model.Forward(ids);
            return TinyModels.MaxAbsDiff(plain, hooked) == 0 && Model.Hooks.Count == 1;
        }
    }

    [Fact]
    public void AHookAtLayerLChangesNothingBelowL()
    {
        using var _ = no_grad();
        var ids = Ids(TinyModels.RandomIds(7, Vocab, 2));
        var names = Enumerable.Range(0, 3).SelectMany(l => HookPoints.PerBlock.Select(p => HookPoints.Name(l, p))).ToList();
        Dictionary<string, Tensor> baseline;
        using (var before = Model.Hooks.Capture(names))
        {
            Model.Forward(ids).Dispose();
            baseline = names.ToDictionary(n => n, n => before[n].clone());
        }
        // The vector is added first, so the capture at the same point sees the changed value.
        using (Model.Hooks.AddVector(HookPoints.Name(1, HookPoints.ResidMid), ones(32), tensor(2.0f), PositionMask.All))
        using (var after = Model.Hooks.Capture(names))
        {
            Model.Forward(ids).Dispose();
            foreach (var n in names)
            {
                var (layer, point) = HookPoints.Parse(n);
                var unchanged = layer < 1 || (layer == 1 && (point == HookPoints.ResidPre || point == HookPoints.AttnOut));
                var diff = TinyModels.MaxAbsDiff(baseline[n], after[n]);
                Assert.True(unchanged ? diff == 0 : diff > 1e-3, $"{n}: diff {diff}");
            }
        }
        Assert.Equal(0, Model.Hooks.Count);
    }

    [Fact]
    public void HooksDetachWhenTheForwardThrows()
    {
        using var _ = no_grad();
        var ids = Ids(TinyModels.RandomIds(5, Vocab, 2));
        Assert.Throws<InvalidOperationException>(() =>
        {
            using var scope = Model.Hooks.Add(HookPoints.ResidPostOf(0), (x, _) => throw new InvalidOperationException("boom"));
            Model.Forward(ids);
        });
        Assert.Equal(0, Model.Hooks.Count);
        Model.Forward(ids).Dispose();
    }

    [Fact]
    public void CaptureAtColumnsGathersTheRightPositionsUnderPadding()
    {
        using var _ = no_grad();
        var rows = new[] { TinyModels.RandomIds(6, Vocab, 1), TinyModels.RandomIds(3, Vocab, 2) };
        using var batch = TokenBatch.LeftPad(rows.Select(r => (IReadOnlyList<int>)r.Select(x => (int)x).ToList()).ToList());
        var name = HookPoints.ResidPostOf(2);
        var cols = tensor(new[] { batch.Column(0, 4), batch.Column(1, 1) });
        using var gathered = Model.Hooks.Capture([name], cols);
        using var full = Model.Hooks.Capture([name]);
        Model.Forward(batch.Ids, batch.AttentionMask).Dispose();
        Assert.Equal(new long[] { 2, 32 }, gathered[name].shape);
        Assert.Equal(0.0, TinyModels.MaxAbsDiff(gathered[name][0], full[name][0, batch.Column(0, 4)]));
        Assert.Equal(0.0, TinyModels.MaxAbsDiff(gathered[name][1], full[name][1, batch.Column(1, 1)]));
    }
}
