using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace Caa.Interpret.Analysis;

/// <summary>One cell of a transfer experiment: the vector extracted at <see cref="SourceLayer"/>, added at <see cref="AppliedLayer"/> with <see cref="Multiplier"/>.</summary>
public readonly record struct TransferRow(int SourceLayer, int AppliedLayer, double Multiplier, double PMatch);

/// <summary>Progress of <see cref="Transfer.Run(IReadOnlyDictionary{int, Tensor}, IEnumerable{int}, IEnumerable{double}, Func{Tensor, int, IReadOnlyList{double}, IReadOnlyList{double}}, IProgress{TransferProgress}?, CancellationToken)"/>: cells done of total.</summary>
public readonly record struct TransferProgress(int Done, int Total, int SourceLayer, int AppliedLayer);

/// <summary>
/// Layer-transfer experiments (the paper: a layer-13 vector still steers when added at other layers, up to about
/// layer 17): every source-layer vector × every applied layer × every multiplier. Pure orchestration — the
/// evaluation (steer, run the A/B test set, average p(match)) is a delegate supplied by the caller.
/// </summary>
public static class Transfer
{
    /// <summary>
    /// Runs the grid with a batched evaluator, called once per (source, applied) pair with all multipliers
    /// (so an evaluator can put the multipliers in one batch, as the sweeps do).
    /// </summary>
    /// <param name="vectorsBySourceLayer">Vector [H] per source layer.</param>
    /// <param name="appliedLayers">Layers to add each vector at.</param>
    /// <param name="multipliers">Multipliers (order kept).</param>
    /// <param name="evaluate">(vector, applied layer, multipliers) → p(match) per multiplier, same count and order.</param>
    /// <param name="progress">Reported after each (source, applied) pair.</param>
    /// <param name="cancellationToken">Checked between evaluator calls.</param>
    /// <returns>Table <c>source_layer, applied_layer, multiplier, p_match</c> (source-major, then applied, then multiplier).</returns>
    public static DataFrame Run(IReadOnlyDictionary<int, Tensor> vectorsBySourceLayer, IEnumerable<int> appliedLayers, IEnumerable<double> multipliers,
        Func<Tensor, int, IReadOnlyList<double>, IReadOnlyList<double>> evaluate, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(evaluate);
        return ToDataFrame(Rows(vectorsBySourceLayer, appliedLayers, multipliers, evaluate, progress, cancellationToken));
    }

    /// <summary>Same grid with a per-cell evaluator: (vector, applied layer, multiplier) → p(match).</summary>
    public static DataFrame Run(IReadOnlyDictionary<int, Tensor> vectorsBySourceLayer, IEnumerable<int> appliedLayers, IEnumerable<double> multipliers,
        Func<Tensor, int, double, double> evaluate, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(evaluate);
        return Run(vectorsBySourceLayer, appliedLayers, multipliers,
            (v, layer, ms) => ms.Select(m => { cancellationToken.ThrowIfCancellationRequested(); return evaluate(v, layer, m); }).ToArray(),
            progress, cancellationToken);
    }

    /// <summary>The grid as rows (what <see cref="Run(IReadOnlyDictionary{int, Tensor}, IEnumerable{int}, IEnumerable{double}, Func{Tensor, int, IReadOnlyList{double}, IReadOnlyList{double}}, IProgress{TransferProgress}?, CancellationToken)"/> tabulates).</summary>
    public static IReadOnlyList<TransferRow> Rows(IReadOnlyDictionary<int, Tensor> vectorsBySourceLayer, IEnumerable<int> appliedLayers, IEnumerable<double> multipliers,
        Func<Tensor, int, IReadOnlyList<double>, IReadOnlyList<double>> evaluate, IProgress<TransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vectorsBySourceLayer);
        ArgumentNullException.ThrowIfNull(evaluate);
        var applied = appliedLayers.ToArray();
        var ms = multipliers.ToArray();
        if (vectorsBySourceLayer.Count == 0 || applied.Length == 0 || ms.Length == 0) throw new ArgumentException("transfer needs at least one source vector, applied layer and multiplier");
        var rows = new List<TransferRow>(vectorsBySourceLayer.Count * applied.Length * ms.Length);
        var total = vectorsBySourceLayer.Count * applied.Length;
        var done = 0;
        foreach (var (source, vector) in vectorsBySourceLayer.OrderBy(kv => kv.Key))
            foreach (var layer in applied)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var p = evaluate(vector, layer, ms);
                if (p is null || p.Count != ms.Length) throw new InvalidOperationException($"evaluator returned {p?.Count ?? 0} values for {ms.Length} multipliers (source {source}, applied {layer})");
                for (var i = 0; i < ms.Length; i++) rows.Add(new TransferRow(source, layer, ms[i], p[i]));
                progress?.Report(new TransferProgress(++done, total, source, layer));
            }
        return rows;
    }

    /// <summary>Table <c>source_layer, applied_layer, multiplier, p_match</c>.</summary>
    public static DataFrame ToDataFrame(IEnumerable<TransferRow> rows)
    {
        var list = rows.ToList();
        return new DataFrame(
            new Int32DataFrameColumn("source_layer", list.Select(r => r.SourceLayer)),
            new Int32DataFrameColumn("applied_layer", list.Select(r => r.AppliedLayer)),
            new DoubleDataFrameColumn("multiplier", list.Select(r => r.Multiplier)),
            new DoubleDataFrameColumn("p_match", list.Select(r => r.PMatch)));
    }
}
