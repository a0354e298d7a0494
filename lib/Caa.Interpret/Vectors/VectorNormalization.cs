using static TorchSharp.torch;

namespace Caa.Interpret.Vectors;

/// <summary>The paper's normalization: per layer, every behavior's vector rescaled to the mean norm of all behaviors' vectors there.</summary>
public static class VectorNormalization
{
    /// <summary><see cref="VectorMetadata.Normalization"/> of vectors as extracted.</summary>
    public const string None = "none";

    /// <summary><see cref="VectorMetadata.Normalization"/> after <see cref="AcrossBehaviors"/>.</summary>
    public const string MeanNormAcrossBehaviors = "mean-norm-across-behaviors";

    /// <summary>
    /// For each layer L, rescales every behavior's vector at L to the mean of the behaviors' norms at L, keeping its
    /// direction; layers are not normalized against each other (residual norms grow with depth). Returns new sets
    /// (the inputs are left as they are) whose metadata says <see cref="MeanNormAcrossBehaviors"/>. Idempotent.
    /// A zero vector stays zero (it still counts in the mean).
    /// </summary>
    /// <exception cref="ArgumentException">No sets; two sets for one behavior; sets from models of different
    /// architecture or hidden size; or sets with different layers (the mean would then mix different behaviors per layer).</exception>
    public static IReadOnlyList<SteeringVectorSet> AcrossBehaviors(IReadOnlyList<SteeringVectorSet> sets)
    {
        ArgumentNullException.ThrowIfNull(sets);
        if (sets.Count == 0) throw new ArgumentException("nothing to normalize: no steering-vector sets given", nameof(sets));
        var first = sets[0];
        foreach (var s in sets.Skip(1))
        {
            if (s.Metadata.ArchitectureHash != first.Metadata.ArchitectureHash || s.Metadata.HiddenSize != first.Metadata.HiddenSize)
                throw new ArgumentException($"'{s.Behavior}' comes from a model with hidden size {s.Metadata.HiddenSize} and architecture hash {s.Metadata.ArchitectureHash}, " +
                    $"'{first.Behavior}' from one with hidden size {first.Metadata.HiddenSize} and architecture hash {first.Metadata.ArchitectureHash}; normalize vectors of one model only", nameof(sets));
            if (!s.Layers.SequenceEqual(first.Layers))
                throw new ArgumentException($"'{s.Behavior}' has layers {SteeringVectorSet.FormatLayers(s.Layers)} but '{first.Behavior}' has {SteeringVectorSet.FormatLayers(first.Layers)}; " +
                    "normalization needs every behavior at the same layers", nameof(sets));
        }
        if (sets.GroupBy(s => s.Behavior).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"two sets for behavior '{twice.Key}': normalization is across different behaviors", nameof(sets));

        var scaled = sets.Select(_ => new Dictionary<int, Tensor>()).ToArray();
        try
        {
            foreach (var layer in first.Layers)
            {
                var norms = sets.Select(s => s.Norm(layer)).ToArray();
                var target = norms.Average();
                for (var i = 0; i < sets.Count; i++)
                {
                    using var _ = NewDisposeScope();
                    var factor = norms[i] > 0 ? target / norms[i] : 0.0;
                    scaled[i][layer] = (sets[i][layer].to(ScalarType.Float64) * factor).to(ScalarType.Float32).DetachFromDisposeScope();
                }
            }
            return sets.Select((s, i) => new SteeringVectorSet(s.Metadata with { Normalization = MeanNormAcrossBehaviors }, scaled[i])).ToList();
        }
        finally
        {
            foreach (var t in scaled.SelectMany(d => d.Values)) t.Dispose();
        }
    }
}
