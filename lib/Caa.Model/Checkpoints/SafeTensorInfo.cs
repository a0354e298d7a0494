using TorchSharp;

namespace Caa.Model.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's name, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</param>
/// <param name="DType">The safetensors dtype string as written in the file (<c>F32</c>, <c>BF16</c>, …).</param>
/// <param name="Shape">The tensor's shape (empty for a scalar).</param>
/// <param name="Begin">
/// Absolute byte offset of the tensor's first byte <b>in the file</b> (not relative to the data buffer as in the
/// header's <c>data_offsets</c>), so callers can seek or memory-map without knowing the header length.
/// </param>
/// <param name="End">Absolute byte offset in the file just past the tensor's last byte.</param>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of bytes the tensor occupies in the file (<see cref="End"/> − <see cref="Begin"/>).</summary>
    public long ByteLength => End - Begin;

    /// <summary>The TorchSharp scalar type that matches <see cref="DType"/>.</summary>
    public torch.ScalarType ScalarType => SafeTensorDTypes.ToScalarType(DType);

    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount => SafeTensorDTypes.ElementCount(Shape);
}

/// <summary>Mapping between safetensors dtype strings and TorchSharp scalar types.</summary>
public static class SafeTensorDTypes
{
    static readonly (string Name, torch.ScalarType Type, int Size)[] Table =
    [
        ("F64", torch.ScalarType.Float64, 8),
        ("F32", torch.ScalarType.Float32, 4),
        ("F16", torch.ScalarType.Float16, 2),
        ("BF16", torch.ScalarType.BFloat16, 2),
        ("I64", torch.ScalarType.Int64, 8),
        ("I32", torch.ScalarType.Int32, 4),
        ("I16", torch.ScalarType.Int16, 2),
        ("I8", torch.ScalarType.Int8, 1),
        ("U8", torch.ScalarType.Byte, 1),
        ("BOOL", torch.ScalarType.Bool, 1),
    ];

    /// <summary>The dtype strings this reader and writer handle, comma-separated (for error messages).</summary>
    public static string Supported { get; } = string.Join(", ", Table.Select(t => t.Name));

    /// <summary>True when <paramref name="dtype"/> is one of <see cref="Supported"/>.</summary>
    public static bool IsSupported(string dtype) => Table.Any(t => t.Name == dtype);

    /// <summary>The TorchSharp type for a safetensors dtype string.</summary>
    /// <exception cref="NotSupportedException">For a dtype outside <see cref="Supported"/>.</exception>
    public static torch.ScalarType ToScalarType(string dtype)
    {
        foreach (var t in Table) if (t.Name == dtype) return t.Type;
        throw new NotSupportedException($"safetensors dtype '{dtype}' is not supported (supported: {Supported})");
    }

    /// <summary>The safetensors dtype string for a TorchSharp type.</summary>
    /// <exception cref="NotSupportedException">For a type with no supported safetensors counterpart (complex, …).</exception>
    public static string FromScalarType(torch.ScalarType type)
    {
        foreach (var t in Table) if (t.Type == type) return t.Name;
        throw new NotSupportedException($"TorchSharp dtype {type} cannot be stored in safetensors by this writer (supported: {Supported})");
    }

    /// <summary>Bytes per element of a safetensors dtype string.</summary>
    public static int ElementSize(string dtype)
    {
        foreach (var t in Table) if (t.Name == dtype) return t.Size;
        throw new NotSupportedException($"safetensors dtype '{dtype}' is not supported (supported: {Supported})");
    }

    internal static long ElementCount(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    internal static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
