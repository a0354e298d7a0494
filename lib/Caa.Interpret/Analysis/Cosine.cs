using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace Caa.Interpret.Analysis;

/// <summary>
/// Cosine similarities between steering vectors (across layers of one behavior, or across behaviors at one layer)
/// and between a prompt's per-token activations and a vector. All arithmetic in float64; inputs may have any
/// floating dtype and device. A zero vector has no direction: its similarities are NaN.
/// </summary>
public static class Cosine
{
    /// <summary>cos(a, b) of two vectors with the same number of elements (flattened), in [−1, 1]; NaN if either is zero.</summary>
    public static double Similarity(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var m = Stack([a, b], nameof(a));
        return Gram(m)[0, 1];
    }

    /// <summary>Matrix over the given keyed vectors, in the order given.</summary>
    public static CosineMatrix<TKey> Matrix<TKey>(IEnumerable<KeyValuePair<TKey, Tensor>> vectors) where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(vectors);
        var list = vectors.ToList();
        if (list.Count == 0) throw new ArgumentException("no vectors", nameof(vectors));
        using var scope = NewDisposeScope();
        var m = Stack(list.Select(kv => kv.Value).ToList(), nameof(vectors));
        return new CosineMatrix<TKey>(list.Select(kv => kv.Key).ToArray(), Gram(m));
    }

    /// <summary>One behavior's vectors by layer ([H] each) → layer × layer matrix, ascending layer.</summary>
    public static CosineMatrix<int> AcrossLayers(IReadOnlyDictionary<int, Tensor> vectorsByLayer) =>
        Matrix(vectorsByLayer.OrderBy(kv => kv.Key));

    /// <summary>Several behaviors' vectors at one layer ([H] each) → behavior × behavior matrix, in the order given.</summary>
    public static CosineMatrix<string> AcrossBehaviors(IEnumerable<KeyValuePair<string, Tensor>> vectorsByBehavior) =>
        Matrix(vectorsByBehavior);

    /// <summary>
    /// cos(activation at each token, vector): <paramref name="activations"/> [T, H] (one prompt at one layer),
    /// <paramref name="vector"/> [H]; <paramref name="tokens"/> (T strings, e.g. tokenizer pieces) label the positions.
    /// </summary>
    public static PerTokenCosine PerToken(Tensor activations, Tensor vector, IReadOnlyList<string>? tokens = null)
    {
        ArgumentNullException.ThrowIfNull(activations);
        ArgumentNullException.ThrowIfNull(vector);
        if (activations.dim() != 2) throw new ArgumentException($"expected activations [T, H]; got [{string.Join(", ", activations.shape)}]", nameof(activations));
        var t = (int)activations.shape[0];
        var h = activations.shape[1];
        if (vector.numel() != h) throw new ArgumentException($"vector has {vector.numel()} elements; activations have H = {h}", nameof(vector));
        if (tokens is not null && tokens.Count != t) throw new ArgumentException($"{tokens.Count} token strings for {t} positions", nameof(tokens));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var a = activations.detach().to(ScalarType.Float64).cpu();
        var v = vector.detach().to(ScalarType.Float64).cpu().reshape(h);
        var dots = a.matmul(v).data<double>().ToArray();
        var an = a.norm(1).data<double>().ToArray();
        var vn = v.norm().item<double>();
        var values = new double[t];
        for (var i = 0; i < t; i++) values[i] = an[i] > 0 && vn > 0 ? Math.Clamp(dots[i] / (an[i] * vn), -1, 1) : double.NaN;
        return new PerTokenCosine(tokens?.ToArray() ?? Enumerable.Range(0, t).Select(i => i.ToString()).ToArray(), values);
    }

    static Tensor Stack(IReadOnlyList<Tensor> vectors, string param)
    {
        var h = vectors[0].numel();
        for (var i = 0; i < vectors.Count; i++)
            if (vectors[i].numel() != h) throw new ArgumentException($"vector {i} has {vectors[i].numel()} elements; vector 0 has {h}", param);
        return stack(vectors.Select(v => v.detach().to(ScalarType.Float64).cpu().reshape(h)).ToArray());
    }

    /// <summary>Symmetric cosine matrix of the rows of <paramref name="m"/> [K, H]; diagonal exactly 1 for non-zero rows.</summary>
    static double[,] Gram(Tensor m)
    {
        using var _ = no_grad();
        var k = (int)m.shape[0];
        var norms = m.norm(1).data<double>().ToArray();
        var g = Pca.ToArray2D(m.matmul(m.t()));
        var r = new double[k, k];
        for (var i = 0; i < k; i++)
            for (var j = i; j < k; j++)
            {
                var v = norms[i] > 0 && norms[j] > 0 ? (i == j ? 1.0 : Math.Clamp(g[i, j] / (norms[i] * norms[j]), -1, 1)) : double.NaN;
                r[i, j] = r[j, i] = v;
            }
        return r;
    }
}

/// <summary>A symmetric cosine-similarity matrix with its row/column keys (layers or behavior names).</summary>
public sealed class CosineMatrix<TKey> where TKey : notnull
{
    internal CosineMatrix(TKey[] keys, double[,] values) { Keys = keys; Values = values; }

    /// <summary>Row/column keys, in matrix order.</summary>
    public IReadOnlyList<TKey> Keys { get; }

    /// <summary>[K, K] values for heatmaps (row i, column j = cos(Keys[i], Keys[j])).</summary>
    public double[,] Values { get; }

    /// <summary>cos between two keys.</summary>
    public double this[TKey a, TKey b] => Values[IndexOf(a), IndexOf(b)];

    int IndexOf(TKey key)
    {
        for (var i = 0; i < Keys.Count; i++) if (EqualityComparer<TKey>.Default.Equals(Keys[i], key)) return i;
        throw new KeyNotFoundException($"no vector '{key}'");
    }

    /// <summary>
    /// Long (tidy) table with all K² ordered pairs: <c>a, b, cosine</c> (a-major). Key columns are Int32 for int keys,
    /// String otherwise.
    /// </summary>
    public DataFrame ToDataFrame(string aName = "a", string bName = "b")
    {
        var k = Keys.Count;
        var pairs = from i in Enumerable.Range(0, k) from j in Enumerable.Range(0, k) select (i, j);
        var list = pairs.ToList();
        DataFrameColumn KeyColumn(string name, Func<(int i, int j), int> pick) => Keys is IReadOnlyList<int> ints
            ? new Int32DataFrameColumn(name, list.Select(p => ints[pick(p)]))
            : new StringDataFrameColumn(name, list.Select(p => Keys[pick(p)].ToString()));
        return new DataFrame(KeyColumn(aName, p => p.i), KeyColumn(bName, p => p.j),
            new DoubleDataFrameColumn("cosine", list.Select(p => Values[p.i, p.j])));
    }
}

/// <summary>Per-token cosine similarities of one prompt with a vector.</summary>
public sealed record PerTokenCosine(IReadOnlyList<string> Tokens, IReadOnlyList<double> Values)
{
    /// <summary>Table <c>position, token, cosine</c>.</summary>
    public DataFrame ToDataFrame() => new(
        new Int32DataFrameColumn("position", Enumerable.Range(0, Tokens.Count)),
        new StringDataFrameColumn("token", Tokens),
        new DoubleDataFrameColumn("cosine", Values));
}
