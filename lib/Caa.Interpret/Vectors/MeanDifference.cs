using static TorchSharp.torch;

namespace Caa.Interpret.Vectors;

/// <summary>
/// Running sum of per-item differences act(matching) − act(not matching) in float64 on the activations' device;
/// <see cref="Mean"/> gives the steering vector in float32. <see cref="VectorExtractor.MeanDifference"/> is one
/// <see cref="Add"/> followed by <see cref="Mean"/>; extraction adds batch by batch.
/// </summary>
internal sealed class MeanDifferenceAccumulator : IDisposable
{
    readonly Tensor _sum;

    public MeanDifferenceAccumulator(long hidden, Device device)
    {
        _sum = zeros(hidden, dtype: ScalarType.Float64, device: device).DetachFromDisposeScope();
    }

    public long Count { get; private set; }

    /// <summary>Adds the rows of <paramref name="matching"/> − <paramref name="notMatching"/> (both [items, hidden], any dtype).</summary>
    public void Add(Tensor matching, Tensor notMatching)
    {
        if (matching.dim() != 2 || !matching.shape.SequenceEqual(notMatching.shape) || matching.shape[1] != _sum.shape[0])
            throw new ArgumentException($"activations must both be [items, {_sum.shape[0]}]; got [{string.Join(",", matching.shape)}] (matching) and [{string.Join(",", notMatching.shape)}] (not matching)");
        using var _ = NewDisposeScope();
        using var __ = no_grad();
        var device = _sum.device;
        var diff = matching.detach().to(ScalarType.Float64).to(device) - notMatching.detach().to(ScalarType.Float64).to(device);
        _sum.add_(diff.sum(dim: 0)); // named: a literal 0 would bind to the ScalarType overload (sum of everything)
        Count += matching.shape[0];
    }

    /// <summary>The mean difference, float32 [hidden] on the accumulator's device.</summary>
    public Tensor Mean()
    {
        if (Count == 0) throw new InvalidOperationException("no items: the mean difference of zero items is undefined");
        using var _ = NewDisposeScope();
        return (_sum / Count).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose() => _sum.Dispose();
}
