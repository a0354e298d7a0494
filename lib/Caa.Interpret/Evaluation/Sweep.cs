using Caa.Model.Llama;
using static TorchSharp.torch;

namespace Caa.Interpret.Evaluation;

/// <summary>How a sweep computes its cells.</summary>
public enum SweepMode
{
    /// <summary>Partial recomputation: the unsteered prefix and the suffix below layer L are computed once (see <see cref="LayerSweep"/>).</summary>
    Efficient,
    /// <summary>The paper's code: one full forward pass (all logits) per item × layer × multiplier, batch of one.</summary>
    Reference,
    /// <summary>One batched forward pass (last-column logits) per layer × multiplier with the steering hook; for comparison.</summary>
    Batched,
}

/// <summary>One behavior to sweep: its evaluation prompts and its vectors (layer → [hidden] float32).</summary>
public sealed record SweepBehavior(string Name, IReadOnlyList<AbPrompt> Prompts, IReadOnlyDictionary<int, Tensor> Vectors);

/// <summary>One tidy result row: p(match) of item <paramref name="Item"/> (index in the behavior's prompts) steered with
/// <paramref name="Multiplier"/> × vector at <paramref name="Layer"/>.</summary>
public sealed record SweepRow(string Behavior, int Layer, double Multiplier, int Item, double PMatch);

/// <summary>Sweep progress after each (behavior, layer) cell.</summary>
/// <param name="Behavior">The behavior of the cell just finished or skipped.</param>
/// <param name="Layer">Its layer.</param>
/// <param name="CellsDone">Cells finished so far, skipped (already in the CSV) ones included.</param>
/// <param name="CellsTotal">Cells in the whole sweep.</param>
/// <param name="Skipped">True when the cell was read back from an earlier run rather than computed.</param>
public sealed record SweepProgress(string Behavior, int Layer, int CellsDone, int CellsTotal, bool Skipped);

/// <summary>What to sweep and how.</summary>
public sealed record SweepOptions
{
    /// <summary>Layers to steer at (each must have a vector in every behavior).</summary>
    public required IReadOnlyList<int> Layers { get; init; }
    /// <summary>Multipliers; the paper's sweep uses −1, 0, +1.</summary>
    public IReadOnlyList<double> Multipliers { get; init; } = [-1.0, 0.0, 1.0];
    public SweepMode Mode { get; init; } = SweepMode.Efficient;
    /// <summary>Items per forward pass (Efficient: rows of the prefix pass; the steered suffix passes have items × multipliers rows).</summary>
    public int BatchSize { get; init; } = AbEvaluation.DefaultBatchSize;
}

/// <summary>
/// Layer × multiplier sweeps of A/B p(match). Results are tidy <see cref="SweepRow"/>s (order: behavior, layer, multiplier, item
/// as given). With a CSV path the sweep is resumable: each finished (behavior, layer) cell is appended to the file and flushed;
/// on a rerun, complete cells are read back and skipped, incomplete cells and a torn last line (from a crash) are dropped first.
/// </summary>
public static class LayerSweep
{
    /// <summary>Runs the sweep in memory.</summary>
    public static IReadOnlyList<SweepRow> Run(LlamaForCausalLM model, IReadOnlyList<SweepBehavior> behaviors, SweepOptions options,
        IProgress<SweepProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var rows = new List<SweepRow>();
        Execute(model, behaviors, options, _ => false, rows.AddRange, progress, cancellationToken);
        return rows;
    }

    /// <summary>
    /// Runs the sweep, appending each finished (behavior, layer) cell to <paramref name="csvPath"/> (created with the header
    /// <see cref="SweepCsv.Header"/> when absent) and skipping cells already complete in it. Returns every row of the file.
    /// </summary>
    public static IReadOnlyList<SweepRow> Run(LlamaForCausalLM model, IReadOnlyList<SweepBehavior> behaviors, SweepOptions options,
        string csvPath, IProgress<SweepProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(csvPath);
        Check(model, behaviors, options);
        var existing = File.Exists(csvPath) ? SweepCsv.ReadForResume(csvPath) : [];
        var requested = behaviors.ToDictionary(b => b.Name);
        bool IsRequestedCell(SweepRow r) => requested.ContainsKey(r.Behavior) && options.Layers.Contains(r.Layer);
        var complete = existing.Where(IsRequestedCell).GroupBy(r => (r.Behavior, r.Layer))
            .Where(g => IsComplete(g, requested[g.Key.Behavior].Prompts.Count, options.Multipliers))
            .Select(g => g.Key).ToHashSet();
        // Rows of cells outside this sweep are kept as they are; rows of incomplete requested cells are dropped.
        var kept = existing.Where(r => !IsRequestedCell(r) || complete.Contains((r.Behavior, r.Layer))).ToList();
        SweepCsv.Rewrite(csvPath, kept);
        var all = new List<SweepRow>(kept);
        Execute(model, behaviors, options, cell => complete.Contains(cell), cellRows =>
        {
            SweepCsv.Append(csvPath, cellRows);
            all.AddRange(cellRows);
        }, progress, cancellationToken);
        return all;
    }

