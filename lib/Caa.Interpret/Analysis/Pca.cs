using Microsoft.Data.Analysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Interpret.Analysis;

/// <summary>
/// Principal component analysis of activations (rows = items, columns = hidden units), as in the paper's PCA
/// figures: project answer-letter activations onto the top 2–3 principal components and look for clusters.
/// </summary>
/// <remarks>
/// <para><b>Method.</b> The data are converted to float64 on their own device and centred (column means subtracted).
/// The decomposition is a symmetric eigendecomposition (<c>torch.linalg.eigh</c>) of the smaller of the two Gram
/// matrices: Xc·Xcᵀ [N, N] when N ≤ H (the usual case: a few hundred to a few thousand answer tokens, H = 4096/5120),
/// else the scatter matrix Xcᵀ·Xc [H, H]. For the N×N route the components are Xcᵀuᵢ, normalized. The eigenvalues are
/// the squared singular values Sᵢ², explained variance is Sᵢ²/(N−1) and projections are Xc·Cᵀ.
/// Why not <c>torch.linalg.svd</c> of Xc: it gives the same result but measured ~26 s for [1000, 4096] on this
/// project's 2-core CPU (LAPACK gesdd computes all min(N,H) singular triplets), against well under a second for the
/// Gram route, and a PCA per layer runs 32–40 of them. Forming the Gram matrix squares the condition number, which in
/// float64 only costs accuracy in components whose variance is below ~1e−8 of the first — irrelevant for the 2–3
/// leading components used here (the tests check against an independent power iteration to 1e−7).</para>
/// <para><b>Sign convention.</b> An SVD fixes each component only up to sign. Each component is flipped so that
/// its loading of largest absolute value is positive (the first such index on ties), which makes results
/// reproducible across devices, LAPACK builds and runs.</para>
/// <para><b>Explained-variance ratio</b> is variance of the component / total variance (the squared Frobenius norm
/// of Xc over N−1, i.e. the sum over all components), so the k ratios lie in [0,1] and sum to at most 1.</para>
/// </remarks>
public static class Pca
{
    /// <summary>PCA of <paramref name="activations"/> [N, H] (float32/float64/bf16/f16, any device).</summary>
    /// <param name="activations">N ≥ 2 rows.</param>
    /// <param name="components">Components to keep, 1…min(N−1, H) (2 or 3 for plots).</param>
    /// <exception cref="ArgumentException">Not 2-D, fewer than 2 rows, or <paramref name="components"/> out of range, or non-finite values.</exception>
    public static PcaResult Fit(Tensor activations, int components = 2)
    {
        ArgumentNullException.ThrowIfNull(activations);
        if (activations.dim() != 2) throw new ArgumentException($"PCA expects activations [N, H]; got shape [{string.Join(", ", activations.shape)}]", nameof(activations));
        var n = (int)activations.shape[0];
        var h = (int)activations.shape[1];
        if (n < 2) throw new ArgumentException($"PCA needs at least 2 rows; got {n}", nameof(activations));
        var maxK = Math.Min(n - 1, h);
        if (components < 1 || components > maxK) throw new ArgumentOutOfRangeException(nameof(components), components, $"components must be in 1…{maxK} for [{n}, {h}] data");

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = activations.detach().to(ScalarType.Float64);
        if (!x.isfinite().all().item<bool>()) throw new ArgumentException("activations contain NaN or infinite values", nameof(activations));
        var mean = x.mean([0L]);
        var xc = x - mean;
        Tensor comps, lambdas;
        if (n <= h)
        {
            var (vals, u) = linalg.eigh(xc.matmul(xc.t()));             // ascending
            var top = arange(n - 1, n - 1 - components, -1, device: x.device);
            lambdas = vals.index_select(0, top);
            comps = xc.t().matmul(u.index_select(1, top)).t();          // [k, H], rows ∝ Sᵢ·vᵢ
            comps = comps / comps.norm(1, keepdim: true).clamp_min(1e-300);
        }
        else
        {
            var (vals, v) = linalg.eigh(xc.t().matmul(xc));
            var top = arange(h - 1, h - 1 - components, -1, device: x.device);
            lambdas = vals.index_select(0, top);
            comps = v.index_select(1, top).t().contiguous();           // [k, H]
        }
        // Sign convention: the largest-|loading| entry of each component is positive.
        var argmax = comps.abs().argmax(1, keepdim: true);              // [k, 1] (first index on ties)
        var sign = comps.gather(1, argmax).sign();                      // [k, 1]
        sign = where(sign.eq(0), ones_like(sign), sign);
        comps = comps * sign;
        var proj = xc.matmul(comps.t());                                // [N, k]
        var total = xc.square().sum().item<double>() / (n - 1);
        var eig = lambdas.clamp_min(0).cpu().data<double>().ToArray();
        var sv = eig.Select(Math.Sqrt).ToArray();
        var variance = eig.Select(v => v / (n - 1)).ToArray();
        var ratio = variance.Select(v => total > 0 ? Math.Clamp(v / total, 0, 1) : 0).ToArray();

        return new PcaResult(
            ToArray2D(comps.cpu()),
            ToArray2D(proj.cpu()),
            mean.cpu().data<double>().ToArray(),
            sv, variance, ratio, total);
    }

