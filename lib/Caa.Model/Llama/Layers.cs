using Caa.Model.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Caa.Model.Llama;

#pragma warning disable IDE1006 // field names are Hugging Face's parameter names, so checkpoints load without a mapping table

/// <summary>
/// A bias-free linear layer whose weight starts uninitialized (and outside any DisposeScope: weights must outlive the scope a model is built in). TorchSharp's nn.Linear draws a random initialization
/// on construction, which costs minutes for a 7B model on CPU and is thrown away when the checkpoint loads.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    public Parameter weight;

    public Linear(long inFeatures, long outFeatures, ScalarType dtype, Device device) : base(nameof(Linear))
    {
        weight = new Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device).DetachFromDisposeScope(), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => F.linear(x, weight);
}

/// <summary>Token embedding with an uninitialized weight (see <see cref="Linear"/>).</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    public Parameter weight;

    public Embedding(long vocab, long dim, ScalarType dtype, Device device) : base(nameof(Embedding))
    {
        weight = new Parameter(empty(vocab, dim, dtype: dtype, device: device).DetachFromDisposeScope(), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.flatten()).view([.. ids.shape, weight.shape[1]]);
}

/// <summary>
/// Llama's RMSNorm exactly as Hugging Face computes it: normalize in float32, cast back, then scale. Hand-written
/// because the cast order matters for bf16/fp16 agreement with HF, which a generic RMSNorm does not promise.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    public Parameter weight;
    readonly Scalar _eps; // held by the module, so it outlives every native call that reads it (see KeptScalars)

    public RmsNorm(long dim, double eps, ScalarType dtype, Device device) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(dim, dtype: dtype, device: device).DetachFromDisposeScope(), requires_grad: false);
        _eps = eps.ToScalar();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.to(ScalarType.Float32);
        var normed = h * h.square().mean([-1], keepdim: true).Plus(_eps).rsqrt();
        return (weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>SwiGLU feed-forward: down_proj(silu(gate_proj(x)) · up_proj(x)).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    public Linear gate_proj, up_proj, down_proj;

    public LlamaMlp(LlamaConfig c, ScalarType dtype, Device device) : base(nameof(LlamaMlp))
    {
        gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, dtype, device);
        up_proj = new Linear(c.HiddenSize, c.IntermediateSize, dtype, device);
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, dtype, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.call(F.silu(gate_proj.call(x)) * up_proj.call(x)).MoveToOuterDisposeScope();
    }
}
