using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model.Runtime;

/// <summary>
/// Additions for the forward pass whose <see cref="Scalar"/> arguments live as long as the process.
/// Why by hand: TorchSharp 0.107 turns <c>a + b</c> into <c>a.add(b, 1)</c> with a temporary <see cref="Scalar"/> that has a
/// finalizer, belongs to no dispose scope, and is not kept alive across the native call (<c>Tensor.add</c> reads its handle
/// and calls <c>THSTensor_add</c> without <c>GC.KeepAlive</c>). A garbage collection at that moment can free the scalar while
/// libtorch reads it: a rare native exception in <c>add</c> ("Expected false to be true … Scalar.h … toFloat"), seen twice in
/// hour-long organism trainings at the decoder block's residual add. Upstream: dotnet/TorchSharp pull requests 1434 and 1496
/// (open). The hot path of every forward pass (residual adds, rotary embedding, RMSNorm, steering hooks) uses these instead.
/// </summary>
internal static class KeptScalars
{
    static readonly Scalar One = 1.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/> (tensors), as <c>a + b</c> computes it.</summary>
    internal static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><paramref name="a"/> + <paramref name="b"/> for a scalar the caller keeps alive (e.g. a module field).</summary>
    internal static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);
}
