using System.Text.Json;
using TorchSharp;

namespace Caa.Model.Checkpoints;

/// <summary>Writes <c>.safetensors</c> files compatible with Hugging Face's <c>safetensors</c> library.</summary>
/// <remarks>
/// Hand-written for the reasons given on <see cref="SafeTensorsFile"/>: TorchSharp.PyBridge's writer neither pads
/// the header (so data is not 8-byte aligned and cannot be memory-mapped per dtype) nor truncates an existing file.
/// </remarks>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>, each in its own dtype, replacing any existing file
    /// atomically: data goes to <c>path + ".tmp-&lt;random&gt;"</c>, which is renamed into place only when complete.
    /// </summary>
    /// <remarks>
    /// The header is padded with spaces so the data buffer starts 8-byte aligned (as HF does). Tensors are laid out by
    /// decreasing element size (stable within a size, like HF's ordering), so every tensor's offset is a multiple of its
    /// element size and the file can be memory-mapped per dtype. Non-contiguous or non-CPU tensors are copied to a
    /// contiguous CPU tensor one at a time while writing; contiguous CPU tensors are written straight from their storage.
    /// </remarks>
    /// <exception cref="ArgumentException">Duplicate or empty tensor names, or a name of <c>__metadata__</c>.</exception>
    /// <exception cref="NotSupportedException">A tensor's dtype is not in <see cref="SafeTensorDTypes.Supported"/>.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("tensor names must be non-empty", nameof(tensors));
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"tensor '{name}' appears twice", nameof(tensors));
            ArgumentNullException.ThrowIfNull(t, $"tensor '{name}'");
        }

        var ordered = list.Select((kv, i) => (kv.Key, Tensor: kv.Value, Index: i, DType: SafeTensorDTypes.FromScalarType(kv.Value.dtype)))
            .OrderByDescending(x => SafeTensorDTypes.ElementSize(x.DType)).ThenBy(x => x.Index).ToList();
        var header = BuildHeader(ordered.Select(x => (x.Key, x.DType, x.Tensor.shape)), metadata);

        var full = System.IO.Path.GetFullPath(path);
        var tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            // bufferSize 0: tensor bytes go from their storage to the OS without a managed copy.
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                Span<byte> len = stackalloc byte[8];
                BitConverter.TryWriteBytes(len, (ulong)header.Length);
                fs.Write(len);
                fs.Write(header);
                using (torch.no_grad())
                    foreach (var x in ordered) WriteTensor(fs, x.Tensor);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true); // rename(2): readers see the old file or the new one, never a half-written one
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { /* best effort */ }
            throw;
        }
    }

    static void WriteTensor(FileStream fs, torch.Tensor t)
    {
        if (t.device_type == DeviceType.CPU && t.is_contiguous())
        {
            TensorBytes.ForEachChunk(t, (chunk, _) => fs.Write(chunk));
            return;
        }
        // One tensor at a time, so at most one extra tensor's worth of memory.
        using var cpu = t.to(torch.CPU);
        using var contiguous = cpu.contiguous();
        TensorBytes.ForEachChunk(contiguous, (chunk, _) => fs.Write(chunk));
    }

    /// <summary>The JSON header, padded with spaces so that 8 + its length is a multiple of 8.</summary>
    internal static byte[] BuildHeader(IEnumerable<(string Name, string DType, long[] Shape)> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        // Relaxed escaping keeps names like "a+b" readable; the output is still valid JSON.
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape) in tensors)
            {
                var bytes = checked(SafeTensorDTypes.ElementCount(shape) * SafeTensorDTypes.ElementSize(dtype));
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        var json = ms.ToArray();
        var padded = (json.Length + 8 + 7) / 8 * 8 - 8;
        var result = new byte[padded];
        json.CopyTo(result, 0);
        result.AsSpan(json.Length).Fill((byte)' ');
        return result;
    }
}
