using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Caa.Model;

/// <summary>
/// The fields of a Hugging Face Llama <c>config.json</c> this implementation uses, under their HF names.
/// Settings the implementation does not support are rejected by <see cref="Validate"/> rather than ignored.
/// </summary>
public sealed record LlamaConfig
{
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; }
    /// <summary>Grouped-query attention: K/V heads; equals <see cref="NumAttentionHeads"/> for plain multi-head attention (Llama 2 7B/13B).</summary>
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    /// <summary>Per-head size; HF derives it as hidden_size / num_attention_heads when absent.</summary>
    [JsonPropertyName("head_dim")] public int? HeadDimOverride { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 4096;
    [JsonPropertyName("bos_token_id")] public int BosTokenId { get; init; } = 1;
    /// <summary>End-of-sequence ids; HF allows a single id or a list.</summary>
    [JsonPropertyName("eos_token_id"), JsonConverter(typeof(IntOrListConverter))] public int[] EosTokenIds { get; init; } = [2];
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "llama";
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; init; }
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; init; } = 0.02;
    [JsonPropertyName("rope_scaling"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonNode? RopeScaling { get; init; }
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }
    [JsonPropertyName("architectures"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string[]? Architectures { get; init; } = ["LlamaForCausalLM"];

    [JsonIgnore] public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;
    [JsonIgnore] public int HeadDim => HeadDimOverride ?? HiddenSize / NumAttentionHeads;

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    /// <summary>Reads and validates a config.json file, or the one inside a model folder.</summary>
    public static LlamaConfig Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"Model config not found: {file} (expected a Hugging Face config.json)", file);
        LlamaConfig? config;
        try { config = JsonSerializer.Deserialize<LlamaConfig>(File.ReadAllText(file)); }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not a valid config.json: {e.Message}", e); }
        if (config is null) throw new InvalidDataException($"{file}: empty config");
        config.Validate(file);
        return config;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> for missing or unsupported settings.</summary>
    public void Validate(string source = "config")
    {
        void Require(bool ok, string message) { if (!ok) throw new InvalidDataException($"{source}: {message}"); }
        Require(ModelType is "llama", $"model_type '{ModelType}' is not supported (expected 'llama')");
        Require(HiddenSize > 0 && IntermediateSize > 0 && NumHiddenLayers > 0 && NumAttentionHeads > 0 && VocabSize > 0,
            "hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and vocab_size must all be positive");
        Require(HeadDimOverride is not null || HiddenSize % NumAttentionHeads == 0, $"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}");
        Require(HeadDim % 2 == 0, $"head dimension {HeadDim} must be even for rotary embeddings");
        Require(KeyValueHeads > 0 && NumAttentionHeads % KeyValueHeads == 0, $"num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {KeyValueHeads}");
        Require(HiddenAct is "silu", $"hidden_act '{HiddenAct}' is not supported (Llama uses 'silu')");
        Require(RopeScaling is null, "rope_scaling is not supported (Llama 2 checkpoints have none); remove it or use a model without RoPE scaling");
        Require(!AttentionBias, "attention_bias=true is not supported (Llama has no attention biases)");
        Require(!MlpBias, "mlp_bias=true is not supported (Llama has no MLP biases)");
        Require(RmsNormEps > 0 && RopeTheta > 0, "rms_norm_eps and rope_theta must be positive");
    }

    /// <summary>Writes this config as config.json into <paramref name="dir"/>, atomically.</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "config.json");
        var tmp = file + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(tmp, ToJson());
        File.Move(tmp, file, overwrite: true);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>A short hash of the architecture-defining fields, stored with steering vectors to refuse mismatched models.</summary>
    [JsonIgnore] public string ArchitectureHash =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{HiddenSize}|{IntermediateSize}|{NumHiddenLayers}|{NumAttentionHeads}|{KeyValueHeads}|{HeadDim}|{VocabSize}|{RopeTheta}|{RmsNormEps}|{TieWordEmbeddings}")))[..16].ToLowerInvariant();

    sealed class IntOrListConverter : JsonConverter<int[]>
    {
        public override int[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
        {
            JsonTokenType.Number => [reader.GetInt32()],
            JsonTokenType.StartArray => JsonSerializer.Deserialize<int[]>(ref reader) ?? [],
            JsonTokenType.Null => [],
            _ => throw new JsonException("eos_token_id must be an integer or a list of integers"),
        };
        public override void Write(Utf8JsonWriter writer, int[] value, JsonSerializerOptions options)
        {
            if (value.Length == 1) writer.WriteNumberValue(value[0]);
            else JsonSerializer.Serialize(writer, value);
        }
    }
}
