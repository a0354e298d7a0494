using Caa.Interpret.Vectors;
using Caa.Tests.Infrastructure;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace Caa.Tests.Vectors;

/// <summary>Properties of the pure vector math: the mean difference and the cross-behavior normalization.</summary>
public class VectorMathProperties
{
    static Tensor Randn(int seed, params long[] shape) => randn(shape, generator: new TorchSharp.torch.Generator((ulong)seed));

    [Property(MaxTest = 50)]
    public bool MeanDifferenceIsLinearInTheActivations(PositiveInt seed, PositiveInt items, NormalFloat a, NormalFloat b)
    {
        using var _ = NewDisposeScope();
        var n = 1 + items.Get % 20;
        double ca = Math.Clamp(a.Get, -100, 100), cb = Math.Clamp(b.Get, -100, 100);
        var (x, xn, y, yn) = (Randn(seed.Get, n, 16), Randn(seed.Get + 1, n, 16), Randn(seed.Get + 2, n, 16), Randn(seed.Get + 3, n, 16));
        var combined = VectorExtractor.MeanDifference(x.to(ScalarType.Float64) * ca + y.to(ScalarType.Float64) * cb, xn.to(ScalarType.Float64) * ca + yn.to(ScalarType.Float64) * cb);
        var separate = VectorExtractor.MeanDifference(x, xn).to(ScalarType.Float64) * ca + VectorExtractor.MeanDifference(y, yn).to(ScalarType.Float64) * cb;
        var scale = 1 + Math.Abs(ca) + Math.Abs(cb);
        return combined.dtype == ScalarType.Float32 && combined.shape.SequenceEqual([16L]) && TinyModels.MaxAbsDiff(combined, separate) <= 1e-5 * scale;
    }

    [Property(MaxTest = 50)]
    public bool SwappingMatchingAndNotMatchingNegatesExactly(PositiveInt seed, PositiveInt items)
    {
        using var _ = NewDisposeScope();
        var n = 1 + items.Get % 20;
        var (m, o) = (Randn(seed.Get, n, 8), Randn(seed.Get + 1, n, 8));
        return VectorExtractor.MeanDifference(o, m).eq(-VectorExtractor.MeanDifference(m, o)).all().item<bool>();
    }

    [Fact]
    public void MeanDifferenceOfAKnownExample()
    {
        using var m = tensor(new float[] { 1, 2, 3, 5, 7, 9 }).view(2, 3);
        using var o = tensor(new float[] { 0, 0, 1, 1, 1, 1 }).view(2, 3);
        Assert.Equal([2.5f, 4f, 5f], VectorExtractor.MeanDifference(m, o).data<float>().ToArray());
        Assert.Equal([2.5f, 4f, 5f], VectorExtractor.MeanDifference(m.to(ScalarType.BFloat16), o.to(ScalarType.BFloat16)).data<float>().ToArray());
        Assert.Throws<ArgumentException>(() => VectorExtractor.MeanDifference(m, o[..1]));
    }

    static VectorMetadata Meta(string behavior, int hidden = 16) => new()
    {
        Behavior = behavior, ModelSource = "in-memory", ArchitectureHash = "abc", HiddenSize = hidden, DatasetSha256 = "00", Items = 1,
    };

    /// <summary>Random sets: k behaviors × the same layers, each vector with its own scale.</summary>
    static List<SteeringVectorSet> RandomSets(int seed, int behaviors, int[] layers)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, behaviors).Select(b =>
        {
            var vectors = layers.ToDictionary(l => l, l => Randn(seed * 31 + b * 7 + l, 16) * (0.01 + 10 * rng.NextDouble()));
            return new SteeringVectorSet(Meta($"b{b}"), vectors);
        }).ToList();
    }

    [Property(MaxTest = 30)]
    public bool NormalizationKeepsDirectionsAndEqualizesNormsToTheMeanPerLayer(PositiveInt seed, PositiveInt behaviors)
    {
        using var _ = NewDisposeScope();
        var layers = new[] { 0, 2, 5 };
        var sets = RandomSets(seed.Get, 1 + behaviors.Get % 6, layers);
        var normalized = VectorNormalization.AcrossBehaviors(sets);
        foreach (var layer in layers)
        {
            var mean = sets.Average(s => s.Norm(layer));
            for (var i = 0; i < sets.Count; i++)
            {
                var (before, after) = (sets[i][layer].to(ScalarType.Float64), normalized[i][layer].to(ScalarType.Float64));
                var cosine = (before * after).sum().item<double>() / (before.norm().item<double>() * after.norm().item<double>());
                if (Math.Abs(cosine - 1) > 1e-6) return false;
                if (Math.Abs(normalized[i].Norm(layer) - mean) > 1e-5 * mean) return false;
            }
        }
        var again = VectorNormalization.AcrossBehaviors(normalized);
        var idempotent = layers.All(l => normalized.Zip(again).All(p => TinyModels.MaxAbsDiff(p.First[l], p.Second[l]) <= 1e-5 * p.First.Norm(l)));
        return idempotent
            && normalized.All(s => s.Metadata.Normalization == VectorNormalization.MeanNormAcrossBehaviors)
            && sets.All(s => s.Metadata.Normalization == VectorNormalization.None);
    }

    [Fact]
    public void NormalizationIsPerLayerNotAcrossLayers()
    {
        using var a = new SteeringVectorSet(Meta("a"), new Dictionary<int, Tensor> { [0] = ones(16) * 1, [1] = ones(16) * 100 });
        using var b = new SteeringVectorSet(Meta("b"), new Dictionary<int, Tensor> { [0] = ones(16) * 3, [1] = ones(16) * 300 });
        var n = VectorNormalization.AcrossBehaviors([a, b]);
        Assert.Equal(2 * 4.0, n[0].Norm(0), 4);     // mean of norms 4 and 12 at layer 0
        Assert.Equal(200 * 4.0, n[1].Norm(1), 2);   // mean of norms 400 and 1200 at layer 1
    }

    [Fact]
    public void NormalizationRefusesMismatchedSets()
    {
        using var a = new SteeringVectorSet(Meta("a"), new Dictionary<int, Tensor> { [0] = ones(16) });
        using var a2 = new SteeringVectorSet(Meta("a"), new Dictionary<int, Tensor> { [0] = ones(16) });
        using var other = new SteeringVectorSet(Meta("c", hidden: 8), new Dictionary<int, Tensor> { [0] = ones(8) });
        using var moreLayers = new SteeringVectorSet(Meta("d"), new Dictionary<int, Tensor> { [0] = ones(16), [1] = ones(16) });
        Assert.Contains("two sets for behavior 'a'", Assert.Throws<ArgumentException>(() => VectorNormalization.AcrossBehaviors([a, a2])).Message);
        Assert.Contains("hidden size 8", Assert.Throws<ArgumentException>(() => VectorNormalization.AcrossBehaviors([a, other])).Message);
        Assert.Contains("same layers", Assert.Throws<ArgumentException>(() => VectorNormalization.AcrossBehaviors([a, moreLayers])).Message);
        Assert.Throws<ArgumentException>(() => VectorNormalization.AcrossBehaviors([]));
    }
}
