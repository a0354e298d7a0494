using Caa.Interpret.Analysis;
using Caa.Model.Runtime;
using FsCheck;
using FsCheck.Xunit;
using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace Caa.Tests.Analysis;

public class PcaTests
{
    public PcaTests() => TorchRuntime.Initialize();

    static Tensor Random(int seed, long n, long h, ScalarType dtype = ScalarType.Float32) =>
        randn(new[] { n, h }, dtype: dtype, generator: new TorchSharp.torch.Generator((ulong)seed));

    [Property(MaxTest = 30)]
    public bool ComponentsAreOrthonormalAndVarianceOrdered(PositiveInt seed, PositiveInt rows, PositiveInt cols, bool three)
    {
        using var scope = NewDisposeScope();
        var n = 4 + rows.Get % 40; var h = 3 + cols.Get % 50; var k = three ? 3 : 2;
        // Anisotropic data so the variances differ.
        var x = Random(seed.Get, n, h) * linspace(3, 0.1, h);
        var r = Pca.Fit(x, k);
        for (var i = 0; i < k; i++)
            for (var j = 0; j < k; j++)
            {
                double dot = 0;
                for (var c = 0; c < h; c++) dot += r.Components[i, c] * r.Components[j, c];
                if (Math.Abs(dot - (i == j ? 1 : 0)) > 1e-9) return false;
            }
        for (var i = 1; i < k; i++) if (r.ExplainedVariance[i] > r.ExplainedVariance[i - 1] + 1e-12) return false;
        return r.ExplainedVarianceRatio.All(v => v >= 0 && v <= 1) && r.ExplainedVarianceRatio.Sum() <= 1 + 1e-12;
    }

    [Property(MaxTest = 30)]
    public bool SignConventionLargestLoadingPositiveAndProjectionsMatchComponents(PositiveInt seed)
    {
        using var scope = NewDisposeScope();
        var x = Random(seed.Get, 20, 8, ScalarType.Float64);
        var r = Pca.Fit(x, 3);
        for (var i = 0; i < 3; i++)
        {
            var row = Enumerable.Range(0, 8).Select(c => r.Components[i, c]).ToArray();
            var maxAbs = row.Select(Math.Abs).Max();
            if (row.First(v => Math.Abs(v) == maxAbs) <= 0) return false;
        }
        // Projections = (x − mean)·Cᵀ, same through Project(); the same data negated flips nothing but the data's sign.
        var p = r.Project(x).data<double>().ToArray();
        for (var i = 0; i < 20; i++) for (var c = 0; c < 3; c++) if (Math.Abs(p[i * 3 + c] - r.Projections[i, c]) > 1e-9) return false;
        // Invariant to a constant shift of the data.
        var shifted = Pca.Fit(x + 5, 3);
        for (var i = 0; i < 20; i++) for (var c = 0; c < 3; c++) if (Math.Abs(shifted.Projections[i, c] - r.Projections[i, c]) > 1e-8) return false;
        return true;
    }

