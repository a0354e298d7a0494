using Microsoft.Data.Analysis;

namespace Caa.Interpret.Analysis;

/// <summary>
/// How well a label's groups separate in a PCA projection — a number for "letter clusters at every layer,
/// behavior clusters from about a third of the way in".
/// </summary>
/// <remarks>
/// Two scores, both on the first <c>dims</c> (default 2) PCA coordinates, i.e. on what the scatter plot shows:
/// <list type="bullet">
/// <item><b>Silhouette</b> (the primary score): mean over points of (b − a)/max(a, b), where a is the mean Euclidean
/// distance to the other members of the point's group and b the smallest mean distance to another group's members;
/// points alone in their group score 0. Range [−1, 1]: ≈ 0 for no structure (random labels, isotropic noise), ≥ 0.5
/// for clearly separated clusters, → 1 for tight distant clusters. O(N²·dims).</item>
/// <item><b>Between/total variance ratio</b> (η², the R² of a one-way ANOVA): Σ_g n_g‖μ_g − μ‖² / Σ_i ‖x_i − μ‖².
/// Range [0, 1]; ≈ (groups − 1)·dims/N for random labels; 1 when every group collapses to a point. Cheap and robust
/// when a group is itself made of several sub-clusters (e.g. letter A = matching and non-matching items).</item>
/// </list>
/// Labels are compared with <see cref="object.Equals(object?)"/>; null is its own group.
/// </remarks>
public static class Separation
{
    /// <summary>Default threshold used in reports: silhouette at or above this counts as "clusters present".</summary>
    public const double ClusteredSilhouette = 0.25;

    /// <summary>Mean silhouette of <paramref name="points"/> [N, d] (first <paramref name="dims"/> columns) grouped by <paramref name="labels"/>; NaN with fewer than 2 groups.</summary>
    public static double Silhouette<T>(double[,] points, IReadOnlyList<T> labels, int dims = int.MaxValue)
    {
        var (g, groups) = Groups(points, labels);
        var d = Math.Min(dims, points.GetLength(1));
        if (groups < 2) return double.NaN;
        var n = g.Length;
        var sizes = new int[groups];
        foreach (var x in g) sizes[x]++;
        var sums = new double[groups];
        double total = 0;
        for (var i = 0; i < n; i++)
        {
            Array.Clear(sums);
            for (var j = 0; j < n; j++)
            {
                if (j == i) continue;
                double s2 = 0;
                for (var c = 0; c < d; c++) { var diff = points[i, c] - points[j, c]; s2 += diff * diff; }
                sums[g[j]] += Math.Sqrt(s2);
            }
            if (sizes[g[i]] <= 1) continue; // singleton: s = 0
            var a = sums[g[i]] / (sizes[g[i]] - 1);
            var b = double.PositiveInfinity;
            for (var k = 0; k < groups; k++)
                if (k != g[i] && sizes[k] > 0) b = Math.Min(b, sums[k] / sizes[k]);
            var m = Math.Max(a, b);
            total += m > 0 ? (b - a) / m : 0;
        }
        return total / n;
    }

    /// <summary>Between-group / total sum of squares of <paramref name="points"/> [N, d] (first <paramref name="dims"/> columns); NaN with fewer than 2 groups or zero spread.</summary>
    public static double BetweenTotalRatio<T>(double[,] points, IReadOnlyList<T> labels, int dims = int.MaxValue)
    {
        var (g, groups) = Groups(points, labels);
        var d = Math.Min(dims, points.GetLength(1));
        if (groups < 2) return double.NaN;
        var n = g.Length;
        var mean = new double[d];
        var gm = new double[groups, d];
        var sizes = new int[groups];
        for (var i = 0; i < n; i++)
        {
            sizes[g[i]]++;
            for (var c = 0; c < d; c++) { mean[c] += points[i, c]; gm[g[i], c] += points[i, c]; }
        }
        for (var c = 0; c < d; c++) mean[c] /= n;
        double between = 0, totalSs = 0;
        for (var k = 0; k < groups; k++)
            for (var c = 0; c < d; c++)
            {
                var diff = gm[k, c] / sizes[k] - mean[c];
                between += sizes[k] * diff * diff;
            }
        for (var i = 0; i < n; i++)
            for (var c = 0; c < d; c++) { var diff = points[i, c] - mean[c]; totalSs += diff * diff; }
        return totalSs > 0 ? Math.Clamp(between / totalSs, 0, 1) : double.NaN;
    }

    /// <summary>Both scores of one label on a PCA result's first <paramref name="dims"/> components.</summary>
    public static SeparationScore Score<T>(PcaResult pca, string label, IReadOnlyList<T> labels, int dims = 2)
    {
        ArgumentNullException.ThrowIfNull(pca);
        var d = Math.Min(dims, pca.Count);
        return new SeparationScore(label, labels.Distinct().Count(), Silhouette(pca.Projections, labels, d), BetweenTotalRatio(pca.Projections, labels, d));
    }

    /// <summary>Scores of one label column (values compared with Equals).</summary>
    public static SeparationScore Score(PcaResult pca, DataFrameColumn labels, int dims = 2) =>
        Score(pca, labels.Name, Values(labels), dims);

    /// <summary>
    /// Table <c>layer, label, groups, silhouette, between_total_ratio</c>: every label column scored at every layer
    /// (ascending layer, then labels in the order given).
    /// </summary>
    public static DataFrame PerLayer(IReadOnlyDictionary<int, PcaResult> perLayer, IReadOnlyList<DataFrameColumn> labels, int dims = 2)
    {
        ArgumentNullException.ThrowIfNull(perLayer);
        var layer = new Int32DataFrameColumn("layer");
        var name = new StringDataFrameColumn("label");
        var groups = new Int32DataFrameColumn("groups");
        var sil = new DoubleDataFrameColumn("silhouette");
        var ratio = new DoubleDataFrameColumn("between_total_ratio");
        var values = labels.Select(Values).ToArray();
        foreach (var (l, r) in perLayer.OrderBy(kv => kv.Key))
            for (var i = 0; i < labels.Count; i++)
            {
                if (values[i].Count != r.Items) throw new ArgumentException($"label column '{labels[i].Name}' has {values[i].Count} values; layer {l} has {r.Items} items", nameof(labels));
                var s = Score(r, labels[i].Name, values[i], dims);
                layer.Append(l); name.Append(s.Label); groups.Append(s.Groups); sil.Append(s.Silhouette); ratio.Append(s.BetweenTotalRatio);
            }
        return new DataFrame(layer, name, groups, sil, ratio);
    }

    static List<object?> Values(DataFrameColumn c)
    {
        var list = new List<object?>((int)c.Length);
        for (long i = 0; i < c.Length; i++) list.Add(c[i]);
        return list;
    }

    static (int[] Group, int Groups) Groups<T>(double[,] points, IReadOnlyList<T> labels)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(labels);
        var n = points.GetLength(0);
        if (labels.Count != n) throw new ArgumentException($"{labels.Count} labels for {n} points", nameof(labels));
        var ids = new Dictionary<object, int>();
        var g = new int[n];
        for (var i = 0; i < n; i++)
        {
            var key = (object?)labels[i] ?? NullKey;
            if (!ids.TryGetValue(key, out var id)) ids[key] = id = ids.Count;
            g[i] = id;
        }
        return (g, ids.Count);
    }

    static readonly object NullKey = new();
}

/// <summary>Separation of one label's groups in a PCA projection; see <see cref="Separation"/>.</summary>
public readonly record struct SeparationScore(string Label, int Groups, double Silhouette, double BetweenTotalRatio);
