using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model.Hooks;

/// <summary>
/// Where in the sequence a hook is being called. Positions are <em>columns</em> of the (left-padded) input:
/// column c of row b is the token <c>input_ids[b, c]</c>. With a KV cache, a forward call covers columns
/// [<see cref="Offset"/>, <see cref="Offset"/> + <see cref="Length"/>).
/// </summary>
public sealed class HookContext
{
    internal HookContext(int layer, string point, long batch, long offset, long length, Device device)
    {
        Layer = layer; Point = point; Batch = batch; Offset = offset; Length = length; Device = device;
    }

    public int Layer { get; }
    public string Point { get; }
    public string Name => HookPoints.Name(Layer, Point);
    public long Batch { get; }
    /// <summary>Columns already in the KV cache before this call.</summary>
    public long Offset { get; }
    /// <summary>Number of columns in this call.</summary>
    public long Length { get; }
    public Device Device { get; }

    /// <summary>The columns of this call, [Length] int64 on the activation's device.</summary>
    public Tensor Columns() => arange(Offset, Offset + Length, dtype: ScalarType.Int64, device: Device);
}

/// <summary>A hook: receives an activation [batch, length, hidden] and returns it, changed or not.</summary>
public delegate Tensor HookFunction(Tensor activation, HookContext context);
