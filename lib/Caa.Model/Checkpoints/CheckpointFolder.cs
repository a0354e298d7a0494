using System.Text.Json;
using System.Text.RegularExpressions;
using TorchSharp;

namespace Caa.Model.Checkpoints;

/// <summary>
/// The weights of a Hugging Face model folder: either one <c>model.safetensors</c>, or
/// <c>model.safetensors.index.json</c> plus the shards it names. Tensors are read on demand.
/// </summary>
/// <remarks>
/// Only safetensors is supported. <c>pytorch_model.bin</c> and other pickle checkpoints are refused on purpose:
/// unpickling runs arbitrary code from the file.
/// </remarks>
public sealed partial class CheckpointFolder : IDisposable
{
    /// <summary>Name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>Name of the index of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    readonly List<SafeTensorsFile> _files;
    readonly Dictionary<string, SafeTensorsFile> _fileOf;

    CheckpointFolder(string folder, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> fileOf, Dictionary<string, SafeTensorInfo> tensors)
    {
        FolderPath = folder;
        _files = files;
        _fileOf = fileOf;
        Tensors = tensors;
    }

    /// <summary>The folder's path as given to <see cref="Open"/>.</summary>
    public string FolderPath { get; }

    /// <summary>All tensors across all shards, by name; offsets are absolute within each tensor's own file (see <see cref="FileOf"/>).</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

    /// <summary>The open safetensors files (one, or one per shard in shard order).</summary>
    public IReadOnlyList<SafeTensorsFile> Files => _files;

    /// <summary>The <c>__metadata__</c> of the first file (our writer puts the same metadata in every shard).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _files[0].Metadata;