    /// <summary>PCA of each layer's activations independently (ascending layer order).</summary>
    public static SortedDictionary<int, PcaResult> PerLayer(IReadOnlyDictionary<int, Tensor> activationsByLayer, int components = 2)
    {
        ArgumentNullException.ThrowIfNull(activationsByLayer);
        var result = new SortedDictionary<int, PcaResult>();
        foreach (var (layer, acts) in activationsByLayer.OrderBy(kv => kv.Key))
        {
            try { result[layer] = Fit(acts, components); }
            catch (ArgumentException e) { throw new ArgumentException($"layer {layer}: {e.Message}", nameof(activationsByLayer), e); }
        }
        return result;
    }

    /// <summary>
    /// Long table over layers: <c>layer, item, pc1, pc2[, pc3], labels…</c> (every layer's N rows, ascending layer).
    /// Each label column must have N values (the same items at every layer).
    /// </summary>
    public static DataFrame ToDataFrame(IReadOnlyDictionary<int, PcaResult> perLayer, params DataFrameColumn[] labels)
    {
        ArgumentNullException.ThrowIfNull(perLayer);
        var frames = perLayer.OrderBy(kv => kv.Key).ToList();
        if (frames.Count == 0) throw new ArgumentException("no layers", nameof(perLayer));
        var k = frames.Min(f => f.Value.Count);
        var layerCol = new Int32DataFrameColumn("layer");
        var itemCol = new Int32DataFrameColumn("item");
        var pcs = Enumerable.Range(0, k).Select(i => new DoubleDataFrameColumn($"pc{i + 1}")).ToArray();
        foreach (var (layer, r) in frames)
        {
            PcaResult.CheckLabels(labels, r.Items);
            for (var i = 0; i < r.Items; i++)
            {
                layerCol.Append(layer);
                itemCol.Append(i);
                for (var c = 0; c < k; c++) pcs[c].Append(r.Projections[i, c]);
            }
        }
        // Labels repeat per layer: gather rows item 0…N−1 once per layer (Clone with map indices keeps the column type).
        var map = new Int64DataFrameColumn("map", frames.SelectMany(f => Enumerable.Range(0, f.Value.Items).Select(i => (long)i)));
        var labelCols = labels.Select(l => { var c = l.Clone(map); c.SetName(l.Name); return c; }).ToArray();
        return new DataFrame([layerCol, itemCol, .. pcs, .. labelCols]);
    }

    internal static double[,] ToArray2D(Tensor t)
    {
        var rows = (int)t.shape[0];
        var cols = (int)t.shape[1];
        var flat = t.contiguous().data<double>().ToArray();
        var a = new double[rows, cols];
        Buffer.BlockCopy(flat, 0, a, 0, flat.Length * sizeof(double));
        return a;
    }
}

