using TorchSharp;

namespace Caa.Model.Checkpoints;

/// <summary>Zero-copy byte views over a contiguous CPU tensor's storage, in chunks.</summary>
/// <remarks>
/// TorchSharp exposes no public <c>data_ptr()</c>. <see cref="torch.Tensor.bytes"/> does return a
/// <see cref="Span{T}"/> straight over the native storage (no copy), but it refuses tensors over 2 GiB
/// (a span's length is an int). So we take a flat view and <c>narrow</c> it into chunks, each of which is
/// itself contiguous, and use each chunk's <c>bytes</c>: every byte goes straight between the file and the
/// tensor's own memory, whatever the tensor's size.
/// </remarks>
internal static class TensorBytes
{
    /// <summary>Bytes per chunk: large enough that per-chunk overhead is negligible, small enough for one span.</summary>
    /// <remarks>Settable only so tests can exercise multi-chunk reads and writes on small tensors; results do not depend on it.</remarks>
    internal static long ChunkBytes { get; set; } = 64L << 20;

    internal delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>Calls <paramref name="action"/> for consecutive spans covering all of <paramref name="tensor"/>'s bytes.</summary>
    /// <param name="tensor">A contiguous CPU tensor.</param>
    /// <param name="action">Gets each chunk and its byte offset from the start of the tensor.</param>
    internal static void ForEachChunk(torch.Tensor tensor, ChunkAction action)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("internal: expected a contiguous CPU tensor", nameof(tensor));
        var count = tensor.numel();
        if (count == 0) return;
        var elementSize = tensor.element_size();
        var perChunk = Math.Max(1, ChunkBytes / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += perChunk)
        {
            var n = Math.Min(perChunk, count - start);
            using var part = flat.narrow(0, start, n);
            action(part.bytes, start * elementSize);
        }
    }
}
