using Caa.Model.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Caa.Model.Llama;

#pragma warning disable IDE1006 // Hugging Face parameter names

/// <summary>Grouped-query self-attention with rotary embeddings and an optional KV cache.</summary>
public sealed class LlamaAttention : nn.Module
{
    public Linear q_proj, k_proj, v_proj, o_proj;
    readonly int _heads, _kvHeads, _headDim;

    public LlamaAttention(LlamaConfig c, ScalarType dtype, Device device) : base(nameof(LlamaAttention))
    {
        _heads = c.NumAttentionHeads; _kvHeads = c.KeyValueHeads; _headDim = c.HeadDim;
        q_proj = new Linear(c.HiddenSize, _heads * _headDim, dtype, device);
        k_proj = new Linear(c.HiddenSize, _kvHeads * _headDim, dtype, device);
        v_proj = new Linear(c.HiddenSize, _kvHeads * _headDim, dtype, device);
        o_proj = new Linear(_heads * _headDim, c.HiddenSize, dtype, device);
        RegisterComponents();
    }

    /// <summary>x [batch, length, hidden] → [batch, length, hidden].</summary>
    public Tensor Forward(Tensor x, ForwardState s, int layer)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.call(x).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = k_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.call(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = Rotary.Apply(q, s.Cos, s.Sin);
        k = Rotary.Apply(k, s.Cos, s.Sin);
        if (s.Cache is not null) (k, v) = s.Cache.Append(layer, k, v);
        if (_kvHeads != _heads)
        {
            // HF's repeat_kv: query head h reads K/V head h / (heads / kvHeads).
            k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
            v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        }
        var o = F.scaled_dot_product_attention(q, k, v, attn_mask: s.Mask);
        return o_proj.call(o.transpose(1, 2).reshape(b, t, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>One pre-norm decoder block, with its five hook points.</summary>
public sealed class LlamaDecoderLayer : nn.Module
{
    public LlamaAttention self_attn;
    public LlamaMlp mlp;
    public RmsNorm input_layernorm, post_attention_layernorm;
    readonly int _index;

    public LlamaDecoderLayer(LlamaConfig c, int index, ScalarType dtype, Device device) : base(nameof(LlamaDecoderLayer))
    {
        _index = index;
        self_attn = new LlamaAttention(c, dtype, device);
        mlp = new LlamaMlp(c, dtype, device);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    /// <summary>resid_pre → attn_out → resid_mid → mlp_out → resid_post, each passed through its hooks.</summary>
    public Tensor Forward(Tensor x, ForwardState s)
    {
        using var scope = NewDisposeScope();
        var hooks = s.Hooks;
        var residPre = hooks.Run(_index, 0, x, s.Offset);
        var attnOut = hooks.Run(_index, 1, self_attn.Forward(input_layernorm.call(residPre), s, _index), s.Offset);
        var residMid = hooks.Run(_index, 2, residPre.Plus(attnOut), s.Offset);
        var mlpOut = hooks.Run(_index, 3, mlp.call(post_attention_layernorm.call(residMid)), s.Offset);
        var residPost = hooks.Run(_index, 4, residMid.Plus(mlpOut), s.Offset);
        return residPost.MoveToOuterDisposeScope();
    }
}
