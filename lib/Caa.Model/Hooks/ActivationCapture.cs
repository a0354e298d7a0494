using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model.Hooks;

/// <summary>Activations recorded by <see cref="HookRegistry.Capture"/>. Dispose to detach the hooks and free the copies.</summary>
public sealed class ActivationCapture : IDisposable
{
    readonly Tensor? _columns;
    readonly Device? _storeOn;
    readonly Dictionary<string, Tensor> _store = new();
    Action? _detach;

    internal ActivationCapture(Tensor? columns, Device? storeOn)
    {
        if (columns is not null && columns.dim() is not (1 or 2))
            throw new ArgumentException($"capture columns must be [batch] or [batch, k]; got [{string.Join(",", columns.shape)}]");
        _columns = columns?.detach().clone().to(ScalarType.Int64).DetachFromDisposeScope();
        _storeOn = storeOn;
    }

    internal void OnDispose(Action detach) => _detach = detach;

    /// <summary>Names recorded so far.</summary>
    public IReadOnlyCollection<string> Names => _store.Keys;

    /// <summary>
    /// The recorded activation: [batch, hidden] for one column per row, [batch, k, hidden] for k columns,
    /// [batch, length, hidden] without columns. Owned by the capture: clone it to keep it past <see cref="Dispose"/>.
    /// </summary>
    public Tensor this[string name] => _store.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"nothing was captured at '{name}' (captured: {string.Join(", ", _store.Keys)})");

    internal Tensor Record(Tensor x, HookContext ctx)
    {
        using var scope = NewDisposeScope();
        Tensor kept;
        if (_columns is null)
        {
            kept = x.detach();
            if (_store.Remove(ctx.Name, out var previous))
            {
                kept = cat([previous, kept.to(previous.device)], 1);
                previous.Dispose();
            }
            else kept = kept.clone();
        }
        else
        {
            var cols = _columns.to(ctx.Device);
            var local = (cols.dim() == 1 ? cols.unsqueeze(1) : cols) - ctx.Offset;             // [B,K]
            if (local.shape[0] != ctx.Batch) throw new ArgumentException($"capture has columns for {local.shape[0]} rows but the batch has {ctx.Batch}");
            // Columns outside this call (e.g. during cached decoding) are simply not recorded by it.
            if (local.min().item<long>() < 0 || local.max().item<long>() >= ctx.Length) return x;
            var index = local.unsqueeze(-1).expand(-1, -1, x.shape[^1]);
            kept = x.detach().gather(1, index);
            if (_columns.dim() == 1) kept = kept.squeeze(1);
            if (_store.Remove(ctx.Name, out var previous)) previous.Dispose();
        }
        if (_storeOn is not null) kept = kept.to(_storeOn);
        _store[ctx.Name] = kept.DetachFromDisposeScope();
        return x;
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _detach, null)?.Invoke();
        foreach (var t in _store.Values) t.Dispose();
        _store.Clear();
        _columns?.Dispose();
    }
}
