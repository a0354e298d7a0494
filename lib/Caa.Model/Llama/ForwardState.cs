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

    /// <summary>
    /// The same call with attention further restricted: a state whose mask is this one's AND <paramref name="allowed"/> (bool,
    /// broadcastable to [batch, 1, length, columns]; true = may attend). Run some blocks under it to cut paths through the
    /// network (the organism's training does); rotary tables, cache and hooks are shared, and disposing the result leaves this
    /// state intact.
    /// </summary>
    public ForwardState Restrict(Tensor allowed)
    {
        ArgumentNullException.ThrowIfNull(allowed);
        if (allowed.dtype != ScalarType.Bool) throw new ArgumentException($"the restriction must be a bool tensor; got {allowed.dtype}", nameof(allowed));
        var mask = Mask is null ? allowed.to(Cos.device).alias() : Mask.logical_and(allowed.to(Cos.device));
        return new ForwardState(Cos.alias(), Sin.alias(), mask, Offset, Cache, Hooks);
    }

    public void Dispose()
    {
        Cos.Dispose(); Sin.Dispose(); Mask?.Dispose();
    }
}