    [Fact]
    public void MatchesPowerIterationOnCovarianceInDouble()
    {
        // A small fixed matrix; reference: power iteration with deflation on the covariance, written out by hand.
        double[,] data =
        {
            { 2.5, 2.4, 0.5, 1.0 }, { 0.5, 0.7, 1.5, -0.3 }, { 2.2, 2.9, 0.1, 0.8 }, { 1.9, 2.2, 0.9, 0.4 },
            { 3.1, 3.0, -0.2, 1.6 }, { 2.3, 2.7, 0.3, 0.9 }, { 2.0, 1.6, 1.1, 0.2 }, { 1.0, 1.1, 1.4, -0.5 },
            { 1.5, 1.6, 0.8, 0.1 }, { 1.1, 0.9, 1.9, -0.2 },
        };
        int n = data.GetLength(0), h = data.GetLength(1);
        var mean = new double[h];
        for (var c = 0; c < h; c++) { for (var i = 0; i < n; i++) mean[c] += data[i, c]; mean[c] /= n; }
        var cov = new double[h, h];
        for (var a = 0; a < h; a++) for (var b = 0; b < h; b++) { for (var i = 0; i < n; i++) cov[a, b] += (data[i, a] - mean[a]) * (data[i, b] - mean[b]); cov[a, b] /= n - 1; }
        var total = Enumerable.Range(0, h).Sum(c => cov[c, c]);
        var refVecs = new double[3][]; var refVals = new double[3];
        var m = (double[,])cov.Clone();
        for (var k = 0; k < 3; k++)
        {
            var v = Enumerable.Range(0, h).Select(i => 1.0 + 0.1 * i).ToArray();
            for (var it = 0; it < 5000; it++)
            {
                var w = new double[h];
                for (var a = 0; a < h; a++) for (var b = 0; b < h; b++) w[a] += m[a, b] * v[b];
                var norm = Math.Sqrt(w.Sum(x => x * x));
                v = w.Select(x => x / norm).ToArray();
            }
            double lambda = 0;
            for (var a = 0; a < h; a++) for (var b = 0; b < h; b++) lambda += v[a] * m[a, b] * v[b];
            var big = v.Select(Math.Abs).Max();
            if (v.First(x => Math.Abs(x) == big) < 0) v = v.Select(x => -x).ToArray();
            refVecs[k] = v; refVals[k] = lambda;
            for (var a = 0; a < h; a++) for (var b = 0; b < h; b++) m[a, b] -= lambda * v[a] * v[b];
        }

        var r = Pca.Fit(tensor(data), 3);
        for (var k = 0; k < 3; k++)
        {
            Assert.Equal(refVals[k], r.ExplainedVariance[k], 9);
            Assert.Equal(refVals[k] / total, r.ExplainedVarianceRatio[k], 9);
            for (var c = 0; c < h; c++) Assert.Equal(refVecs[k][c], r.Components[k, c], 7);
            for (var i = 0; i < n; i++)
            {
                var proj = Enumerable.Range(0, h).Sum(c => (data[i, c] - mean[c]) * refVecs[k][c]);
                Assert.Equal(proj, r.Projections[i, k], 7);
            }
        }
        Assert.Equal(total, r.TotalVariance, 9);
    }

    [Theory]
    [InlineData(30, 50)] // N ≤ H: the N×N Gram route
    [InlineData(50, 30)] // N > H: the H×H scatter route
    public void AgreesWithSvdOfCentredData(int n, int h)
    {
        using var scope = NewDisposeScope();
        var x = Random(11, n, h, ScalarType.Float64) * linspace(2, 0.5, h, dtype: ScalarType.Float64);
        var r = Pca.Fit(x, 3);
        var (_, sv, vh) = linalg.svd(x - x.mean([0L]), fullMatrices: false);
        for (var k = 0; k < 3; k++)
        {
            Assert.Equal(sv[k].item<double>(), r.SingularValues[k], 9);
            var v = vh[k].data<double>().ToArray();
            var big = v.Select(Math.Abs).Max();
            var sign = v.First(e => Math.Abs(e) == big) < 0 ? -1 : 1;
            for (var c = 0; c < h; c++) Assert.Equal(sign * v[c], r.Components[k, c], 9);
        }
    }

