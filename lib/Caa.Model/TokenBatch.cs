using static TorchSharp.torch;

namespace Caa.Model;

/// <summary>
/// Token sequences of different lengths as one left-padded batch: ids [batch, columns] and an attention mask
/// (1 = token, 0 = padding). Left padding keeps every row's last token in the last column, where next-token logits are read.
/// </summary>
public sealed class TokenBatch : IDisposable
{
    TokenBatch(Tensor ids, Tensor mask, long[] padding) { Ids = ids; AttentionMask = mask; Padding = padding; }

    public Tensor Ids { get; }
    public Tensor AttentionMask { get; }
    /// <summary>Padding columns at the start of each row.</summary>
    public IReadOnlyList<long> Padding { get; }
    public long Rows => Ids.shape[0];
    public long Columns => Ids.shape[1];
    /// <summary>True when some row has padding (the mask then matters).</summary>
    public bool IsPadded => Padding.Any(p => p > 0);
    /// <summary>The mask to pass to the model: null when no row is padded.</summary>
    public Tensor? MaskOrNull => IsPadded ? AttentionMask : null;

    /// <summary>The column holding token <paramref name="index"/> of row <paramref name="row"/> (negative index counts from the end).</summary>
    public long Column(int row, int index) => index >= 0 ? Padding[row] + index : Columns + index;

    /// <summary>Left-pads <paramref name="rows"/> with <paramref name="padId"/>.</summary>
    public static TokenBatch LeftPad(IReadOnlyList<IReadOnlyList<int>> rows, Device? device = null, int padId = 0)
    {
        if (rows.Count == 0) throw new ArgumentException("cannot batch zero sequences", nameof(rows));
        if (rows.Any(r => r.Count == 0)) throw new ArgumentException($"sequence {rows.Select((r, i) => (r, i)).First(x => x.r.Count == 0).i} is empty", nameof(rows));
        var width = rows.Max(r => r.Count);
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        var padding = new long[rows.Count];
        for (var b = 0; b < rows.Count; b++)
        {
            var pad = width - rows[b].Count;
            padding[b] = pad;
            for (var t = 0; t < width; t++)
            {
                ids[b * width + t] = t < pad ? padId : rows[b][t - pad];
                mask[b * width + t] = t < pad ? 0 : 1;
            }
        }
        return new TokenBatch(
            tensor(ids, [rows.Count, width], device: device ?? CPU),
            tensor(mask, [rows.Count, width], device: device ?? CPU),
            padding);
    }

    public void Dispose() { Ids.Dispose(); AttentionMask.Dispose(); }
}
