using System.Text.Json;
using Caa.Model.Tokenization;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Tokenization;

/// <summary>The Llama 2 tokenizer from ../shared, loaded once for all tokenization tests.</summary>
static class Llama2
{
    public const string ModelPath = "tokenizers/llama2/tokenizer.model";
    public const string ReferencePath = "tokenizers/llama2/reference_encodings.json";

    static readonly Lazy<Llama2Tokenizer> _tok = new(() => Llama2Tokenizer.Load(Shared.Require(ModelPath)));

    public static Llama2Tokenizer Tok => _tok.Value;

    /// <summary>(text, ids_with_bos) pairs from reference_encodings.json, or none where ../shared is absent.</summary>
    public static IReadOnlyList<(string Text, int[] Ids)> References()
    {
        var path = Shared.Path(ReferencePath);
        if (path is null) return [];
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return [.. doc.RootElement.GetProperty("encodings").EnumerateArray().Select(e => (
            e.GetProperty("text").GetString()!,
            e.GetProperty("ids_with_bos").EnumerateArray().Select(x => x.GetInt32()).ToArray()))];
    }
}
