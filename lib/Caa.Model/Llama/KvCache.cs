using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model.Llama;

/// <summary>Keys and values of every layer for the columns seen so far ([batch, kvHeads, columns, headDim], after RoPE).</summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor?[] _k, _v;

    public KvCache(int layers) { _k = new Tensor?[layers]; _v = new Tensor?[layers]; }

    /// <summary>Columns cached (the same for every layer once a forward call completes).</summary>
    public long Length => _k[^1]?.shape[2] ?? _k[0]?.shape[2] ?? 0;

    internal (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        var oldK = _k[layer]; var oldV = _v[layer];
        var newK = (oldK is null ? k.clone() : cat([oldK, k], 2)).DetachFromDisposeScope();
        var newV = (oldV is null ? v.clone() : cat([oldV, v], 2)).DetachFromDisposeScope();
        oldK?.Dispose(); oldV?.Dispose();
        _k[layer] = newK; _v[layer] = newV;
        return (newK.alias(), newV.alias());
    }

    /// <summary>A cache holding the given batch rows of this one (e.g. to repeat a shared prompt prefix for several multipliers).</summary>
    /// <param name="rows">int64 row indices (may repeat).</param>
    /// <param name="fromLayer">Copy only layers ≥ this; lower layers are left empty (for callers that resume the forward pass at
    /// block <paramref name="fromLayer"/> and never run the blocks below against the copy).</param>
    public KvCache SelectRows(Tensor rows, int fromLayer = 0)
    {
        var copy = new KvCache(_k.Length);
        for (var i = Math.Max(0, fromLayer); i < _k.Length; i++)
        {
            copy._k[i] = _k[i]?.index_select(0, rows.to(_k[i]!.device)).DetachFromDisposeScope();
            copy._v[i] = _v[i]?.index_select(0, rows.to(_v[i]!.device)).DetachFromDisposeScope();
        }
        return copy;
    }

    public void Dispose()
    {
        for (var i = 0; i < _k.Length; i++) { _k[i]?.Dispose(); _v[i]?.Dispose(); _k[i] = _v[i] = null; }
    }
}
