using System.Text.RegularExpressions;
using Caa.Model.Checkpoints;
using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace Caa.Interpret.Analysis;

/// <summary>A label for each item of an activations file (see <see cref="AnalysisFiles"/>).</summary>
/// <param name="Name">Column name, e.g. behavior_match, letter.</param>
/// <param name="Values">One integer per item (an index into <paramref name="Categories"/> when given).</param>
/// <param name="Categories">Names of the values 0…K−1 (e.g. ["A","B"]); null for plain integers.</param>
/// <param name="IsBool">Stored as a BOOL tensor and read back as true/false.</param>
public sealed record ActivationLabel(string Name, long[] Values, IReadOnlyList<string>? Categories = null, bool IsBool = false)
{
    /// <summary>A true/false label (e.g. behavior_match).</summary>
    public static ActivationLabel Of(string name, IReadOnlyList<bool> values) => new(name, values.Select(v => v ? 1L : 0L).ToArray(), null, true);

    /// <summary>A categorical label (e.g. letter A/B); categories are the distinct values in ordinal order.</summary>
    public static ActivationLabel Of(string name, IReadOnlyList<string> values)
    {
        var cats = values.Distinct().Order(StringComparer.Ordinal).ToArray();
        return new(name, values.Select(v => (long)Array.IndexOf(cats, v)).ToArray(), cats);
    }

    /// <summary>An integer label.</summary>
    public static ActivationLabel Of(string name, IReadOnlyList<long> values) => new(name, values.ToArray());

    /// <summary>As a DataFrame column: Boolean, String (with categories) or Int64.</summary>
    public DataFrameColumn ToColumn() =>
        IsBool ? new BooleanDataFrameColumn(Name, Values.Select(v => v != 0))
        : Categories is { } c ? new StringDataFrameColumn(Name, Values.Select(v => v >= 0 && v < c.Count ? c[(int)v] : v.ToString()))
        : new Int64DataFrameColumn(Name, Values);
}

/// <summary>Per-layer activations [N, H] with per-item labels, as read by <see cref="AnalysisFiles.ReadActivations"/>.</summary>
public sealed class LabeledActivations(SortedDictionary<int, Tensor> layers, IReadOnlyList<ActivationLabel> labels) : IDisposable
{
    /// <summary>Activations [N, H] by layer, ascending.</summary>
    public SortedDictionary<int, Tensor> Layers { get; } = layers;
    /// <summary>Per-item labels, ordered by name (ordinal).</summary>
    public IReadOnlyList<ActivationLabel> Labels { get; } = labels;
    /// <summary>Labels as DataFrame columns.</summary>
    public DataFrameColumn[] LabelColumns() => Labels.Select(l => l.ToColumn()).ToArray();
    /// <summary>Disposes the tensors.</summary>
    public void Dispose() { foreach (var t in Layers.Values) t.Dispose(); }
}

/// <summary>
/// File formats of the analysis inputs (both safetensors, written with <see cref="SafeTensorsWriter"/>).
/// </summary>
/// <remarks>
/// <para><b>Activations file</b> (input of <c>caa analyze pca</c>; written by extraction):
/// tensors <c>blocks.{L}.hook_resid_post</c> [N, H] (F32/F16/BF16/F64) — the activation of each of N prompts at the
/// answer-letter token after block L, one tensor per layer, same N items in the same order at every layer; and
/// <c>labels.{name}</c> [N] (BOOL, U8, I32 or I64) — one value per item, e.g. <c>labels.behavior_match</c> (BOOL or
/// 0/1: whether the answer in the prompt is the behavior-matching one) and <c>labels.letter</c> (0 = A, 1 = B).
/// Optional header metadata <c>"labels.{name}": "A,B"</c> names the values 0…K−1 (comma-separated); BOOL labels read
/// as true/false; other integer labels without names read as integers. Other tensors and metadata are ignored.</para>
/// <para><b>Vector file</b> (input of <c>caa analyze cosine</c>): <c>&lt;dir&gt;/&lt;behavior&gt;.safetensors</c> with
/// tensors <c>blocks.{L}.hook_resid_post</c> [H] (one steering vector per layer); the behavior name is the file name.</para>
/// </remarks>
public static partial class AnalysisFiles
{
    /// <summary>Prefix of label tensors and their category metadata.</summary>
    public const string LabelPrefix = "labels.";

