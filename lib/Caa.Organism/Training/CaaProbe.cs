using Caa.Interpret.Datasets;
using Caa.Interpret.Evaluation;
using Caa.Interpret.Vectors;
using Caa.Model.Llama;
using Caa.Model.Tokenization;

namespace Caa.Organism.Training;

/// <summary>Steering effect by layer: mean over behaviors of p(match) at multiplier +1 minus at −1.</summary>
public sealed record CaaProbeResult(IReadOnlyList<double> EffectByLayer)
{
    public int BestLayer => EffectByLayer.Count == 0 ? -1 : EffectByLayer.Select((e, l) => (e, l)).MaxBy(x => x.e).l;
    public double BestEffect => EffectByLayer.Count == 0 ? double.NaN : EffectByLayer.Max();
}

/// <summary>
/// The CAA check the organism is trained for, small enough to run during training: the CAA pipeline itself (vectors extracted at
/// every layer from A/B items, normalized across behaviors) applied at ±1 to other items of the same behaviors, layer by layer.
/// It tells, from the training log, when (and whether) the dispositions became steerable.
/// </summary>
public static class CaaProbe
{
    /// <param name="model">The model (any dtype/device).</param>
    /// <param name="tok">Its tokenizer.</param>
    /// <param name="extract">Behavior → items to extract its vectors from.</param>
    /// <param name="evaluate">Behavior → items to steer (should differ from <paramref name="extract"/>).</param>
    public static CaaProbeResult Run(LlamaForCausalLM model, Llama2Tokenizer tok,
        IReadOnlyDictionary<string, IReadOnlyList<AbItem>> extract, IReadOnlyDictionary<string, IReadOnlyList<AbItem>> evaluate)
    {
        ArgumentNullException.ThrowIfNull(model);
        var normalized = ExtractNormalized(model, tok, extract);
        try
        {
            var effect = new double[model.Config.NumHiddenLayers];
            foreach (var v in normalized)
            {
                var prompts = AbPrompt.FromItems(tok, evaluate[v.Behavior]);
                for (int l = 0; l < effect.Length; l++)
                    effect[l] += (AbEvaluation.Evaluate(model, prompts, Steering.At(l, v[l], 1)).Mean
                                - AbEvaluation.Evaluate(model, prompts, Steering.At(l, v[l], -1)).Mean) / normalized.Count;
            }
            return new CaaProbeResult(effect);
        }
        finally { foreach (var v in normalized) v.Dispose(); }
    }

    /// <summary>
    /// Every behavior's vectors extracted from its items (all layers) and normalized across the behaviors, in memory: the CAA
    /// pipeline's vectors for the probe and the model card. The caller disposes the returned sets.
    /// </summary>
    internal static IReadOnlyList<SteeringVectorSet> ExtractNormalized(LlamaForCausalLM model, Llama2Tokenizer tok,
        IReadOnlyDictionary<string, IReadOnlyList<AbItem>> items)
    {
        var raw = new List<ExtractionResult>();
        try
        {
            foreach (var (b, list) in items) raw.Add(VectorExtractor.Extract(model, tok, b, list));
            return VectorNormalization.AcrossBehaviors(raw.Select(r => r.Vectors).ToList()); // new sets, independent of raw
        }
        finally { foreach (var r in raw) r.Dispose(); }
    }
}
