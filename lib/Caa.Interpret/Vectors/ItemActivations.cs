using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using static TorchSharp.torch;

namespace Caa.Interpret.Vectors;

/// <summary>
/// Per-item activations at the answer-letter token, kept by extraction for PCA and similar analyses: for each layer
/// [items, hidden] with the behavior-matching answer and with the other answer, on the CPU in the model's dtype,
/// items in dataset order, plus each item's matching letter (so A-vs-B clusters can be told from behavior clusters).
/// </summary>
/// <remarks>
/// File: <c>&lt;dir&gt;/&lt;behavior&gt;.activations.safetensors</c>, tensors <c>matching.blocks.{L}.hook_resid_post</c>
/// and <c>not_matching.blocks.{L}.hook_resid_post</c>; metadata as the behavior's vectors plus "matching_letters"
/// (one letter per item, e.g. "ABBA…"). Owns its tensors.
/// </remarks>
public sealed class ItemActivations : IDisposable
{
    /// <summary>File-name ending of an activations file.</summary>
    public const string Extension = ".activations.safetensors";

    const string MatchingPrefix = "matching.", NotMatchingPrefix = "not_matching.";

    readonly SortedDictionary<int, (Tensor Matching, Tensor NotMatching)> _acts;

    internal ItemActivations(VectorMetadata metadata, IReadOnlyList<char> matchingLetters, SortedDictionary<int, (Tensor, Tensor)> acts)
    {
        Metadata = metadata; MatchingLetters = matchingLetters; _acts = acts;
    }

    /// <summary>The metadata of the vectors these activations gave.</summary>
    public VectorMetadata Metadata { get; }

    public string Behavior => Metadata.Behavior;

    /// <summary>Number of items (rows).</summary>
    public int Items => MatchingLetters.Count;

    /// <summary>Item i's behavior-matching answer letter ('A' or 'B').</summary>
    public IReadOnlyList<char> MatchingLetters { get; }

    public IReadOnlyList<int> Layers => _acts.Keys.ToArray();

    /// <summary>[items, hidden] at layer L with the behavior-matching answer; owned by this object.</summary>
    public Tensor Matching(int layer) => Get(layer).Matching;

    /// <summary>[items, hidden] at layer L with the other answer; owned by this object.</summary>
    public Tensor NotMatching(int layer) => Get(layer).NotMatching;

    (Tensor Matching, Tensor NotMatching) Get(int layer) => _acts.TryGetValue(layer, out var a) ? a
        : throw new KeyNotFoundException($"activations for '{Behavior}' have no layer {layer} (layers: {SteeringVectorSet.FormatLayers(Layers)})");

    /// <summary>
    /// The rows for PCA: every item twice (with its matching answer, then with the other), float32, labelled
    /// <c>behavior_match</c> (true for the matching row) and <c>letter</c> (A/B, the answer letter of that row).
    /// </summary>
    public Analysis.LabeledActivations ToLabeled()
    {
        var layers = new SortedDictionary<int, Tensor>();
        foreach (var (layer, (m, n)) in _acts) layers[layer] = cat([m, n], 0).to(ScalarType.Float32);
        var match = Enumerable.Repeat(true, Items).Concat(Enumerable.Repeat(false, Items)).ToArray();
        var letters = MatchingLetters.Select(c => c.ToString()).Concat(MatchingLetters.Select(c => c == 'A' ? "B" : "A")).ToArray();
        return new Analysis.LabeledActivations(layers, [Analysis.ActivationLabel.Of("behavior_match", match), Analysis.ActivationLabel.Of("letter", letters)]);
    }

    /// <summary>The file name inside <paramref name="dir"/>.</summary>
    public static string FileIn(string dir, string behavior) => Path.Combine(dir, SteeringVectorSet.CheckBehaviorId(behavior) + Extension);

    /// <summary>Saves to <see cref="FileIn"/> atomically; returns the path.</summary>
    public string Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var path = FileIn(dir, Behavior);
        var metadata = Metadata.ToDictionary();
        metadata[VectorMetadata.FormatKey] = FormatValue;
        metadata["layers"] = SteeringVectorSet.FormatLayers(Layers);
        metadata["matching_letters"] = new string(MatchingLetters.ToArray());
        SafeTensorsWriter.Write(path, _acts.SelectMany(kv => new[]
        {
            new KeyValuePair<string, Tensor>(MatchingPrefix + HookPoints.ResidPostOf(kv.Key), kv.Value.Matching),
            new KeyValuePair<string, Tensor>(NotMatchingPrefix + HookPoints.ResidPostOf(kv.Key), kv.Value.NotMatching),
        }), metadata);
        return path;
    }

    const string FormatValue = "caa.item-activations/1";

    /// <summary>Loads a file written by <see cref="Save"/>.</summary>
    public static ItemActivations Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"activations file not found: {path}", path);
        using var file = SafeTensorsFile.Open(path);
        var meta = file.Metadata.ToDictionary();
        if (!meta.TryGetValue(VectorMetadata.FormatKey, out var format) || format != FormatValue)
            throw new InvalidDataException($"{path}: not an item-activations file (metadata format '{format}', expected '{FormatValue}')");
        meta[VectorMetadata.FormatKey] = VectorMetadata.FormatValue;
        var metadata = VectorMetadata.FromDictionary(meta, path);
        var letters = meta.TryGetValue("matching_letters", out var l) ? l.ToCharArray()
            : throw new InvalidDataException($"{path}: metadata lacks \"matching_letters\"");
        var acts = new SortedDictionary<int, (Tensor, Tensor)>();
        try
        {
            foreach (var name in file.Tensors.Keys.Where(n => n.StartsWith(MatchingPrefix, StringComparison.Ordinal)))
            {
                var hook = name[MatchingPrefix.Length..];
                var other = NotMatchingPrefix + hook;
                if (!file.Tensors.ContainsKey(other)) throw new InvalidDataException($"{path}: '{name}' has no '{other}'");
                var (layer, _) = HookPoints.Parse(hook);
                var m = file.Read(name);
                var n = file.Read(other);
                acts[layer] = (m, n);
                if (m.dim() != 2 || m.shape[0] != letters.Length || m.shape[1] != metadata.HiddenSize || !m.shape.SequenceEqual(n.shape))
                    throw new InvalidDataException($"{path}: layer {layer} activations are [{string.Join(",", m.shape)}] and [{string.Join(",", n.shape)}]; expected [{letters.Length}, {metadata.HiddenSize}] each");
            }
            return new ItemActivations(metadata, letters, acts);
        }
        catch
        {
            foreach (var (m, n) in acts.Values) { m.Dispose(); n.Dispose(); }
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var (m, n) in _acts.Values) { m.Dispose(); n.Dispose(); }
        _acts.Clear();
    }
}
