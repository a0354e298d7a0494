using Caa.Interpret.Steering;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Tests.Infrastructure;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace Caa.Tests.Vectors;

/// <summary>Invariants of <see cref="Steer"/> on a small random model (no tokenizer needed: start columns are given).</summary>
public class SteeringProperties
{
    readonly LlamaForCausalLM _model = TinyModels.Create(seed: 11);
    const int Vocab = 61, Hidden = 32, Layers = 3;

    static Tensor Ids(int seed, int length = 9) => tensor(TinyModels.RandomIds(length, Vocab, seed)).unsqueeze(0);
    static Tensor Vector(int seed) => randn(new long[] { Hidden }, generator: new TorchSharp.torch.Generator((ulong)seed));

    [Property(MaxTest = 20)]
    public bool MultiplierZeroEqualsNoHookExactly(PositiveInt seed, NonNegativeInt layer, NonNegativeInt start)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = Ids(seed.Get);
        var plain = _model.Forward(ids);
        using (Steer.Apply(_model, Vector(seed.Get) * 50, layer.Get % Layers, 0.0, [start.Get % 12 - 1]))
        {
            var steered = _model.Forward(ids);
            return steered.eq(plain).all().item<bool>() && _model.Hooks.Count == 1;
        }
    }

    [Property(MaxTest = 20)]
    public bool PlusVThenMinusVAtTheSameLayerCancels(PositiveInt seed, NonNegativeInt layer, NormalFloat multiplier)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = Ids(seed.Get);
        var v = Vector(seed.Get + 1);
        var m = Math.Clamp(multiplier.Get, -4, 4);
        var l = layer.Get % Layers;
        var plain = _model.Forward(ids);
        using (Steer.Apply(_model, [new SteeringTerm(l, v, m), new SteeringTerm(l, v, -m)], [-1]))
        {
            var steered = _model.Forward(ids);
            return TinyModels.MaxAbsDiff(steered, plain) <= 1e-5;
        }
    }

    [Property(MaxTest = 20)]
    public bool SteeringChangesNothingBeforeTheStartColumn(PositiveInt seed, NonNegativeInt layer, PositiveInt start)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = Ids(seed.Get, 10);
        var s = 1 + start.Get % 9;
        var plain = _model.Forward(ids);
        using (Steer.Apply(_model, Vector(seed.Get) * 10, layer.Get % Layers, 3.0, [s]))
        {
            var steered = _model.Forward(ids);
            return steered[.., ..s].eq(plain[.., ..s]).all().item<bool>()
                && TinyModels.MaxAbsDiff(steered[.., s..], plain[.., s..]) > 1e-3;
        }
    }

    [Fact]
    public void PerRowMultipliersEqualEachRowSteeredAlone()
    {
        using var _ = no_grad();
        var rows = new[] { TinyModels.RandomIds(9, Vocab, 1), TinyModels.RandomIds(5, Vocab, 2), TinyModels.RandomIds(7, Vocab, 3) };
        using var batch = TokenBatch.LeftPad(rows.Select(r => (IReadOnlyList<int>)r.Select(x => (int)x).ToList()).ToList());
        var multipliers = new[] { 2.0, -1.5, 0.0 };
        var startInRow = new[] { 3, 1, 6 };
        var v = Vector(4) * 5;
        var starts = startInRow.Select((p, b) => batch.Column(b, p)).ToArray();
        Tensor batched;
        using (Steer.Apply(_model, v, 1, multipliers, starts)) batched = _model.Forward(batch.Ids, batch.AttentionMask);
        for (var b = 0; b < rows.Length; b++)
        {
            using var alone = Steer.Apply(_model, v, 1, multipliers[b], [startInRow[b]]);
            using var expected = _model.Forward(tensor(rows[b]).unsqueeze(0));
            var diff = TinyModels.MaxAbsDiff(batched[b, (int)batch.Padding[b]..], expected[0]);
            Assert.True(diff < 1e-4, $"row {b}: {diff:g3}");
        }
        Assert.Equal(0, _model.Hooks.Count);
    }

    [Fact]
    public void SeveralLayersAtOnceEqualNestedSingleApplications()
    {
        using var _ = no_grad();
        var ids = Ids(3);
        var (v0, v2) = (Vector(5), Vector(6));
        Tensor together, nested;
        using (Steer.Apply(_model, [new SteeringTerm(0, v0, 1.5), new SteeringTerm(2, v2, [-2.0])], [4]))
        {
            Assert.Equal(2, _model.Hooks.Count);
            together = _model.Forward(ids);
        }
        using (Steer.Apply(_model, v0, 0, 1.5, [4]))
        using (Steer.Apply(_model, v2, 2, -2.0, [4])) nested = _model.Forward(ids);
        Assert.Equal(0.0, TinyModels.MaxAbsDiff(together, nested));
        Assert.Equal(0, _model.Hooks.Count);
    }

    [Fact]
    public void BadTermsAreRefusedBeforeAnyHookIsAttached()
    {
        var v = Vector(1);
        Assert.Contains("outside the model's blocks 0…2", Assert.Throws<ArgumentException>(() => Steer.Apply(_model, [new SteeringTerm(0, v, 1), new SteeringTerm(3, v, 1)], [-1])).Message);
        Assert.Contains("hidden size is 32", Assert.Throws<ArgumentException>(() => Steer.Apply(_model, ones(16), 0, 1.0, [-1])).Message);
        Assert.Contains("3 multipliers for 2 rows", Assert.Throws<ArgumentException>(() => Steer.Apply(_model, v, 0, [1.0, 2.0, 3.0], [-1, -1])).Message);
        Assert.Equal(0, _model.Hooks.Count);
    }

    [Fact]
    public void TheScopeDetachesWhenTheForwardThrows()
    {
        using var _ = no_grad();
        Assert.ThrowsAny<Exception>(() =>
        {
            using var steer = Steer.Apply(_model, Vector(1), 0, 1.0, [-1, -1]); // two start columns for a one-row batch
            _model.Forward(Ids(1));
        });
        Assert.Equal(0, _model.Hooks.Count);
    }
}
