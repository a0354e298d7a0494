using System.Security.Cryptography;

namespace Caa.Interpret.Datasets;

/// <summary>
/// SHA-256 content hashes (lower-case hex) for manifests: of a file's bytes, or of a dataset's canonical JSON
/// (<see cref="AbDataset.ToJson{T}"/>), so that the hash of items equals the hash of the file
/// <see cref="DatasetBuildResult.Write"/> writes for them.
/// </summary>
public static class ContentHash
{
    /// <summary>SHA-256 of the file's bytes.</summary>
    public static string OfFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>SHA-256 of the bytes.</summary>
    public static string OfBytes(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>SHA-256 of the text's UTF-8 bytes (no BOM).</summary>
    public static string OfText(string text) => OfBytes(AbDataset.Utf8NoBom.GetBytes(text));

    /// <summary>SHA-256 of the canonical JSON of these items (order matters).</summary>
    public static string OfItems<T>(IEnumerable<T> items) => OfText(AbDataset.ToJson(items));
}
