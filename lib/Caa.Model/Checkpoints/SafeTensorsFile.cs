using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace Caa.Model.Checkpoints;

/// <summary>
/// A read-only <c>.safetensors</c> file: the header is parsed and validated on <see cref="Open"/>; tensor data is
/// read on demand, one tensor at a time, straight into the caller's tensors.
/// </summary>
/// <remarks>
/// <para>Hand-written because nothing in the TorchSharp ecosystem streams safetensors: TorchSharp itself has no
/// safetensors API, and TorchSharp.PyBridge reads every tensor into a fresh managed buffer (a whole extra copy of
/// the model) and writes unpadded, untruncated files. Llama 2 7B is 13 GB in bf16, so holding two copies is not
/// an option.</para>
/// <para>Format: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}</c>), then the data buffer,
/// to which <c>data_offsets</c> are relative. <see cref="SafeTensorInfo.Begin"/>/<see cref="SafeTensorInfo.End"/>
/// are converted to absolute file offsets. Gaps between tensors and trailing bytes are tolerated; overlaps are not.</para>
/// <para>Reads use positional I/O (<see cref="RandomAccess"/>), so one instance may be read from several threads.</para>
/// </remarks>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Upper bound on the JSON header (the same 100 MB limit the Python library applies).</summary>
    const long MaxHeaderBytes = 100_000_000;

    readonly SafeFileHandle _handle;

    SafeTensorsFile(string path, SafeFileHandle handle, long dataOffset, long length,
        Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _handle = handle;
        DataOffset = dataOffset;
        FileLength = length;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file's path as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>Absolute offset of the data buffer (8 + header length); 8-byte aligned in files written by HF or us.</summary>
    public long DataOffset { get; }

    /// <summary>The file's length in bytes when it was opened.</summary>
    public long FileLength { get; }

    /// <summary>All tensors in header order, by name. Offsets are absolute file offsets.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens <paramref name="path"/> and validates its header against the file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The file is shorter than 8 bytes or than its header, the header is not valid JSON of the expected form, a dtype
    /// is unsupported, a tensor's byte length disagrees with its shape and dtype, offsets overlap or lie outside the
    /// data buffer, or the file is truncated. The message names the file and, where relevant, the tensor.
    /// </exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors is little-endian; this reader assumes a little-endian machine");
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            var length = RandomAccess.GetLength(handle);
            if (length < 8)
                throw new InvalidDataException($"{path} is not a safetensors file: it has {length} bytes, fewer than the 8-byte header length");
            Span<byte> prefix = stackalloc byte[8];
            ReadExactly(handle, prefix, 0);
            var headerLength = BitConverter.ToUInt64(prefix);
            if (headerLength > MaxHeaderBytes)
                throw new InvalidDataException($"{path} is not a safetensors file: its header claims {headerLength} bytes (limit {MaxHeaderBytes})");
            if ((long)headerLength > length - 8)
                throw new InvalidDataException($"{path} is truncated or not a safetensors file: its header claims {headerLength} bytes but only {length - 8} follow the length field");
            var header = new byte[headerLength];
            ReadExactly(handle, header, 8);
            var dataOffset = 8 + (long)headerLength;
            var (tensors, metadata) = ParseHeader(path, header, dataOffset, length);
            return new SafeTensorsFile(path, handle, dataOffset, length, tensors, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataOffset, long fileLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new InvalidDataException($"{path} has a malformed safetensors header (not valid JSON): {e.Message}", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path} has a malformed safetensors header: expected a JSON object, found {doc.RootElement.ValueKind}");

        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var dataLength = fileLength - dataOffset;
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path}: __metadata__ must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw new InvalidDataException($"{path}: __metadata__ entry '{m.Name}' must be a string, found {m.Value.ValueKind}");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            if (tensors.ContainsKey(prop.Name))
                throw new InvalidDataException($"{path}: tensor '{prop.Name}' appears twice in the header");
            tensors[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataOffset);
        }

        // Check offsets in file order: no overlaps, nothing past the end (the usual sign of a cut-short download).
        long previousEnd = dataOffset;
        string? previous = null;
        foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < previousEnd)
                throw new InvalidDataException($"{path}: tensor '{t.Name}' (data_offsets [{t.Begin - dataOffset}, {t.End - dataOffset}]) overlaps tensor '{previous}'");
            previousEnd = t.End;
            previous = t.Name;
        }
        var last = tensors.Values.OrderByDescending(t => t.End).FirstOrDefault();
        if (last is not null && last.End > fileLength)
            throw new InvalidDataException($"{path} is truncated: tensor '{last.Name}' needs bytes up to {last.End} but the file has {fileLength} (data buffer {dataLength} bytes after a {dataOffset}-byte header)");
        return (tensors, metadata);
    }

    static SafeTensorInfo ParseEntry(string path, string name, JsonElement e, long dataOffset)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{Where()} must be described by an object with dtype, shape and data_offsets");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{Where()} has no string 'dtype'");
        var dtype = dt.GetString()!;
        if (!SafeTensorDTypes.IsSupported(dtype))
            throw new InvalidDataException($"{Where()} has unsupported dtype '{dtype}' (supported: {SafeTensorDTypes.Supported})");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{Where()} has no 'shape' array");
        var shape = new long[sh.GetArrayLength()];
        var i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var v) || v < 0)
                throw new InvalidDataException($"{Where()} has an invalid shape entry {d.GetRawText()} (expected a non-negative integer)");
            shape[i++] = v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new InvalidDataException($"{Where()} has no 'data_offsets' pair");
        if (!off[0].TryGetInt64(out var begin) || !off[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw new InvalidDataException($"{Where()} has invalid data_offsets {off.GetRawText()} (need 0 ≤ begin ≤ end)");
        long expected;
        try { expected = checked(SafeTensorDTypes.ElementCount(shape) * SafeTensorDTypes.ElementSize(dtype)); }
        catch (OverflowException) { throw new InvalidDataException($"{Where()} has a shape {SafeTensorDTypes.Format(shape)} too large to address"); }
        if (end - begin != expected)
            throw new InvalidDataException($"{Where()} has data_offsets [{begin}, {end}] ({end - begin} bytes) but shape {SafeTensorDTypes.Format(shape)} of {dtype} needs {expected} bytes");
        return new SafeTensorInfo(name, dtype, shape, checked(dataOffset + begin), checked(dataOffset + end));
    }

    /// <summary>Looks up a tensor, with an error that names the file when it is absent.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public SafeTensorInfo Info(string name) =>
        Tensors.TryGetValue(name, out var info) ? info
            : throw new KeyNotFoundException($"{Path} has no tensor '{name}' ({Tensors.Count} tensors)");

    /// <summary>
    /// Reads tensor <paramref name="name"/> into <paramref name="destination"/>, whose shape must match; the data is
    /// converted to the destination's dtype and moved to its device.
    /// </summary>
    /// <remarks>
    /// A contiguous CPU destination of the file's dtype is filled straight from the file (no intermediate buffer).
    /// Any other destination gets the one tensor read into a temporary CPU tensor of the file's dtype, then
    /// <c>copy_</c> (which converts and moves), and the temporary is disposed at once. Gradient tracking is
    /// suspended for the copy, so parameters that require grad can be loaded.
    /// </remarks>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    /// <exception cref="ArgumentException">The shapes differ; the message names the tensor, the file and both shapes.</exception>
    public void ReadInto(string name, torch.Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var info = Info(name);
        var destShape = destination.shape;
        if (!destShape.AsSpan().SequenceEqual(info.Shape))
            throw new ArgumentException($"Tensor '{name}' in {Path} has shape {SafeTensorDTypes.Format(info.Shape)} but the destination has shape {SafeTensorDTypes.Format(destShape)}", nameof(destination));

        if (destination.device_type == DeviceType.CPU && destination.dtype == info.ScalarType && destination.is_contiguous())
        {
            ReadRaw(info, destination);
            return;
        }
        using var temp = torch.empty(info.Shape, info.ScalarType, torch.CPU);
        ReadRaw(info, temp);
        using (torch.no_grad())
            destination.copy_(temp);
    }

    /// <summary>Reads tensor <paramref name="name"/> as a new tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="dtype">The result's dtype; the file's when null.</param>
    /// <param name="device">The result's device; the CPU when null.</param>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public torch.Tensor Read(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        var info = Info(name);
        var result = torch.empty(info.Shape, dtype ?? info.ScalarType, device ?? torch.CPU);
        try
        {
            ReadInto(name, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Fills a contiguous CPU tensor of the file's dtype with the tensor's bytes, in chunks, in place.</summary>
    void ReadRaw(SafeTensorInfo info, torch.Tensor destination)
    {
        if (FileLength < info.End) // cannot happen after Open's checks unless the file was replaced; keep the message clear anyway
            throw new InvalidDataException($"{Path} is truncated: tensor '{info.Name}' needs bytes up to {info.End} but the file has {FileLength}");
        TensorBytes.ForEachChunk(destination, (chunk, offset) => ReadExactly(_handle, chunk, info.Begin + offset, Path, info.Name));
    }

    static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset, string? path = null, string? tensor = null)
    {
        while (!buffer.IsEmpty)
        {
            var n = RandomAccess.Read(handle, buffer, offset);
            if (n == 0)
                throw new InvalidDataException($"{path ?? "file"} is truncated: " + (tensor is null ? "" : $"tensor '{tensor}' ") + $"needs bytes up to {offset + buffer.Length} but reading stopped at {offset}");
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _handle.Dispose();
}
