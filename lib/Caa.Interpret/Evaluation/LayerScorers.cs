using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Interpret.Evaluation;

/// <summary>Scores one behavior's prompts at one layer for several multipliers: result[multiplierIndex, item] = p(match).</summary>
internal interface ILayerScorer : IDisposable
{
    double[,] Score(int layer, Tensor vector, IReadOnlyList<double> multipliers, CancellationToken cancellationToken);
}

/// <summary>
/// The paper's code: one full forward pass (all columns, all logits) per item × multiplier, batch of one, with the steering hook.
/// </summary>
internal sealed class ReferenceScorer(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts) : ILayerScorer
{
    public double[,] Score(int layer, Tensor vector, IReadOnlyList<double> multipliers, CancellationToken ct)
    {
        var result = new double[multipliers.Count, prompts.Count];
        using var _ = no_grad();
        for (var j = 0; j < multipliers.Count; j++)
            for (var i = 0; i < prompts.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var p = prompts[i];
                using var hook = model.Hooks.AddVector(HookPoints.ResidPostOf(layer), vector, tensor((float)multipliers[j]), PositionMask.From([p.SteerStart]));
                var logits = model.Forward(tensor(p.Ids.Select(x => (long)x).ToArray()).unsqueeze(0));
                result[j, i] = AbEvaluation.Scores(logits[.., -1], [p])[0];
            }
        return result;
    }

    public void Dispose() { }
}

/// <summary>The obvious batched implementation: one batched forward (last-column logits) per multiplier with the steering hook.</summary>
internal sealed class BatchedScorer(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts, int batchSize) : ILayerScorer
{
    public double[,] Score(int layer, Tensor vector, IReadOnlyList<double> multipliers, CancellationToken ct)
    {
        var result = new double[multipliers.Count, prompts.Count];
        for (var j = 0; j < multipliers.Count; j++)
        {
            var r = AbEvaluation.Evaluate(model, prompts, Steering.At(layer, vector, multipliers[j]), batchSize, cancellationToken: ct);
            for (var i = 0; i < prompts.Count; i++) result[j, i] = r.PMatch[i];
        }
        return result;
    }

    public void Dispose() { }
}

/// <summary>
/// Partial recomputation. Per batch of items, once: (a) the columns before the steering start (the shared prefix) run
/// unsteered into a KV cache; (b) the remaining suffix columns run unsteered against a copy of it, recording
/// <c>resid_post</c> of every swept layer on the suffix and the unsteered p(match) (which serves multiplier 0).
/// Per layer L: the recorded suffix <c>resid_post(L)</c> is repeated for all non-zero multipliers (rows = multipliers × items),
/// m·v is added at columns ≥ each row's start, and only blocks L+1…N−1 run, on the suffix columns only, against the prefix
/// cache repeated per multiplier (layers > L copied); then the final norm and the answer letters' logits of the last column.
/// Nothing below layer L and nothing before the start column is recomputed. Memory: the prefix KV cache of every item of
/// the behavior is held until the scorer is disposed.
/// </summary>
internal sealed class EfficientScorer : ILayerScorer
{
    sealed class BatchState : IDisposable
    {
        public required int First;
        public required List<AbPrompt> Prompts;
        public required long[] Starts;          // absolute start column per row (-1 = all)
        public required long PrefixLength;      // columns in the prefix cache
        public required long SuffixLength;
        public required Tensor? Mask;           // [B, columns] or null when unpadded
        public required KvCache Prefix;
        public required Dictionary<int, Tensor> Resid; // layer → resid_post on the suffix [B, S, H]
        public required double[] Unsteered;
        public void Dispose()
        {
            Mask?.Dispose(); Prefix.Dispose();
            foreach (var t in Resid.Values) t.Dispose();
        }
    }

    readonly LlamaForCausalLM _model;
    readonly List<BatchState> _batches = [];
    readonly int _items;

