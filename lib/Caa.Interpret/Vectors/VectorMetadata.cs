using System.Globalization;
using System.Reflection;
using Caa.Model.Llama;

namespace Caa.Interpret.Vectors;

/// <summary>
/// Where a set of steering vectors came from, stored in the safetensors <c>__metadata__</c> of its file: the model
/// (identity and the settings vectors must match), the data, how activations were read, and any normalization.
/// </summary>
public sealed record VectorMetadata
{
    /// <summary>Value of <see cref="ReadPosition"/> for the paper's rule.</summary>
    public const string AnswerLetterReadPosition = "answer-letter token of '(X)' after [/INST]";

    /// <summary>Behavior id, e.g. "sycophancy" (also the file name).</summary>
    public required string Behavior { get; init; }

    /// <summary><c>model.Source</c>: the model folder, or "in-memory".</summary>
    public required string ModelSource { get; init; }

    /// <summary><see cref="Caa.Model.LlamaConfig.ArchitectureHash"/> of the model the vectors were extracted from.</summary>
    public required string ArchitectureHash { get; init; }

    /// <summary>Residual-stream width of that model (= the vectors' length).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>The dtype the model computed activations in ("Float32", "BFloat16", …); the vectors themselves are float32.</summary>
    public string ModelDType { get; init; } = "Float32";

    /// <summary>SHA-256 (lower-case hex) of the A/B dataset: the file's bytes when extracted from a file, else the items' canonical JSON.</summary>
    public required string DatasetSha256 { get; init; }

    /// <summary>Number of A/B items averaged over.</summary>
    public required int Items { get; init; }

    /// <summary>Where activations were read; <see cref="AnswerLetterReadPosition"/> for the paper's rule.</summary>
    public string ReadPosition { get; init; } = AnswerLetterReadPosition;

    /// <summary><see cref="VectorNormalization.None"/> or <see cref="VectorNormalization.MeanNormAcrossBehaviors"/>.</summary>
    public string Normalization { get; init; } = VectorNormalization.None;

    /// <summary>System prompt used while extracting (the prompting comparison), or null for none (the main experiments).</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>Version of the library that wrote the vectors.</summary>
    public string LibraryVersion { get; init; } = CurrentLibraryVersion;

    /// <summary>This library's informational version.</summary>
    public static string CurrentLibraryVersion { get; } =
        typeof(VectorMetadata).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(VectorMetadata).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>The model-identity fields of <paramref name="model"/>.</summary>
    public static VectorMetadata For(LlamaForCausalLM model, string behavior, string datasetSha256, int items, string? systemPrompt = null) => new()
    {
        Behavior = behavior,
        ModelSource = model.Source,
        ArchitectureHash = model.Config.ArchitectureHash,
        HiddenSize = model.Config.HiddenSize,
        ModelDType = model.DType.ToString(),
        DatasetSha256 = datasetSha256,
        Items = items,
        SystemPrompt = systemPrompt,
    };

    internal const string FormatKey = "format", FormatValue = "caa.steering-vectors/1";

    /// <summary>The key/value pairs written to <c>__metadata__</c> (plus "layers", added by the writer).</summary>
    internal Dictionary<string, string> ToDictionary()
    {
        var d = new Dictionary<string, string>
        {
            [FormatKey] = FormatValue,
            ["behavior"] = Behavior,
            ["model_source"] = ModelSource,
            ["model_architecture_hash"] = ArchitectureHash,
            ["hidden_size"] = HiddenSize.ToString(CultureInfo.InvariantCulture),
            ["model_dtype"] = ModelDType,
            ["dataset_sha256"] = DatasetSha256,
            ["items"] = Items.ToString(CultureInfo.InvariantCulture),
            ["read_position"] = ReadPosition,
            ["normalization"] = Normalization,
            ["library_version"] = LibraryVersion,
        };
        if (SystemPrompt is not null) d["system_prompt"] = SystemPrompt;
        return d;
    }

    internal static VectorMetadata FromDictionary(IReadOnlyDictionary<string, string> d, string source)
    {
        string Get(string key) => d.TryGetValue(key, out var v) ? v
            : throw new InvalidDataException($"{source}: steering-vector metadata lacks \"{key}\" (not a file written by SteeringVectorSet.Save?)");
        int GetInt(string key) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v
            : throw new InvalidDataException($"{source}: metadata \"{key}\" is '{d[key]}', not a non-negative integer");
        if (Get(FormatKey) != FormatValue)
            throw new InvalidDataException($"{source}: metadata format is '{d[FormatKey]}'; this version reads '{FormatValue}'");
        return new VectorMetadata
        {
            Behavior = Get("behavior"),
            ModelSource = Get("model_source"),
            ArchitectureHash = Get("model_architecture_hash"),
            HiddenSize = GetInt("hidden_size"),
            ModelDType = Get("model_dtype"),
            DatasetSha256 = Get("dataset_sha256"),
            Items = GetInt("items"),
            ReadPosition = Get("read_position"),
            Normalization = Get("normalization"),
            LibraryVersion = Get("library_version"),
            SystemPrompt = d.TryGetValue("system_prompt", out var s) ? s : null,
        };
    }
}