/// <summary>Result of <see cref="Pca.Fit"/>: all values float64 on the CPU.</summary>
public sealed class PcaResult
{
    internal PcaResult(double[,] components, double[,] projections, double[] mean, double[] singularValues,
        double[] explainedVariance, double[] explainedVarianceRatio, double totalVariance)
    {
        Components = components;
        Projections = projections;
        Mean = mean;
        SingularValues = singularValues;
        ExplainedVariance = explainedVariance;
        ExplainedVarianceRatio = explainedVarianceRatio;
        TotalVariance = totalVariance;
    }

    /// <summary>Number of components k.</summary>
    public int Count => Components.GetLength(0);
    /// <summary>Number of items N.</summary>
    public int Items => Projections.GetLength(0);
    /// <summary>Number of features H.</summary>
    public int Features => Components.GetLength(1);
    /// <summary>[k, H] orthonormal rows, in decreasing variance; largest-|loading| entry of each row positive.</summary>
    public double[,] Components { get; }
    /// <summary>[N, k] coordinates of the centred items on the components.</summary>
    public double[,] Projections { get; }
    /// <summary>[H] column means subtracted before the decomposition.</summary>
    public double[] Mean { get; }
    /// <summary>[k] singular values of the centred data.</summary>
    public double[] SingularValues { get; }
    /// <summary>[k] variance along each component, S²/(N−1).</summary>
    public double[] ExplainedVariance { get; }
    /// <summary>[k] share of the total variance, each in [0,1], summing to ≤ 1.</summary>
    public double[] ExplainedVarianceRatio { get; }
    /// <summary>Total variance ‖Xc‖²_F/(N−1).</summary>
    public double TotalVariance { get; }

    /// <summary>Column <paramref name="component"/> (0-based) of <see cref="Projections"/>.</summary>
    public double[] Projection(int component) => Enumerable.Range(0, Items).Select(i => Projections[i, component]).ToArray();

    /// <summary>Projects new rows [M, H] onto the fitted components: (x − mean)·Cᵀ → float64 [M, k] on x's device.</summary>
    public Tensor Project(Tensor x)
    {
        if (x.dim() != 2 || x.shape[1] != Features) throw new ArgumentException($"expected [M, {Features}]; got [{string.Join(", ", x.shape)}]", nameof(x));
        using var scope = NewDisposeScope();
        var xd = x.to(ScalarType.Float64);
        var mean = tensor(Mean, ScalarType.Float64, xd.device);
        var comps = tensor(Components, ScalarType.Float64, xd.device);
        return (xd - mean).matmul(comps.t()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Table <c>item, pc1, pc2[, pc3], labels…</c> with one row per item. Label columns (e.g.
    /// <c>new BooleanDataFrameColumn("behavior_match", …)</c>, <c>new StringDataFrameColumn("letter", …)</c>) must have N rows; they are cloned.
    /// </summary>
    public DataFrame ToDataFrame(params DataFrameColumn[] labels)
    {
        CheckLabels(labels, Items);
        var cols = new List<DataFrameColumn> { new Int32DataFrameColumn("item", Enumerable.Range(0, Items)) };
        for (var c = 0; c < Count; c++) cols.Add(new DoubleDataFrameColumn($"pc{c + 1}", Projection(c)));
        cols.AddRange(labels.Select(l => l.Clone()));
        return new DataFrame(cols);
    }

    internal static void CheckLabels(DataFrameColumn[] labels, int n)
    {
        foreach (var l in labels)
            if (l.Length != n) throw new ArgumentException($"label column '{l.Name}' has {l.Length} values; expected one per item ({n})", nameof(labels));
        var dup = labels.GroupBy(l => l.Name).FirstOrDefault(g => g.Count() > 1 || g.Key is "item" or "layer" || g.Key.StartsWith("pc", StringComparison.Ordinal) && int.TryParse(g.Key[2..], out _));
        if (dup is not null) throw new ArgumentException($"label column name '{dup.Key}' is duplicated or reserved", nameof(labels));
    }
}