    public EfficientScorer(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts, IReadOnlyCollection<int> layers, int batchSize, CancellationToken ct)
    {
        _model = model;
        _items = prompts.Count;
        try
        {
            for (var first = 0; first < prompts.Count; first += batchSize)
            {
                ct.ThrowIfCancellationRequested();
                _batches.Add(Prepare(prompts.Skip(first).Take(batchSize).ToList(), first, layers));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    BatchState Prepare(List<AbPrompt> prompts, int first, IReadOnlyCollection<int> layers)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var tb = TokenBatch.LeftPad(prompts.Select(b => (IReadOnlyList<int>)b.Ids).ToList(), _model.Device);
        var starts = AbEvaluation.StartColumns(prompts, tb.Padding);
        long columns = tb.Columns, s = starts.Any(x => x < 0) ? 0 : starts.Min(), suffix = columns - s;
        var b = (long)prompts.Count;
        var mask = tb.MaskOrNull?.clone();
        var prefix = _model.NewCache();
        try
        {
            // (a) the shared prefix, once.
            if (s > 0)
            {
                using var st = _model.Prepare(b, s, mask?[.., ..(int)s], prefix);
                _model.RunLayers(_model.Embed(tb.Ids[.., ..(int)s]), st).Dispose();
            }
            // (b) the suffix, unsteered, recording resid_post at the swept layers.
            using var work = prefix.SelectRows(arange(b, dtype: ScalarType.Int64, device: _model.Device));
            Dictionary<int, Tensor> resid;
            Tensor last;
            using (var capture = _model.Hooks.Capture(layers.Select(HookPoints.ResidPostOf)))
            {
                using var st = _model.Prepare(b, suffix, mask, work);
                var h = _model.RunLayers(_model.Embed(tb.Ids[.., (int)s..]), st);
                last = _model.FinalNorm(h[.., -1]);
                resid = layers.ToDictionary(l => l, l => capture[HookPoints.ResidPostOf(l)].clone().DetachFromDisposeScope());
            }
            return new BatchState
            {
                First = first, Prompts = prompts, Starts = starts, PrefixLength = s, SuffixLength = suffix,
                Mask = mask?.DetachFromDisposeScope(), Prefix = prefix, Resid = resid, Unsteered = AbEvaluation.ScoreNormed(_model, last, prompts),
            };
        }
        catch
        {
            prefix.Dispose();
            throw;
        }
    }

    /// <summary>Unsteered p(match) per item.</summary>
    public double[] Unsteered => _batches.SelectMany(b => b.Unsteered).ToArray();

    public double[,] Score(int layer, Tensor vector, IReadOnlyList<double> multipliers, CancellationToken ct)
    {
        var result = new double[multipliers.Count, _items];
        var steered = Enumerable.Range(0, multipliers.Count).Where(j => multipliers[j] != 0).ToArray();
        using var _ = no_grad();
        foreach (var batch in _batches)
        {
            ct.ThrowIfCancellationRequested();
            var b = batch.Prompts.Count;
            for (var j = 0; j < multipliers.Count; j++)
                if (multipliers[j] == 0)
                    for (var i = 0; i < b; i++) result[j, batch.First + i] = batch.Unsteered[i];
            if (steered.Length == 0) continue;
            var scores = ScoreSteered(batch, layer, vector, steered.Select(j => multipliers[j]).ToArray());
            for (var k = 0; k < steered.Length; k++)
                for (var i = 0; i < b; i++) result[steered[k], batch.First + i] = scores[k * b + i];
        }
        return result;
    }

    double[] ScoreSteered(BatchState batch, int layer, Tensor vector, double[] multipliers)
    {
        using var scope = NewDisposeScope();
        if (!batch.Resid.TryGetValue(layer, out var resid)) throw new ArgumentException($"layer {layer} was not recorded by this scorer", nameof(layer));
        var device = _model.Device;
        long b = batch.Prompts.Count, m = multipliers.Length, rows = b * m, suffix = batch.SuffixLength;
        var h = resid.repeat(m, 1, 1);                                                                  // [M·B, S, H], row = k·B + i
        // Exactly what HookRegistry.AddVector adds: (mask · m) · v in float32, cast to the activation's dtype.
        var columns = arange(batch.PrefixLength, batch.PrefixLength + suffix, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        var steerHere = columns.ge(tensor(batch.Starts, device: device).unsqueeze(1)).to(ScalarType.Float32).repeat(m, 1); // [M·B, S]
        var perRow = tensor(multipliers.Select(x => (float)x).ToArray(), device: device).repeat_interleave(b);                // [M·B]
        var delta = (steerHere * perRow.unsqueeze(1)).unsqueeze(-1) * vector.detach().to(ScalarType.Float32).to(device).view(1, 1, -1);
        h = h + delta.to(h.dtype);
        if (layer + 1 < _model.Config.NumHiddenLayers)
        {
            using var cache = batch.Prefix.SelectRows(arange(b, dtype: ScalarType.Int64, device: device).repeat(m), fromLayer: layer + 1);
            using var st = _model.Prepare(rows, suffix, batch.Mask?.repeat(m, 1), cache);
            h = _model.RunLayers(h, st, from: layer + 1);
        }
        return AbEvaluation.ScoreNormed(_model, _model.FinalNorm(h[.., -1]), batch.Prompts);
    }

    public void Dispose()
    {
        foreach (var b in _batches) b.Dispose();
        _batches.Clear();
    }
}
