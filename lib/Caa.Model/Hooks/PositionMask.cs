using static TorchSharp.torch;

namespace Caa.Model.Hooks;

/// <summary>
/// Which positions (columns, see <see cref="HookContext"/>) of which rows a hook acts on. It is evaluated per forward
/// call, so the same mask works for a full forward, for cached decoding one token at a time, and for padded batches.
/// </summary>
public abstract class PositionMask
{
    /// <summary>Returns a bool tensor [batch, length] for the call described by <paramref name="context"/>.</summary>
    public abstract Tensor Evaluate(HookContext context);

    /// <summary>Every position.</summary>
    public static PositionMask All { get; } = new AllMask();

    /// <summary>Row b: every column ≥ <paramref name="startColumn"/>[b], generated tokens included (CAA's rule, from the end of the instruction on).
    /// A negative start means every column.</summary>
    public static PositionMask From(IReadOnlyList<long> startColumn) => new FromMask(startColumn.ToArray());

    /// <summary>An explicit bool mask [batch, columns]; columns beyond its width are not selected.</summary>
    public static PositionMask Explicit(Tensor mask) => new ExplicitMask(mask);

    sealed class AllMask : PositionMask
    {
        public override Tensor Evaluate(HookContext c) => ones(c.Batch, c.Length, dtype: ScalarType.Bool, device: c.Device);
    }

    sealed class FromMask(long[] start) : PositionMask
    {
        public override Tensor Evaluate(HookContext c)
        {
            if (start.Length != c.Batch) throw new ArgumentException($"PositionMask.From has {start.Length} start positions but the batch has {c.Batch} rows");
            using var s = tensor(start, device: c.Device).unsqueeze(1);
            using var cols = c.Columns().unsqueeze(0);
            return cols.ge(s);
        }
    }

    sealed class ExplicitMask(Tensor mask) : PositionMask
    {
        public override Tensor Evaluate(HookContext c)
        {
            if (mask.dim() != 2 || mask.shape[0] != c.Batch)
                throw new ArgumentException($"explicit position mask has shape [{string.Join(",", mask.shape)}]; expected [{c.Batch}, columns]");
            var width = mask.shape[1];
            var result = zeros(c.Batch, c.Length, dtype: ScalarType.Bool, device: c.Device);
            var end = Math.Min(width, c.Offset + c.Length);
            if (end > c.Offset)
                result[.., ..(int)(end - c.Offset)] = mask[.., (int)c.Offset..(int)end].to(ScalarType.Bool).to(c.Device);
            return result;
        }
    }
}