    /// <summary>Opens the checkpoint in <paramref name="dir"/>, preferring <c>model.safetensors</c> over an index (as HF does).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">No safetensors weights in the folder, or the index names a missing shard.</exception>
    /// <exception cref="InvalidDataException">A malformed index or shard, or a tensor listed in the index but absent from its shard.</exception>
    public static CheckpointFolder Open(string dir)
    {
        if (!System.IO.Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Checkpoint folder {dir} does not exist");
        var single = System.IO.Path.Combine(dir, SingleFileName);
        var index = System.IO.Path.Combine(dir, IndexFileName);
        if (File.Exists(single))
        {
            var file = SafeTensorsFile.Open(single);
            return new CheckpointFolder(dir, [file], file.Tensors.Keys.ToDictionary(k => k, _ => file),
                new Dictionary<string, SafeTensorInfo>(file.Tensors));
        }
        if (File.Exists(index)) return OpenSharded(dir, index);

        var present = System.IO.Directory.EnumerateFiles(dir).Select(System.IO.Path.GetFileName).Order().ToList();
        var pickles = present.Where(f => f!.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".pt", StringComparison.OrdinalIgnoreCase)
            || f.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase)).ToList();
        var hint = pickles.Count > 0
            ? $" It has {string.Join(", ", pickles)}: PyTorch .bin/pickle checkpoints are deliberately not supported, because loading a pickle executes code from the file. Convert it to safetensors first (e.g. in Python: transformers' save_pretrained(..., safe_serialization=True))."
            : " (.bin/pickle checkpoints are deliberately not supported, because loading a pickle executes code from the file.)";
        throw new FileNotFoundException(
            $"No weights found in {dir}: expected {SingleFileName} or {IndexFileName}." + hint +
            $" Files present: {(present.Count == 0 ? "none" : string.Join(", ", present))}.", single);
    }

    static CheckpointFolder OpenSharded(string dir, string indexPath)
    {
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath} has no \"weight_map\" object");
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{indexPath}: weight_map entry '{p.Name}' must be a file name string");
                var shard = p.Value.GetString()!;
                // Shards must sit in the folder itself: refuse paths that could point elsewhere.
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard is "." or "..")
                    throw new InvalidDataException($"{indexPath}: tensor '{p.Name}' maps to '{shard}', which is not a plain file name in the folder");
                if (!weightMap.TryAdd(p.Name, shard))
                    throw new InvalidDataException($"{indexPath}: tensor '{p.Name}' appears twice in weight_map");
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{indexPath} is not valid JSON: {e.Message}", e);
        }
        if (weightMap.Count == 0)
            throw new InvalidDataException($"{indexPath} lists no tensors");

        var shardNames = weightMap.Values.Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var s in shardNames)
        {
            var p = System.IO.Path.Combine(dir, s);
            if (!File.Exists(p))
                throw new FileNotFoundException($"{indexPath} references shard {s}, which is missing from {dir} (an incomplete download?)", p);
        }

        var files = new List<SafeTensorsFile>();
        try
        {
            var byName = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var s in shardNames)
            {
                var f = SafeTensorsFile.Open(System.IO.Path.Combine(dir, s));
                files.Add(f);
                byName[s] = f;
            }
            var fileOf = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                var f = byName[shard];
                if (!f.Tensors.TryGetValue(name, out var info))
                    throw new InvalidDataException($"{indexPath} lists tensor '{name}' in {shard}, but {f.Path} has no such tensor");
                fileOf[name] = f;
                tensors[name] = info;
            }
            return new CheckpointFolder(dir, files, fileOf, tensors);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>The file that holds tensor <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public SafeTensorsFile FileOf(string name) =>
        _fileOf.TryGetValue(name, out var f) ? f
            : throw new KeyNotFoundException($"Checkpoint {FolderPath} has no tensor '{name}' ({Tensors.Count} tensors)");

    /// <summary>Reads tensor <paramref name="name"/> into <paramref name="destination"/>; see <see cref="SafeTensorsFile.ReadInto"/>.</summary>
    public void ReadInto(string name, torch.Tensor destination) => FileOf(name).ReadInto(name, destination);

    /// <summary>Reads tensor <paramref name="name"/> as a new tensor; see <see cref="SafeTensorsFile.Read"/>.</summary>
    public torch.Tensor Read(string name, torch.ScalarType? dtype = null, torch.Device? device = null) =>
        FileOf(name).Read(name, dtype, device);

    /// <summary>Closes all files.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardName();

    /// <summary>
    /// Writes a Hugging Face checkpoint into <paramref name="dir"/> (created if needed): one <c>model.safetensors</c>
    /// when all tensors fit in <paramref name="maxShardBytes"/>, else shards <c>model-00001-of-0000N.safetensors</c>
    /// plus <c>model.safetensors.index.json</c> (<c>{"metadata": {"total_size": …}, "weight_map": {…}}</c>).
    /// </summary>
    /// <remarks>
    /// Shards are filled greedily in the given order, starting a new one when the next tensor would exceed the limit
    /// (a single larger tensor gets a shard of its own), as HF does. Every file is written atomically; the index is
    /// written last, so it never names an unfinished shard. Afterwards, weights files left from an earlier save with a
    /// different layout (a stale <c>model.safetensors</c>, index, or <c>model-*-of-*</c> shards) are removed, so
    /// <see cref="Open"/> sees only the new checkpoint. <paramref name="metadata"/> goes into every file's
    /// <c>__metadata__</c>. <c>config.json</c> is not written here.
    /// </remarks>
    public static void Write(string dir, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, long maxShardBytes = long.MaxValue,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var kv in list)
            if (!seen.Add(kv.Key)) throw new ArgumentException($"tensor '{kv.Key}' appears twice", nameof(tensors)); // before anything is written
        static long Bytes(torch.Tensor t) => t.numel() * t.element_size();

        var shards = new List<List<KeyValuePair<string, torch.Tensor>>> { new() };
        long current = 0;
        foreach (var kv in list)
        {
            var b = Bytes(kv.Value);
            if (shards[^1].Count > 0 && current + b > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(kv);
            current += b;
        }

        System.IO.Directory.CreateDirectory(dir);
        var written = new HashSet<string>(StringComparer.Ordinal);
        if (shards.Count == 1)
        {
            SafeTensorsWriter.Write(System.IO.Path.Combine(dir, SingleFileName), shards[0], metadata);
            written.Add(SingleFileName);
        }
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < shards.Count; i++)
            {
                var name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafeTensorsWriter.Write(System.IO.Path.Combine(dir, name), shards[i], metadata);
                written.Add(name);
                foreach (var kv in shards[i]) weightMap[kv.Key] = name;
            }
            WriteIndex(System.IO.Path.Combine(dir, IndexFileName), list.Sum(kv => Bytes(kv.Value)), weightMap);
            written.Add(IndexFileName);
        }

        foreach (var path in System.IO.Directory.EnumerateFiles(dir).ToList())
        {
            var f = System.IO.Path.GetFileName(path);
            if (written.Contains(f)) continue;
            if (f is SingleFileName or IndexFileName || ShardName().IsMatch(f))
                File.Delete(path);
        }
    }

    static void WriteIndex(string path, long totalSize, SortedDictionary<string, string> weightMap)
    {
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteStartObject("metadata");
                w.WriteNumber("total_size", totalSize);
                w.WriteEndObject();
                w.WriteStartObject("weight_map");
                foreach (var (k, v) in weightMap) w.WriteString(k, v);
                w.WriteEndObject();
                w.WriteEndObject();
                w.Flush();
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { /* best effort */ }
            throw;
        }
    }
}
