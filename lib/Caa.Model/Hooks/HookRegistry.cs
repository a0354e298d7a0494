using Caa.Model.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Model.Hooks;

/// <summary>
/// The model's hook points. Every way of touching an activation goes through <see cref="Add"/> and returns a scope:
/// disposing it detaches the hook, so <c>using</c> guarantees detachment even when the forward pass throws.
/// Hooks at one point run in the order they were added.
/// </summary>
public sealed class HookRegistry
{
    readonly string[][] _names;
    readonly Dictionary<string, List<HookFunction>> _hooks = new();

    internal HookRegistry(int layers)
    {
        _names = Enumerable.Range(0, layers).Select(l => HookPoints.PerBlock.Select(p => HookPoints.Name(l, p)).ToArray()).ToArray();
    }

    /// <summary>Number of blocks, i.e. valid layer indices are 0 … Layers−1.</summary>
    public int Layers => _names.Length;

    /// <summary>Number of hooks attached now.</summary>
    public int Count => _hooks.Values.Sum(l => l.Count);

    /// <summary>Attaches <paramref name="hook"/> at hook point <paramref name="name"/> until the returned scope is disposed.</summary>
    public IDisposable Add(string name, HookFunction hook)
    {
        var (layer, _) = HookPoints.Parse(name);
        if (layer >= Layers) throw new ArgumentOutOfRangeException(nameof(name), $"'{name}': the model has {Layers} blocks (0…{Layers - 1})");
        if (!_hooks.TryGetValue(name, out var list)) _hooks[name] = list = [];
        list.Add(hook);
        return new Detach(() =>
        {
            list.Remove(hook);
            if (list.Count == 0) _hooks.Remove(name);
        });
    }

    /// <summary>
    /// Records activations during forward passes until disposed. With <paramref name="columns"/> ([batch] or [batch, k] int64,
    /// in input columns) only those positions are kept, gathered during the pass, so capturing every layer costs little memory;
    /// without it the whole [batch, length, hidden] activation is kept, concatenated over cached decoding calls.
    /// </summary>
    /// <param name="names">Hook point names, e.g. every layer's <c>resid_post</c>.</param>
    /// <param name="columns">Positions to keep per row, or null for all.</param>
    /// <param name="storeOn">Device to keep the copies on (e.g. CPU for long runs on a GPU); default: where they were computed.</param>
    public ActivationCapture Capture(IEnumerable<string> names, Tensor? columns = null, Device? storeOn = null)
    {
        var capture = new ActivationCapture(columns, storeOn);
        var scopes = names.Distinct().Select(n => Add(n, capture.Record)).ToList();
        capture.OnDispose(() => { foreach (var s in scopes) s.Dispose(); });
        return capture;
    }

    /// <summary>
    /// Adds <c>multipliers[b] × vector</c> to the activation at <paramref name="name"/> for every selected position of row b.
    /// </summary>
    /// <param name="name">Hook point, e.g. <c>blocks.13.hook_resid_post</c>.</param>
    /// <param name="vector">[hidden], any dtype/device: converted once to the activation's.</param>
    /// <param name="multipliers">One per batch row ([batch]) or a scalar tensor for all rows.</param>
    /// <param name="positions">Where to add; CAA uses <see cref="PositionMask.From"/> the end of the instruction.</param>
    public IDisposable AddVector(string name, Tensor vector, Tensor multipliers, PositionMask positions)
    {
        if (vector.dim() != 1) throw new ArgumentException($"steering vector for {name} must be 1-D [hidden]; got [{string.Join(",", vector.shape)}]");
        var v = vector.detach().clone().DetachFromDisposeScope();
        var m = multipliers.detach().clone().to(ScalarType.Float32).DetachFromDisposeScope();
        var scope = Add(name, (x, ctx) =>
        {
            if (x.shape[^1] != v.shape[0]) throw new ArgumentException($"steering vector for {name} has {v.shape[0]} dims; the activation has {x.shape[^1]}");
            using var _ = NewDisposeScope();
            var rows = m.dim() == 0 ? m.expand(ctx.Batch) : m;
            if (rows.shape[0] != ctx.Batch) throw new ArgumentException($"{rows.shape[0]} multipliers for {name} but the batch has {ctx.Batch} rows");
            var mask = positions.Evaluate(ctx).to(ScalarType.Float32);                        // [B,T]
            var scale = (mask * rows.to(ctx.Device).unsqueeze(1)).unsqueeze(-1);               // [B,T,1]
            var delta = scale * v.to(ScalarType.Float32).to(ctx.Device).view(1, 1, -1);        // [B,T,H] in fp32
            return x.Plus(delta.to(x.dtype)).MoveToOuterDisposeScope();
        });
        return new Detach(() => { scope.Dispose(); v.Dispose(); m.Dispose(); });
    }

    /// <summary>Replaces the activation at the selected positions with <paramref name="value"/> ([hidden] or [batch, hidden]).</summary>
    public IDisposable Replace(string name, Tensor value, PositionMask positions)
    {
        var r = value.detach().clone().DetachFromDisposeScope();
        var scope = Add(name, (x, ctx) =>
        {
            using var _ = NewDisposeScope();
            var rep = (r.dim() == 1 ? r.view(1, 1, -1) : r.unsqueeze(1)).to(x.dtype).to(ctx.Device).expand_as(x);
            var mask = positions.Evaluate(ctx).unsqueeze(-1);
            return where(mask, rep, x).MoveToOuterDisposeScope();
        });
        return new Detach(() => { scope.Dispose(); r.Dispose(); });
    }

    /// <summary>Detaches every hook. Scopes already handed out become no-ops.</summary>
    public void Clear() => _hooks.Clear();

    /// <summary>Runs the hooks at (layer, point index into <see cref="HookPoints.PerBlock"/>), if any.</summary>
    internal Tensor Run(int layer, int point, Tensor x, long offset)
    {
        if (_hooks.Count == 0 || !_hooks.TryGetValue(_names[layer][point], out var list)) return x;
        var ctx = new HookContext(layer, HookPoints.PerBlock[point], x.shape[0], offset, x.shape[1], x.device);
        foreach (var hook in list.ToArray()) x = hook(x, ctx);
        return x;
    }

    sealed class Detach(Action action) : IDisposable
    {
        Action? _action = action;
        public void Dispose() { Interlocked.Exchange(ref _action, null)?.Invoke(); }
    }
}
