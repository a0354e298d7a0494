using Caa.Model.Hooks;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model.Llama;

/// <summary>
/// What every block needs for one forward call: rotary tables for each row's positions, the attention mask,
/// the KV cache and the hooks. Built once per call by <see cref="LlamaForCausalLM.Prepare"/>.
/// </summary>
public sealed class ForwardState : IDisposable
{
    internal ForwardState(Tensor cos, Tensor sin, Tensor? mask, long offset, KvCache? cache, HookRegistry hooks)
    {
        Cos = cos; Sin = sin; Mask = mask; Offset = offset; Cache = cache; Hooks = hooks;
    }

    public Tensor Cos { get; }
    public Tensor Sin { get; }
    /// <summary>Bool [batch, 1, length, columns] (true = may attend), or null when plain causal attention over one new token suffices.</summary>
    public Tensor? Mask { get; }
    /// <summary>Columns already cached before this call.</summary>
    public long Offset { get; }
    public KvCache? Cache { get; }
    public HookRegistry Hooks { get; }

    public void Dispose()
    {
        Cos.Dispose(); Sin.Dispose(); Mask?.Dispose();
    }
}
