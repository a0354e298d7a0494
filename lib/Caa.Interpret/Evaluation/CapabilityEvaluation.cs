using Caa.Model.Llama;
using static TorchSharp.torch;

namespace Caa.Interpret.Evaluation;

/// <summary>Mean p(correct letter) of a capability set under one multiplier (0 = unsteered).</summary>
public sealed record CapabilityResult(double Multiplier, double MeanPCorrect, IReadOnlyList<double> PCorrect);

/// <summary>
/// Capability checks (the paper's MMLU and TruthfulQA as A/B items, same file format, with
/// <c>answer_matching_behavior</c> = the correct letter): mean p(correct letter), unsteered and under steering. This is the
/// A/B evaluation read as "p(correct)".
/// </summary>
public static class CapabilityEvaluation
{
    /// <summary>
    /// Unsteered (no <paramref name="vector"/>: one result, multiplier 0), or one result per multiplier with
    /// multiplier × <paramref name="vector"/> added at <c>resid_post</c> of <paramref name="layer"/>.
    /// </summary>
    public static IReadOnlyList<CapabilityResult> Evaluate(LlamaForCausalLM model, IReadOnlyList<AbPrompt> prompts,
        int? layer = null, Tensor? vector = null, IReadOnlyList<double>? multipliers = null, int batchSize = AbEvaluation.DefaultBatchSize,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if ((vector is null) != (layer is null)) throw new ArgumentException("give both a layer and a vector for steering, or neither");
        if (vector is null)
        {
            var r = AbEvaluation.Evaluate(model, prompts, null, batchSize, progress, cancellationToken);
            return [new CapabilityResult(0, r.Mean, r.PMatch)];
        }
        var ms = multipliers ?? [-1.0, 0.0, 1.0];
        var results = new List<CapabilityResult>();
        var done = 0;
        foreach (var m in ms)
        {
            var offset = done;
            var inner = progress is null ? null : new Progress<int>(n => progress.Report(offset + n));
            var r = AbEvaluation.Evaluate(model, prompts, Steering.At(layer!.Value, vector, m), batchSize, inner, cancellationToken);
            results.Add(new CapabilityResult(m, r.Mean, r.PMatch));
            done += prompts.Count;
        }
        return results;
    }
}