    [Property(MaxTest = 15)]
    public bool PlantedClustersSeparateAndIsotropicNoiseDoesNot(PositiveInt seed)
    {
        using var scope = NewDisposeScope();
        const int n = 120, h = 64;
        var g = new TorchSharp.torch.Generator((ulong)seed.Get);
        var labels = Enumerable.Range(0, n).Select(i => i % 2 == 0).ToArray();
        var direction = randn(new long[] { h }, generator: g);
        direction /= direction.norm();
        var sign = tensor(labels.Select(b => b ? 1f : -1f).ToArray()).unsqueeze(1);
        var noise = randn(new long[] { n, h }, generator: g);
        var clustered = Pca.Fit(noise + sign * direction * 8, 2);
        var plain = Pca.Fit(noise, 2);
        var s1 = Separation.Score(clustered, "cluster", labels);
        var s0 = Separation.Score(plain, "cluster", labels);
        return s1.Silhouette > 0.6 && s1.BetweenTotalRatio > 0.8 && Math.Abs(s0.Silhouette) < 0.15 && s0.BetweenTotalRatio < 0.15
               && s1.Silhouette > Separation.ClusteredSilhouette && s0.Silhouette < Separation.ClusteredSilhouette;
    }

    [Fact]
    public void SilhouetteOfKnownPoints()
    {
        // Two groups on a line: {0, 1} and {10, 11}. For x=0: a = 1, b = mean(10, 11) = 10.5 → s = 9.5/10.5.
        double[,] p = { { 0 }, { 1 }, { 10 }, { 11 } };
        var labels = new[] { "a", "a", "b", "b" };
        var expected = (9.5 / 10.5 + 8.5 / 9.5 + 8.5 / 9.5 + 9.5 / 10.5) / 4;
        Assert.Equal(expected, Separation.Silhouette(p, labels), 12);
        // Between SS: 4 · 5² = 100 about the mean 5.5 … group means 0.5 and 10.5 → 2·25 + 2·25 = 100; total = 2(5.5² + 4.5²) = 101.
        Assert.Equal(100.0 / 101.0, Separation.BetweenTotalRatio(p, labels), 12);
        Assert.True(double.IsNaN(Separation.Silhouette(p, new[] { 1, 1, 1, 1 })));
    }

    [Fact]
    public void PerLayerAndDataFrames()
    {
        using var scope = NewDisposeScope();
        var byLayer = new Dictionary<int, Tensor> { [3] = Random(1, 10, 6), [1] = Random(2, 10, 6, ScalarType.Float64), [2] = Random(3, 10, 6).to(ScalarType.BFloat16) };
        var per = Pca.PerLayer(byLayer, 2);
        Assert.Equal(new[] { 1, 2, 3 }, per.Keys);
        var match = new BooleanDataFrameColumn("behavior_match", Enumerable.Range(0, 10).Select(i => i % 2 == 0));
        var letter = new StringDataFrameColumn("letter", Enumerable.Range(0, 10).Select(i => i % 3 == 0 ? "A" : "B"));
        var df = Pca.ToDataFrame(per, match, letter);
        Assert.Equal(new[] { "layer", "item", "pc1", "pc2", "behavior_match", "letter" }, df.Columns.Select(c => c.Name));
        Assert.Equal(30, df.Rows.Count);
        Assert.Equal(2, df["layer"][10]);
        Assert.Equal(0, df["item"][10]);
        Assert.Equal(true, df["behavior_match"][10]);
        Assert.Equal("A", df["letter"][13]);
        Assert.Equal(per[2].Projections[3, 1], (double)df["pc2"][13]);
        var single = per[1].ToDataFrame(letter);
        Assert.Equal(new[] { "item", "pc1", "pc2", "letter" }, single.Columns.Select(c => c.Name));

        var sep = Separation.PerLayer(per, [match, letter]);
        Assert.Equal(6, sep.Rows.Count);
        Assert.Equal(new[] { "layer", "label", "groups", "silhouette", "between_total_ratio" }, sep.Columns.Select(c => c.Name));

        Assert.Throws<ArgumentException>(() => per[1].ToDataFrame(new BooleanDataFrameColumn("x", new[] { true })));
        Assert.Throws<ArgumentException>(() => Pca.Fit(zeros(1, 5)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pca.Fit(zeros(3, 5), 3));
        Assert.Throws<ArgumentException>(() => Pca.Fit(full(4, 3, double.NaN)));
    }
}
