using Caa.Model.Runtime;
using static TorchSharp.torch;

namespace Caa.Model.Llama;

/// <summary>
/// Rotary position embedding in Hugging Face's "rotate_half" convention (HF checkpoints permute q/k rows for it;
/// Meta/llama2.c checkpoints use interleaved pairs instead). cos/sin are computed in float32 and cast to the model dtype.
/// </summary>
public static class Rotary
{
    /// <summary>cos and sin, each [batch, length, headDim], for integer positions [batch, length].</summary>
    public static (Tensor Cos, Tensor Sin) CosSin(Tensor positions, int headDim, double theta, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        // Same arithmetic and precision as HF's LlamaRotaryEmbedding: float32 inverse frequencies and angles.
        var exponents = arange(0, headDim, 2, dtype: ScalarType.Int64, device: positions.device).to(ScalarType.Float32) / headDim;
        var invFreq = 1.0f / pow(tensor((float)theta, device: positions.device), exponents);
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * invFreq.view(1, 1, -1);   // [B,T,D/2]
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to(dtype).MoveToOuterDisposeScope(), emb.sin().to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>Applies the rotation to x [batch, heads, length, headDim] with cos/sin [batch, length, headDim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = (int)(x.shape[^1] / 2);
        var rotated = cat([-x[.., .., .., half..], x[.., .., .., ..half]], -1);
        return (x * cos.unsqueeze(1)).Plus(rotated * sin.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