    static bool IsComplete(IEnumerable<SweepRow> cell, int items, IReadOnlyList<double> multipliers)
    {
        var seen = new HashSet<(double, int)>();
        foreach (var r in cell)
            if (r.Item < 0 || r.Item >= items || !multipliers.Contains(r.Multiplier) || !seen.Add((r.Multiplier, r.Item))) return false;
        return seen.Count == items * multipliers.Distinct().Count();
    }

    static void Check(LlamaForCausalLM model, IReadOnlyList<SweepBehavior> behaviors, SweepOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(behaviors);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "batch size must be ≥ 1");
        if (options.Multipliers.Count == 0) throw new ArgumentException("no multipliers", nameof(options));
        if (options.Multipliers.Distinct().Count() != options.Multipliers.Count) throw new ArgumentException("duplicate multipliers", nameof(options));
        if (options.Multipliers.Any(m => !double.IsFinite(m))) throw new ArgumentException("multipliers must be finite", nameof(options));
        if (options.Layers.Distinct().Count() != options.Layers.Count) throw new ArgumentException("duplicate layers", nameof(options));
        var n = model.Config.NumHiddenLayers;
        foreach (var l in options.Layers)
            if (l < 0 || l >= n) throw new ArgumentOutOfRangeException(nameof(options), l, $"layer {l} is outside 0…{n - 1}");
        if (behaviors.Select(b => b.Name).Distinct().Count() != behaviors.Count) throw new ArgumentException("duplicate behavior names", nameof(behaviors));
        foreach (var b in behaviors)
        {
            SweepCsv.CheckName(b.Name);
            AbEvaluation.Validate(model, b.Prompts);
            foreach (var l in options.Layers)
            {
                if (!b.Vectors.TryGetValue(l, out var v)) throw new ArgumentException($"{b.Name}: no vector for layer {l}", nameof(behaviors));
                if (v.dim() != 1 || v.shape[0] != model.Config.HiddenSize)
                    throw new ArgumentException($"{b.Name}: the layer-{l} vector has shape [{string.Join(",", v.shape)}]; the model needs [{model.Config.HiddenSize}]", nameof(behaviors));
            }
        }
    }

    static void Execute(LlamaForCausalLM model, IReadOnlyList<SweepBehavior> behaviors, SweepOptions options,
        Func<(string, int), bool> done, Action<List<SweepRow>> emit, IProgress<SweepProgress>? progress, CancellationToken ct)
    {
        Check(model, behaviors, options);
        int total = behaviors.Count * options.Layers.Count, finished = 0;
        foreach (var behavior in behaviors)
        {
            var todo = options.Layers.Where(l => !done((behavior.Name, l))).ToList();
            foreach (var l in options.Layers.Where(l => done((behavior.Name, l))))
                progress?.Report(new SweepProgress(behavior.Name, l, ++finished, total, Skipped: true));
            if (todo.Count == 0 || behavior.Prompts.Count == 0)
            {
                foreach (var l in todo) { emit([]); progress?.Report(new SweepProgress(behavior.Name, l, ++finished, total, Skipped: false)); }
                continue;
            }
            using var scorer = CreateScorer(model, behavior.Prompts, todo, options, ct);
            foreach (var layer in todo)
            {
                var scores = scorer.Score(layer, behavior.Vectors[layer], options.Multipliers, ct);
                var rows = new List<SweepRow>(options.Multipliers.Count * behavior.Prompts.Count);
                for (var j = 0; j < options.Multipliers.Count; j++)
                    for (var i = 0; i < behavior.Prompts.Count; i++)
                        rows.Add(new SweepRow(behavior.Name, layer, options.Multipliers[j], i, scores[j, i]));
                emit(rows);
                progress?.Report(new SweepProgress(behavior.Name, layer, ++finished, total, Skipped: false));
            }
        }
    }

    internal static ILayerScorer CreateScorer(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts, IReadOnlyCollection<int> layers,
        SweepOptions options, CancellationToken ct) => options.Mode switch
    {
        SweepMode.Efficient => new EfficientScorer(model, prompts, layers, options.BatchSize, ct),
        SweepMode.Reference => new ReferenceScorer(model, prompts),
        SweepMode.Batched => new BatchedScorer(model, prompts, options.BatchSize),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Mode, null),
    };
}
