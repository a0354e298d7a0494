using Caa.Interpret.Analysis;
using Caa.Model.Runtime;
using FsCheck;
using FsCheck.Xunit;
using static TorchSharp.torch;

namespace Caa.Tests.Analysis;

public class CosineAndTransferTests
{
    public CosineAndTransferTests() => TorchRuntime.Initialize();

    [Property(MaxTest = 40)]
    public bool MatrixIsSymmetricBoundedWithUnitDiagonal(PositiveInt seed, PositiveInt count, PositiveInt dim)
    {
        using var scope = NewDisposeScope();
        var g = new TorchSharp.torch.Generator((ulong)seed.Get);
        var k = 1 + count.Get % 8; var h = 1 + dim.Get % 40;
        var byLayer = Enumerable.Range(0, k).ToDictionary(i => i * 2, _ => randn(new long[] { h }, generator: g) * 100);
        var m = Cosine.AcrossLayers(byLayer);
        for (var i = 0; i < k; i++)
        {
            if (m.Values[i, i] != 1.0) return false;
            for (var j = 0; j < k; j++)
                if (m.Values[i, j] != m.Values[j, i] || m.Values[i, j] < -1 || m.Values[i, j] > 1) return false;
        }
        return m.Keys.SequenceEqual(byLayer.Keys.Order());
    }

    [Fact]
    public void KnownVectors()
    {
        Assert.Equal(0.0, Cosine.Similarity(tensor(new[] { 1f, 0f }), tensor(new[] { 0f, 3f })), 12);
        Assert.Equal(-1.0, Cosine.Similarity(tensor(new[] { 1.0, 2.0, 3.0 }), tensor(new[] { -2.0, -4.0, -6.0 })), 12);
        // (1,2,2)·(2,1,2) = 8, norms 3 and 3 → 8/9.
        Assert.Equal(8.0 / 9.0, Cosine.Similarity(tensor(new[] { 1f, 2f, 2f }), tensor(new[] { 2.0, 1.0, 2.0 })), 7);
        Assert.True(double.IsNaN(Cosine.Similarity(zeros(3), ones(3))));
        Assert.Throws<ArgumentException>(() => Cosine.Similarity(zeros(3), ones(4)));

        var m = Cosine.AcrossBehaviors([new("sycophancy", tensor(new[] { 1f, 0f })), new("refusal", tensor(new[] { 1f, 1f })), new("hallucination", tensor(new[] { 0f, -1f }))]);
        Assert.Equal(new[] { "sycophancy", "refusal", "hallucination" }, m.Keys);
        Assert.Equal(Math.Sqrt(0.5), m["sycophancy", "refusal"], 7);
        Assert.Equal(-Math.Sqrt(0.5), m["refusal", "hallucination"], 7);
        var df = m.ToDataFrame();
        Assert.Equal(new[] { "a", "b", "cosine" }, df.Columns.Select(c => c.Name));
        Assert.Equal(9, df.Rows.Count);
        Assert.Equal("refusal", df["b"][1]);
        Assert.Equal(m.Values[0, 1], (double)df["cosine"][1]);

        var layers = Cosine.AcrossLayers(new Dictionary<int, Tensor> { [5] = tensor(new[] { 1f, 0f }), [2] = tensor(new[] { 1f, 1f }) });
        var ldf = layers.ToDataFrame();
        Assert.Equal(2, ldf["a"][0]); // Int32 column, ascending layer
        Assert.Equal(5, ldf["b"][1]);
    }

    [Fact]
    public void PerTokenCosine()
    {
        var acts = tensor(new float[,] { { 1, 0 }, { 0, 1 }, { -1, 0 }, { 0, 0 }, { 3, 3 } });
        var r = Cosine.PerToken(acts, tensor(new[] { 2.0, 0.0 }), ["<s>", "▁I", "</s>", "x", "y"]);
        Assert.Equal(new[] { 1.0, 0.0, -1.0 }, r.Values.Take(3));
        Assert.True(double.IsNaN(r.Values[3]));
        Assert.Equal(Math.Sqrt(0.5), r.Values[4], 7);
        var df = r.ToDataFrame();
        Assert.Equal(new[] { "position", "token", "cosine" }, df.Columns.Select(c => c.Name));
        Assert.Equal("</s>", df["token"][2]);
        Assert.Throws<ArgumentException>(() => Cosine.PerToken(acts, ones(2), ["a"]));
    }

    [Fact]
    public void TransferGridCallsTheEvaluatorForEveryCell()
    {
        var vectors = new Dictionary<int, Tensor> { [13] = full(4, 13f), [5] = full(4, 5f) };
        var calls = new List<(float, int, double)>();
        var progress = new List<TransferProgress>();
        var df = Transfer.Run(vectors, [10, 13, 17], [-1.0, 0.0, 1.0], (v, layer, m) =>
        {
            calls.Add((v[0].item<float>(), layer, m));
            return 0.5 + m * layer / 100.0;
        }, new SyncProgress(progress.Add));
        Assert.Equal(new[] { "source_layer", "applied_layer", "multiplier", "p_match" }, df.Columns.Select(c => c.Name));
        Assert.Equal(18, df.Rows.Count);
        Assert.Equal(18, calls.Count);
        Assert.Equal(5, df["source_layer"][0]); // source-major ascending
        Assert.Equal(13, df["source_layer"][9]);
        Assert.Equal(17, df["applied_layer"][17]);
        Assert.Equal(1.0, df["multiplier"][17]);
        Assert.Equal(0.5 + 17 / 100.0, (double)df["p_match"][17], 12);
        Assert.All(calls, c => Assert.True(c.Item1 is 5f or 13f));
        Assert.Equal(6, progress.Count);
        Assert.Equal(new TransferProgress(6, 6, 13, 17), progress[^1]);

        var batched = 0;
        var rows = Transfer.Rows(vectors, [13], [-2.0, 2.0], (v, layer, ms) => { batched++; return ms.Select(m => m).ToArray(); });
        Assert.Equal(2, batched);
        Assert.Equal(-2.0, rows[0].PMatch);
        Assert.Throws<InvalidOperationException>(() => Transfer.Rows(vectors, [13], [1.0], (_, _, _) => Array.Empty<double>()));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => Transfer.Run(vectors, [1], [1.0], (_, _, _) => 0.0, cancellationToken: cts.Token));
    }

    sealed class SyncProgress(Action<TransferProgress> report) : IProgress<TransferProgress>
    {
        public void Report(TransferProgress value) => report(value);
    }
}
