using System.Globalization;
using System.Text.RegularExpressions;
using Caa.Model.Checkpoints;
using Caa.Model.Hooks;
using Caa.Model.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace Caa.Interpret.Vectors;

/// <summary>
/// The steering vectors of one behavior at several layers: <c>this[L]</c> is a float32 CPU tensor [hidden] to add to
/// the output of block L (<c>blocks.{L}.hook_resid_post</c>), with the <see cref="VectorMetadata"/> saying where it came from.
/// </summary>
/// <remarks>
/// On disk: one safetensors file per behavior, <c>&lt;dir&gt;/&lt;behavior&gt;.safetensors</c>, one float32 tensor per
/// layer named by its hook point (<c>blocks.{L}.hook_resid_post</c>), the metadata in <c>__metadata__</c> (string values;
/// "layers" lists the layers). The set owns its tensors: dispose it to free them (they are small).
/// </remarks>
public sealed partial class SteeringVectorSet : IDisposable
{
    /// <summary>File extension of a vector file.</summary>
    public const string Extension = ".safetensors";

    readonly SortedDictionary<int, Tensor> _vectors;

    /// <summary>
    /// A set from <paramref name="vectors"/> (layer → [hidden] in any dtype/device); each is copied to a contiguous
    /// float32 CPU tensor, so the caller keeps ownership of what it passed.
    /// </summary>
    /// <exception cref="ArgumentException">No vectors, a bad behavior id, a negative layer, or a vector that is not [metadata.HiddenSize].</exception>
    public SteeringVectorSet(VectorMetadata metadata, IReadOnlyDictionary<int, Tensor> vectors)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(vectors);
        CheckBehaviorId(metadata.Behavior);
        if (vectors.Count == 0) throw new ArgumentException($"steering vectors for '{metadata.Behavior}': no layers given", nameof(vectors));
        _vectors = new SortedDictionary<int, Tensor>();
        try
        {
            foreach (var (layer, v) in vectors)
            {
                if (layer < 0) throw new ArgumentException($"steering vectors for '{metadata.Behavior}': layer {layer} is negative", nameof(vectors));
                if (v.dim() != 1 || v.shape[0] != metadata.HiddenSize)
                    throw new ArgumentException($"steering vector for '{metadata.Behavior}' at layer {layer} has shape [{string.Join(",", v.shape)}]; expected [{metadata.HiddenSize}] (hidden size)", nameof(vectors));
                using var _ = no_grad();
                using var scope = NewDisposeScope();
                _vectors[layer] = v.detach().to(ScalarType.Float32).cpu().contiguous().clone().DetachFromDisposeScope();
            }
        }
        catch
        {
            foreach (var t in _vectors.Values) t.Dispose();
            throw;
        }
        Metadata = metadata;
    }

    /// <summary>Where the vectors came from.</summary>
    public VectorMetadata Metadata { get; }

    /// <summary>Behavior id (= <see cref="VectorMetadata.Behavior"/>).</summary>
    public string Behavior => Metadata.Behavior;

    /// <summary>Layers held, ascending.</summary>
    public IReadOnlyList<int> Layers => _vectors.Keys.ToArray();

    /// <summary>The vector for block <paramref name="layer"/>'s output: float32 CPU [hidden], owned by the set (clone to keep it past Dispose).</summary>
    public Tensor this[int layer] => _vectors.TryGetValue(layer, out var v) ? v
        : throw new KeyNotFoundException($"steering vectors for '{Behavior}' have no layer {layer} (layers: {FormatLayers(Layers)})");

    /// <summary>L2 norm of the vector at <paramref name="layer"/> (computed in float64).</summary>
    public double Norm(int layer)
    {
        using var _ = NewDisposeScope();
        return this[layer].to(ScalarType.Float64).norm().item<double>();
    }

    /// <summary>The file this set is saved as inside <paramref name="dir"/>: <c>&lt;dir&gt;/&lt;behavior&gt;.safetensors</c>.</summary>
    public static string FileIn(string dir, string behavior) => Path.Combine(dir, CheckBehaviorId(behavior) + Extension);

    /// <summary>Saves to <see cref="FileIn"/>(<paramref name="dir"/>, <see cref="Behavior"/>), atomically; returns the path.</summary>
    public string Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var path = FileIn(dir, Behavior);
        SaveFile(path);
        return path;
    }

    /// <summary>Saves to exactly <paramref name="path"/> (atomically: readers see the old file or the new one).</summary>
    public void SaveFile(string path)
    {
        var metadata = Metadata.ToDictionary();
        metadata["layers"] = string.Join(",", Layers);
        SafeTensorsWriter.Write(path, _vectors.Select(kv => new KeyValuePair<string, Tensor>(HookPoints.ResidPostOf(kv.Key), kv.Value)), metadata);
    }

    /// <summary>Loads a file written by <see cref="Save"/>.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a steering-vector file, or its tensors contradict its metadata.</exception>
    public static SteeringVectorSet Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"steering-vector file not found: {path}", path);
        using var file = SafeTensorsFile.Open(path);
        var metadata = VectorMetadata.FromDictionary(file.Metadata, path);
        var vectors = new Dictionary<int, Tensor>();
        try
        {
            foreach (var (name, info) in file.Tensors)
            {
                var (layer, point) = ParseHookPoint(name, path);
                if (point != HookPoints.ResidPost)
                    throw new InvalidDataException($"{path}: tensor '{name}' is not at a resid_post hook point (expected blocks.{{L}}.{HookPoints.ResidPost})");
                if (info.ScalarType != ScalarType.Float32 || info.Shape.Length != 1 || info.Shape[0] != metadata.HiddenSize)
                    throw new InvalidDataException($"{path}: tensor '{name}' is {info.DType} [{string.Join(",", info.Shape)}]; expected F32 [{metadata.HiddenSize}] (hidden_size in the metadata)");
                vectors[layer] = file.Read(name);
            }
            var listed = file.Metadata.TryGetValue("layers", out var l) ? l : "";
            if (listed != string.Join(",", vectors.Keys.Order()))
                throw new InvalidDataException($"{path}: metadata lists layers '{listed}' but the file holds tensors for layers '{FormatLayers(vectors.Keys.Order().ToArray())}'");
            return new SteeringVectorSet(metadata, vectors);
        }
        finally
        {
            foreach (var t in vectors.Values) t.Dispose();
        }
    }

    /// <summary>Loads a file and checks it against <paramref name="model"/> (see <see cref="EnsureCompatible"/>).</summary>
    public static SteeringVectorSet Load(string path, LlamaForCausalLM model)
    {
        var set = Load(path);
        try { set.EnsureCompatible(model); }
        catch { set.Dispose(); throw; }
        return set;
    }

    /// <summary>
    /// Every steering-vector file in <paramref name="dir"/> and its subfolders (<c>*.safetensors</c>, except per-item
    /// activation files <c>*.activations.safetensors</c>), ordered by behavior.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    /// <exception cref="InvalidDataException">None found, or two files for one behavior.</exception>
    public static IReadOnlyList<SteeringVectorSet> LoadFolder(string dir)
    {
        var files = FilesIn(dir);
        var sets = new List<SteeringVectorSet>();
        try
        {
            foreach (var f in files)
            {
                var set = Load(f);
                sets.Add(set);
                var twin = sets.FirstOrDefault(s => s != set && s.Behavior == set.Behavior);
                if (twin is not null)
                    throw new InvalidDataException($"{dir}: two files hold vectors for behavior '{set.Behavior}': {files[sets.IndexOf(twin)]} and {f}");
            }
            return sets.OrderBy(s => s.Behavior, StringComparer.Ordinal).ToList();
        }
        catch
        {
            foreach (var s in sets) s.Dispose();
            throw;
        }
    }

    /// <summary>The vector files <see cref="LoadFolder"/> would read, sorted by path.</summary>
    public static IReadOnlyList<string> FilesIn(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"steering-vector folder not found: {dir}");
        var files = Directory.EnumerateFiles(dir, "*" + Extension, SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(ItemActivations.Extension, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new InvalidDataException($"{dir}: no steering-vector files (*{Extension}) found");
        return files;
    }

    /// <summary>
    /// Refuses to steer <paramref name="model"/> with vectors extracted from a different architecture: throws unless
    /// the hidden size and <see cref="Caa.Model.LlamaConfig.ArchitectureHash"/> match and every layer exists in the model.
    /// </summary>
    /// <exception cref="InvalidOperationException">Naming both the vectors' and the model's values.</exception>
    public void EnsureCompatible(LlamaForCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        if (Metadata.HiddenSize != c.HiddenSize || Metadata.ArchitectureHash != c.ArchitectureHash)
            throw new InvalidOperationException(
                $"steering vectors for '{Behavior}' were extracted from a model with hidden size {Metadata.HiddenSize} and architecture hash {Metadata.ArchitectureHash} " +
                $"({Metadata.ModelSource}), but the model to steer ({model.Source}) has hidden size {c.HiddenSize} and architecture hash {c.ArchitectureHash}; " +
                "extract vectors for this model instead");
        var beyond = Layers.Where(l => l >= c.NumHiddenLayers).ToArray();
        if (beyond.Length > 0)
            throw new InvalidOperationException($"steering vectors for '{Behavior}' include layers {FormatLayers(beyond)}, but the model ({model.Source}) has {c.NumHiddenLayers} blocks (0…{c.NumHiddenLayers - 1})");
    }

    public void Dispose()
    {
        foreach (var t in _vectors.Values) t.Dispose();
        _vectors.Clear();
    }

    public override string ToString() => $"{Behavior}: layers {FormatLayers(Layers)}, hidden {Metadata.HiddenSize}, {Metadata.Items} items, normalization {Metadata.Normalization}";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex BehaviorIdForm();

    /// <summary>Behavior ids become file names: letters, digits, '.', '_' and '-', starting with a letter or digit.</summary>
    internal static string CheckBehaviorId(string behavior)
    {
        if (string.IsNullOrEmpty(behavior) || !BehaviorIdForm().IsMatch(behavior) || behavior.EndsWith(".activations", StringComparison.Ordinal))
            throw new ArgumentException($"behavior id '{behavior}' is not usable as a file name: use letters, digits, '.', '_' and '-' (e.g. 'sycophancy', 'corrigible-neutral-HHH')");
        return behavior;
    }

    static (int Layer, string Point) ParseHookPoint(string name, string source)
    {
        try { return HookPoints.Parse(name); }
        catch (ArgumentException e) { throw new InvalidDataException($"{source}: tensor '{name}' is not named by a hook point: {e.Message}", e); }
    }

    internal static string FormatLayers(IEnumerable<int> layers) => string.Join(",", layers.Select(l => l.ToString(CultureInfo.InvariantCulture)));
}