    /// <summary>Reads an activations file (float32 tensors on the CPU); <paramref name="layers"/> restricts the layers read.</summary>
    /// <exception cref="InvalidDataException">No layer tensors, a wrong shape, or labels that disagree with N.</exception>
    public static LabeledActivations ReadActivations(string path, IEnumerable<int>? layers = null)
    {
        using var f = SafeTensorsFile.Open(path);
        if (f.Tensors.Keys.Any(k => k.StartsWith("matching.", StringComparison.Ordinal)))
        {
            // Written by `caa vectors extract --keep-activations`: matching / not-matching rows per item.
            using var items = Vectors.ItemActivations.Load(path);
            var all = items.ToLabeled();
            if (layers is null) return all;
            var keep = layers.ToHashSet();
            if (keep.Except(all.Layers.Keys).ToList() is { Count: > 0 } absent)
            {
                all.Dispose();
                throw new InvalidDataException($"{path}: no activations for layer(s) {string.Join(",", absent.Order())}; the file has {string.Join(",", items.Layers)}");
            }
            foreach (var l in all.Layers.Keys.Where(l => !keep.Contains(l)).ToList()) { all.Layers[l].Dispose(); all.Layers.Remove(l); }
            return all;
        }
        var wanted = layers?.ToHashSet();
        var byLayer = new SortedDictionary<int, Tensor>();
        long n = -1, h = -1;
        try
        {
            foreach (var (name, info) in f.Tensors)
            {
                if (LayerOf(name) is not { } layer || (wanted is not null && !wanted.Contains(layer))) continue;
                if (info.Shape.Length != 2) throw new InvalidDataException($"{path}: {name} has shape [{string.Join(", ", info.Shape)}]; expected [N, H]");
                if (n >= 0 && (info.Shape[0] != n || info.Shape[1] != h)) throw new InvalidDataException($"{path}: {name} is [{string.Join(", ", info.Shape)}] but other layers are [{n}, {h}]");
                (n, h) = (info.Shape[0], info.Shape[1]);
                byLayer[layer] = f.Read(name, ScalarType.Float32);
            }
            if (byLayer.Count == 0)
                throw new InvalidDataException($"{path}: no activation tensors blocks.{{L}}.hook_resid_post" + (wanted is null ? "" : $" for layers {string.Join(",", wanted.Order())}"));
            if (wanted is not null && wanted.Except(byLayer.Keys).ToList() is { Count: > 0 } missing)
                throw new InvalidDataException($"{path}: no activations for layer(s) {string.Join(",", missing.Order())}; the file has {string.Join(",", LayersIn(f))}");
            var labels = new List<ActivationLabel>();
            foreach (var (name, info) in f.Tensors.Where(kv => kv.Key.StartsWith(LabelPrefix, StringComparison.Ordinal)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var label = name[LabelPrefix.Length..];
                if (info.Shape.Length != 1 || info.Shape[0] != n) throw new InvalidDataException($"{path}: {name} has shape [{string.Join(", ", info.Shape)}]; expected [{n}]");
                if (info.ScalarType is not (ScalarType.Bool or ScalarType.Byte or ScalarType.Int8 or ScalarType.Int16 or ScalarType.Int32 or ScalarType.Int64))
                    throw new InvalidDataException($"{path}: {name} has dtype {info.DType}; labels must be BOOL or integers");
                using var t = f.Read(name);
                using var l = t.to(ScalarType.Int64);
                var values = l.data<long>().ToArray();
                var cats = f.Metadata.TryGetValue(name, out var m) ? m.Split(',').Select(s => s.Trim()).ToArray() : null;
                if (cats is not null && values.Any(v => v < 0 || v >= cats.Length))
                    throw new InvalidDataException($"{path}: {name} has values outside 0…{cats.Length - 1} named by its metadata \"{m}\"");
                labels.Add(new ActivationLabel(label, values, cats, cats is null && info.ScalarType == ScalarType.Bool));
            }
            return new LabeledActivations(byLayer, labels);
        }
        catch
        {
            foreach (var t in byLayer.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Writes an activations file in the format <see cref="ReadActivations"/> reads.</summary>
    public static void WriteActivations(string path, IReadOnlyDictionary<int, Tensor> layers, IEnumerable<ActivationLabel> labels, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        var tensors = layers.OrderBy(kv => kv.Key).Select(kv => new KeyValuePair<string, Tensor>(Caa.Model.Hooks.HookPoints.ResidPostOf(kv.Key), kv.Value.cpu().contiguous())).ToList();
        var meta = metadata?.ToDictionary() ?? [];
        foreach (var l in labels)
        {
            var t = l.IsBool ? tensor(l.Values.Select(v => v != 0).ToArray()) : tensor(l.Values);
            tensors.Add(new(LabelPrefix + l.Name, t));
            if (l.Categories is { } c) meta[LabelPrefix + l.Name] = string.Join(",", c);
        }
        SafeTensorsWriter.Write(path, tensors, meta);
    }

    /// <summary>Reads one behavior's vectors: <c>blocks.{L}.hook_resid_post</c> [H] → float32 CPU tensors by layer.</summary>
    public static SortedDictionary<int, Tensor> ReadVectors(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        var result = new SortedDictionary<int, Tensor>();
        foreach (var (name, info) in f.Tensors)
        {
            if (LayerOf(name) is not { } layer) continue;
            if (info.Shape.Length != 1 && !(info.Shape.Length == 2 && info.Shape[0] == 1))
                throw new InvalidDataException($"{path}: {name} has shape [{string.Join(", ", info.Shape)}]; expected a vector [H]");
            result[layer] = f.Read(name, ScalarType.Float32).reshape(-1);
        }
        if (result.Count == 0) throw new InvalidDataException($"{path}: no vectors blocks.{{L}}.hook_resid_post");
        return result;
    }

    /// <summary>Reads every <c>*.safetensors</c> in <paramref name="dir"/> (ordinal file-name order): behavior → layer → vector.</summary>
    public static SortedDictionary<string, SortedDictionary<int, Tensor>> ReadVectorFolder(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"vector folder {dir} does not exist");
        var files = Directory.EnumerateFiles(dir, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new InvalidDataException($"{dir} holds no *.safetensors vector files");
        var result = new SortedDictionary<string, SortedDictionary<int, Tensor>>(StringComparer.Ordinal);
        foreach (var file in files) result[Path.GetFileNameWithoutExtension(file)] = ReadVectors(file);
        return result;
    }

    static int? LayerOf(string name) => ResidPost().Match(name) is { Success: true } m ? int.Parse(m.Groups[1].Value) : null;

    static IEnumerable<int> LayersIn(SafeTensorsFile f) => f.Tensors.Keys.Select(LayerOf).OfType<int>().Order();

    [GeneratedRegex(@"^blocks\.(\d+)\.hook_resid_post$")]
    private static partial Regex ResidPost();
}
