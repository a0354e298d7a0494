using Caa.Interpret.Vectors;
using Caa.Model;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using static TorchSharp.torch;

namespace Caa.Interpret.Steering;

/// <summary>
/// One vector added at one layer: <c>multiplier × vector</c> to the output of block <paramref name="Layer"/>.
/// <paramref name="Multipliers"/> holds one value for every row, or one per batch row.
/// </summary>
public sealed record SteeringTerm(int Layer, Tensor Vector, IReadOnlyList<double> Multipliers)
{
    /// <summary>The same multiplier for every row.</summary>
    public SteeringTerm(int layer, Tensor vector, double multiplier) : this(layer, vector, [multiplier]) { }
}

/// <summary>
/// Steering with CAA's rule: add <c>multiplier × vector</c> to the output of block L (<c>blocks.{L}.hook_resid_post</c>)
/// at every position from the end of the instruction (the <c>]</c> of the last <c>[/INST]</c>) on, generated tokens
/// included. The returned scope detaches every hook on Dispose, also when a forward pass threw:
/// <code>using (Steer.Apply(model, vectors, 13, 1.0, Steer.StartColumns(batch, prompts, tok))) { … }</code>
/// </summary>
public static class Steer
{
    /// <summary>Adds <paramref name="multiplier"/> × <paramref name="vector"/> at <paramref name="layer"/> from each row's start column on.</summary>
    /// <param name="model">The model to steer.</param>
    /// <param name="vector">[hidden], any dtype/device.</param>
    /// <param name="layer">Block index.</param>
    /// <param name="multiplier">Steering strength (negative steers away from the behavior).</param>
    /// <param name="startColumns">Per batch row, the first column to steer (see <see cref="StartColumns(TokenBatch, IReadOnlyList{IReadOnlyList{int}}, Llama2Tokenizer)"/>);
    /// −1 steers every column of that row.</param>
    public static IDisposable Apply(LlamaForCausalLM model, Tensor vector, int layer, double multiplier, IReadOnlyList<long> startColumns) =>
        Apply(model, [new SteeringTerm(layer, vector, multiplier)], startColumns);

    /// <summary>As <see cref="Apply(LlamaForCausalLM, Tensor, int, double, IReadOnlyList{long})"/> with one multiplier per batch row.</summary>
    public static IDisposable Apply(LlamaForCausalLM model, Tensor vector, int layer, IReadOnlyList<double> multipliers, IReadOnlyList<long> startColumns) =>
        Apply(model, [new SteeringTerm(layer, vector, multipliers)], startColumns);

    /// <summary>Steers with a saved vector set's vector at <paramref name="layer"/>, after checking the set fits the model (<see cref="SteeringVectorSet.EnsureCompatible"/>).</summary>
    public static IDisposable Apply(LlamaForCausalLM model, SteeringVectorSet vectors, int layer, double multiplier, IReadOnlyList<long> startColumns) =>
        Apply(model, vectors, layer, [multiplier], startColumns);

    /// <summary>As above, one multiplier per batch row.</summary>
    public static IDisposable Apply(LlamaForCausalLM model, SteeringVectorSet vectors, int layer, IReadOnlyList<double> multipliers, IReadOnlyList<long> startColumns)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        vectors.EnsureCompatible(model);
        return Apply(model, [new SteeringTerm(layer, vectors[layer], multipliers)], startColumns);
    }

    /// <summary>
    /// Adds several terms at once (different layers, or the same layer, in order). Everything is checked before any
    /// hook is attached; the returned scope detaches all of them.
    /// </summary>
    /// <exception cref="ArgumentException">A layer outside the model, a vector that is not [hidden], or multipliers that are neither one nor one per row.</exception>
    public static IDisposable Apply(LlamaForCausalLM model, IEnumerable<SteeringTerm> terms, IReadOnlyList<long> startColumns)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(terms);
        ArgumentNullException.ThrowIfNull(startColumns);
        var list = terms.ToList();
        var c = model.Config;
        foreach (var t in list)
        {
            if (t.Layer < 0 || t.Layer >= c.NumHiddenLayers)
                throw new ArgumentException($"steering layer {t.Layer} is outside the model's blocks 0…{c.NumHiddenLayers - 1}", nameof(terms));
            if (t.Vector.dim() != 1 || t.Vector.shape[0] != c.HiddenSize)
                throw new ArgumentException($"steering vector for layer {t.Layer} has shape [{string.Join(",", t.Vector.shape)}]; the model's hidden size is {c.HiddenSize}", nameof(terms));
            if (t.Multipliers.Count != 1 && t.Multipliers.Count != startColumns.Count)
                throw new ArgumentException($"layer {t.Layer}: {t.Multipliers.Count} multipliers for {startColumns.Count} rows; give one for all rows or one per row", nameof(terms));
        }
        var positions = PositionMask.From(startColumns);
        var scopes = new List<IDisposable>();
        try
        {
            foreach (var t in list)
            {
                using var m = t.Multipliers.Count == 1 ? tensor((float)t.Multipliers[0]) : tensor(t.Multipliers.Select(x => (float)x).ToArray());
                scopes.Add(model.Hooks.AddVector(HookPoints.ResidPostOf(t.Layer), t.Vector, m, positions));
            }
        }
        catch
        {
            Detach(scopes);
            throw;
        }
        return new Scope(scopes);
    }

    /// <summary>
    /// Where CAA steering starts in each row of a left-padded batch of chat prompts: the column of the <c>]</c> of the
    /// row's last <c>[/INST]</c>, or −1 (every column) where the row has none.
    /// </summary>
    /// <param name="batch">The batch built from <paramref name="prompts"/> by <see cref="TokenBatch.LeftPad"/>.</param>
    /// <param name="prompts">The token ids of each row, unpadded.</param>
    /// <param name="tok">The tokenizer (to find <c>[/INST]</c>).</param>
    public static long[] StartColumns(TokenBatch batch, IReadOnlyList<IReadOnlyList<int>> prompts, Llama2Tokenizer tok)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count != batch.Rows) throw new ArgumentException($"{prompts.Count} prompts for a batch of {batch.Rows} rows", nameof(prompts));
        for (var row = 0; row < prompts.Count; row++)
            if (batch.Padding[row] + prompts[row].Count != batch.Columns)
                throw new ArgumentException($"prompt {row} has {prompts[row].Count} tokens but batch row {row} holds {batch.Columns - batch.Padding[row]}: not the batch of these prompts", nameof(prompts));
        return StartColumns(prompts, tok); // the batch is these prompts left-padded to the longest
    }

    /// <summary>
    /// The start columns for <paramref name="prompts"/> left-padded to the longest, as <see cref="TokenBatch.LeftPad"/> and
    /// <c>model.Generate(prompts)</c> do.
    /// </summary>
    public static long[] StartColumns(IReadOnlyList<IReadOnlyList<int>> prompts, Llama2Tokenizer tok)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var width = prompts.Count == 0 ? 0 : prompts.Max(p => p.Count);
        return prompts.Select(p =>
        {
            var end = Llama2Chat.InstructionEnd(p, tok);
            return end < 0 ? -1L : width - p.Count + end;
        }).ToArray();
    }

    static void Detach(List<IDisposable> scopes)
    {
        for (var i = scopes.Count - 1; i >= 0; i--) scopes[i].Dispose();
        scopes.Clear();
    }

    sealed class Scope(List<IDisposable> scopes) : IDisposable
    {
        public void Dispose() => Detach(scopes);
    }
}
