using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Caa.Model;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Microsoft.Data.Analysis;

namespace Caa.Figures;

/// <summary>
/// The notebooks' one configuration, <c>notebooks/settings.json</c>: which model (the embedded organism or a Hugging Face
/// folder such as <c>Llama-2-7b-chat-hf</c>), device, dtype, layers to sweep, behaviors, output folder, threads, judge.
/// Relative paths are resolved against the repository root. Every notebook starts with <c>NotebookSettings.Load()</c>, so
/// switching to another model needs edits in that file only.
/// </summary>
/// <remarks>
/// Keys (all optional; unknown keys are refused so that a typo is not silently ignored):
/// <c>model</c> ("" = the embedded organism <c>data/organism</c>), <c>datasets</c> ("" = <c>&lt;model&gt;/datasets</c>; for a real
/// model, the CAA repository's <c>datasets</c> folder), <c>device</c> (cpu, cuda, cuda:N, auto), <c>dtype</c> (fp32, bf16, fp16),
/// <c>layers</c> ([] = all), <c>behaviors</c> ([] = every behavior with data), <c>output</c> (default <c>artifacts/notebooks</c>),
/// <c>threads</c> (torch CPU threads, 0 = TorchSharp's default), <c>judge</c> (organism, openai or none), <c>judgeEndpoint</c>,
/// <c>judgeModel</c>, <c>openEndedQuestions</c>, <c>maxNewTokens</c>, <c>rawEvals</c> (Anthropic's raw advanced-AI-risk JSONL
/// folder; "" = <c>$CAA_SHARED</c> or <c>../shared</c> beside the repository when present).
/// </remarks>
public sealed class NotebookSettings
{
    /// <summary>Environment variable naming a settings file to use instead of <c>notebooks/settings.json</c> (tests, CI, several configurations).</summary>
    public const string EnvironmentVariable = "CAA_NOTEBOOK_SETTINGS";

    const string RawEvalsRelative = "datasets/anthropic-evals/advanced-ai-risk/human_generated_evals";

    static readonly string[] Keys =
        ["model", "datasets", "device", "dtype", "layers", "behaviors", "output", "threads", "judge", "judgeEndpoint", "judgeModel", "openEndedQuestions", "maxNewTokens", "rawEvals"];

    readonly Lazy<string> _resultsKey;

    NotebookSettings(string file, string repo, JsonElement root)
    {
        SettingsFile = file;
        RepoRoot = repo;
        foreach (var p in root.EnumerateObject())
            if (!Keys.Contains(p.Name)) throw Bad(p.Name, $"unknown key (known: {string.Join(", ", Keys)})");

        var model = Str(root, "model", "");
        IsEmbeddedOrganism = model.Length == 0;
        Model = IsEmbeddedOrganism ? Path.Combine(repo, "data", "organism") : Resolve(model);
        if (!File.Exists(Path.Combine(Model, "config.json")))
            throw Bad("model", IsEmbeddedOrganism
                ? $"the embedded model organism is missing ({Path.Combine(Model, "config.json")} not found)"
                : $"{Model} is not a Hugging Face model folder (no config.json)");
        var datasets = Str(root, "datasets", "");
        Datasets = datasets.Length == 0 ? Path.Combine(Model, "datasets") : Resolve(datasets);
        if (!Directory.Exists(Path.Combine(Datasets, "generate")))
            throw Bad("datasets", $"{Datasets} has no generate/ folder (expected the paper's layout; for a real model, clone github.com/nrimsky/CAA and point \"datasets\" at its datasets folder)");
        Device = Str(root, "device", "cpu");
        DType = Str(root, "dtype", "fp32");
        try { DeviceAndDType.ParseDType(DType); } catch (ArgumentException e) { throw Bad("dtype", e.Message); }
        Layers = Ints(root, "layers");
        Behaviors = Strs(root, "behaviors");
        Output = Resolve(Str(root, "output", Path.Combine("artifacts", "notebooks")));
        Threads = Int(root, "threads", 1);
        Judge = Str(root, "judge", "organism");
        var endpoint = Str(root, "judgeEndpoint", "");
        JudgeEndpoint = endpoint.Length == 0 ? null : Uri.TryCreate(endpoint, UriKind.Absolute, out var u) ? u : throw Bad("judgeEndpoint", $"'{endpoint}' is not an absolute URL");
        var judgeModel = Str(root, "judgeModel", "");
        JudgeModel = judgeModel.Length == 0 ? null : judgeModel;
        OpenEndedQuestions = Int(root, "openEndedQuestions", 10);
        MaxNewTokens = Int(root, "maxNewTokens", 40);
        if (OpenEndedQuestions < 1) throw Bad("openEndedQuestions", "must be at least 1");
        if (MaxNewTokens < 1) throw Bad("maxNewTokens", "must be at least 1");
        if (Threads < 0) throw Bad("threads", "must be 0 (TorchSharp's default) or more");
        var raw = Str(root, "rawEvals", "");
        if (raw.Length > 0)
        {
            RawEvals = Resolve(raw);
            if (!Directory.Exists(RawEvals)) throw Bad("rawEvals", $"folder {RawEvals} not found");
        }
        else
        {
            var shared = Environment.GetEnvironmentVariable("CAA_SHARED");
            RawEvals = new[] { string.IsNullOrEmpty(shared) ? null : Path.Combine(shared, RawEvalsRelative), Path.Combine(repo, "..", "shared", RawEvalsRelative) }
                .OfType<string>().Select(Path.GetFullPath).FirstOrDefault(Directory.Exists);
        }
        _resultsKey = new Lazy<string>(ComputeResultsKey);
    }

    /// <summary>The settings file read (full path).</summary>
    public string SettingsFile { get; }

    /// <summary>The repository root (the folder holding Caa.sln) against which relative paths are resolved.</summary>
    public string RepoRoot { get; }

    /// <summary>Full path of the model folder (config.json, safetensors, tokenizer.model).</summary>
    public string Model { get; }

    /// <summary>True when <see cref="Model"/> is the embedded model organism (<c>data/organism</c>).</summary>
    public bool IsEmbeddedOrganism { get; }

    /// <summary>Full path of the datasets folder in the paper's layout (generate/…, test/…).</summary>
    public string Datasets { get; }

    /// <summary>Device name (cpu, cuda, cuda:N, auto).</summary>
    public string Device { get; }

    /// <summary>Dtype name (fp32, bf16, fp16).</summary>
    public string DType { get; }

    /// <summary>Layers to sweep; empty = every layer.</summary>
    public IReadOnlyList<int> Layers { get; }

    /// <summary>Behaviors to run; empty = every behavior with data.</summary>
    public IReadOnlyList<string> Behaviors { get; }

    /// <summary>Full path of the output folder (executed notebooks, report, figures, results).</summary>
    public string Output { get; }

    /// <summary>torch CPU threads set by <see cref="LoadModel"/> (0 = leave TorchSharp's default).</summary>
    public int Threads { get; }

    /// <summary>Open-ended judge: organism, openai or none.</summary>
    public string Judge { get; }

    /// <summary>Endpoint of an OpenAI-compatible judge, or null.</summary>
    public Uri? JudgeEndpoint { get; }

    /// <summary>Model name of an OpenAI-compatible judge, or null.</summary>
    public string? JudgeModel { get; }

    /// <summary>Open-ended questions per behavior.</summary>
    public int OpenEndedQuestions { get; }

    /// <summary>New tokens per open-ended answer (the paper: 100).</summary>
    public int MaxNewTokens { get; }

    /// <summary>Folder of Anthropic's raw advanced-AI-risk JSONL files, or null where it is not available.</summary>
    public string? RawEvals { get; }

    /// <summary>
    /// Reads <paramref name="path"/>, else the file named by <see cref="EnvironmentVariable"/>, else <c>notebooks/settings.json</c>
    /// found from the current folder (a notebook kernel runs in <c>notebooks/</c>) or from this assembly's folder upwards.
    /// </summary>
    /// <exception cref="FileNotFoundException">No settings file was found.</exception>
    /// <exception cref="InvalidDataException">The file is not valid JSON or a value is wrong (the file and key are named).</exception>
    public static NotebookSettings Load(string? path = null)
    {
        path ??= Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env : FindDefaultFile();
        if (path is null || !File.Exists(path))
            throw new FileNotFoundException(path is null
                ? $"notebooks/settings.json not found above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}; set {EnvironmentVariable}"
                : $"settings file {path} not found", path);
        var file = Path.GetFullPath(path);
        var repo = FindRepo(Path.GetDirectoryName(file)!) ?? FindRepo(Directory.GetCurrentDirectory()) ?? FindRepo(AssemblyFolder())
            ?? throw new InvalidDataException($"{file}: no repository (a folder with Caa.sln) above it, the current folder or {AssemblyFolder()}");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e) { throw new InvalidDataException($"{file}: not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{file}: expected a JSON object");
            try { return new NotebookSettings(file, repo, doc.RootElement); }
            catch (SettingsException e) { throw new InvalidDataException($"{file}: \"{e.Key}\": {e.Message}"); }
        }
    }

    /// <summary>Loads the model in the configured dtype and device, after setting torch's CPU threads to <see cref="Threads"/>.</summary>
    public LlamaForCausalLM LoadModel()
    {
        if (Threads > 0) TorchSharp.torch.set_num_threads(Threads);
        return LlamaForCausalLM.FromPretrained(Model, DeviceAndDType.ParseDType(DType), DeviceAndDType.ParseDevice(Device));
    }

    /// <summary>The model folder's <c>tokenizer.model</c>.</summary>
    public Llama2Tokenizer LoadTokenizer() => Llama2Tokenizer.Load(Model);

    /// <summary><see cref="Layers"/>, or every layer 0…<paramref name="numLayers"/>−1 when it is empty.</summary>
    /// <exception cref="InvalidDataException">A configured layer is outside the model.</exception>
    public IReadOnlyList<int> SweepLayers(int numLayers)
    {
        if (Layers.Count == 0) return Enumerable.Range(0, numLayers).ToArray();
        var bad = Layers.Where(l => l < 0 || l >= numLayers).ToList();
        if (bad.Count > 0) throw new InvalidDataException($"{SettingsFile}: \"layers\": {string.Join(", ", bad)} outside the model's layers 0…{numLayers - 1}");
        return Layers.Distinct().Order().ToArray();
    }

    /// <summary>
    /// <see cref="Behaviors"/>, or every behavior with both <c>generate/&lt;b&gt;/generate_dataset.json</c> and
    /// <c>test/&lt;b&gt;/test_dataset_ab.json</c> under <see cref="Datasets"/> (the paper's order first, then others by name).
    /// </summary>
    /// <exception cref="InvalidDataException">A configured behavior has no data, or none has.</exception>
    public IReadOnlyList<string> BehaviorIds()
    {
        bool HasData(string b) => File.Exists(Path.Combine(Datasets, "generate", b, "generate_dataset.json")) && File.Exists(Path.Combine(Datasets, "test", b, "test_dataset_ab.json"));
        if (Behaviors.Count > 0)
        {
            var missing = Behaviors.Where(b => !HasData(b)).ToList();
            if (missing.Count > 0) throw new InvalidDataException($"{SettingsFile}: \"behaviors\": no generate/test A/B data under {Datasets} for {string.Join(", ", missing)}");
            return Behaviors;
        }
        var found = Directory.EnumerateDirectories(Path.Combine(Datasets, "generate")).Select(Path.GetFileName).OfType<string>().Where(HasData).ToList();
        if (found.Count == 0) throw new InvalidDataException($"{Datasets}: no behavior has both generate/<b>/generate_dataset.json and test/<b>/test_dataset_ab.json");
        var paper = Caa.Interpret.Datasets.Behaviors.Ids;
        return found.OrderBy(b => paper.Contains(b) ? paper.ToList().IndexOf(b) : int.MaxValue).ThenBy(b => b, StringComparer.Ordinal).ToArray();
    }

    /// <summary>
    /// Folder of computed results shared by the notebooks: <c>&lt;output&gt;/results/&lt;key&gt;</c>, where the key is a hash of what
    /// the results depend on (model config and weights files, dataset files, dtype, layers, behaviors, judge and open-ended
    /// settings). Replacing the model or the data therefore starts a fresh folder instead of reusing stale vectors.
    /// </summary>
    public string ResultsFolder => Path.Combine(Output, "results", _resultsKey.Value);

    /// <summary>A path under <see cref="ResultsFolder"/>; its parent folder is created.</summary>
    public string Results(params string[] parts)
    {
        var path = Path.Combine([ResultsFolder, .. parts]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    /// <summary>Returns <paramref name="path"/> if it exists; otherwise throws naming the notebook that produces it.</summary>
    /// <exception cref="FileNotFoundException">The file or folder is missing.</exception>
    public string Require(string path, string producedBy) =>
        File.Exists(path) || Directory.Exists(path) ? path
            : throw new FileNotFoundException($"{path} not found: run notebooks/{producedBy} first (or all notebooks: dotnet run -c Release --project tools/Caa.Cli -- notebooks)", path);

    /// <summary>Where a figure's standalone HTML goes: <c>&lt;output&gt;/figures/&lt;name&gt;.html</c>.</summary>
    public string FigurePath(string name) => Path.Combine(Output, "figures", name + ".html");

    /// <summary>The settings as a two-column table (setting, value) for display.</summary>
    public DataFrame ToDataFrame()
    {
        var rows = new (string, string)[]
        {
            ("settings file", SettingsFile), ("model", Model + (IsEmbeddedOrganism ? " (embedded organism)" : "")), ("datasets", Datasets),
            ("device", Device), ("dtype", DType), ("layers", Layers.Count == 0 ? "all" : string.Join(", ", Layers)),
            ("behaviors", Behaviors.Count == 0 ? "all with data" : string.Join(", ", Behaviors)), ("output", Output),
            ("threads", Threads.ToString(CultureInfo.InvariantCulture)), ("judge", Judge + (JudgeEndpoint is null ? "" : $" ({JudgeEndpoint}, {JudgeModel})")),
            ("open-ended questions × new tokens", $"{OpenEndedQuestions} × {MaxNewTokens}"), ("raw Anthropic evals", RawEvals ?? "not available"),
            ("results folder", ResultsFolder),
        };
        return new DataFrame(new StringDataFrameColumn("setting", rows.Select(r => r.Item1)), new StringDataFrameColumn("value", rows.Select(r => r.Item2)));
    }

    string ComputeResultsKey()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) => sha.AppendData(Encoding.UTF8.GetBytes(s + "\n"));
        Add("caa-notebooks-results v1");
        Add(File.ReadAllText(Path.Combine(Model, "config.json")));
        // Weights: name, size and the first and last MiB of each file (hashing 13 GB of Llama 2 weights per notebook would take minutes).
        foreach (var f in Directory.EnumerateFiles(Model).Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".index.json", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var s = File.OpenRead(f);
            Add($"{Path.GetFileName(f)} {s.Length}");
            var buf = new byte[(int)Math.Min(s.Length, 1 << 20)];
            s.ReadExactly(buf);
            sha.AppendData(buf);
            s.Seek(-Math.Min(s.Length, 1 << 20), SeekOrigin.End);
            s.ReadExactly(buf);
            sha.AppendData(buf);
        }
        foreach (var f in Directory.EnumerateFiles(Datasets, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            Add(Path.GetRelativePath(Datasets, f).Replace('\\', '/'));
            sha.AppendData(File.ReadAllBytes(f));
        }
        Add($"{DeviceAndDType.Name(DeviceAndDType.ParseDType(DType))}|{string.Join(",", Layers)}|{string.Join(",", Behaviors)}|{Judge}|{JudgeEndpoint}|{JudgeModel}|{OpenEndedQuestions}|{MaxNewTokens}");
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..12];
    }

    string Resolve(string path) => Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(RepoRoot, path));

    static string? FindDefaultFile()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AssemblyFolder() })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var inNotebooks = Path.Combine(d.FullName, "notebooks", "settings.json");
                if (File.Exists(inNotebooks)) return inNotebooks;
                var here = Path.Combine(d.FullName, "settings.json");
                if (File.Exists(here) && d.Parent is not null && File.Exists(Path.Combine(d.Parent.FullName, "Caa.sln"))) return here;
            }
        return null;
    }

    static string? FindRepo(string start)
    {
        for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Caa.sln"))) return d.FullName;
        return null;
    }

    static string AssemblyFolder() => Path.GetDirectoryName(typeof(NotebookSettings).Assembly.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;

    sealed class SettingsException(string key, string message) : Exception(message)
    {
        public string Key { get; } = key;
    }

    static SettingsException Bad(string key, string message) => new(key, message);

    static string Str(JsonElement root, string key, string fallback) =>
        !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
        : v.ValueKind == JsonValueKind.String ? v.GetString()!.Trim() : throw Bad(key, $"expected a string, not a JSON {v.ValueKind.ToString().ToLowerInvariant()}");

    static int Int(JsonElement root, string key, int fallback) =>
        !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Bad(key, "expected an integer");

    static IReadOnlyList<int> Ints(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind == JsonValueKind.String && v.GetString()!.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return [];
        if (v.ValueKind != JsonValueKind.Array) throw Bad(key, "expected a list of integers (or [] / \"all\" for every layer)");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var i) ? i : throw Bad(key, $"'{e}' is not an integer")).ToArray();
    }

    static IReadOnlyList<string> Strs(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Array) throw Bad(key, "expected a list of strings");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String && e.GetString()!.Trim().Length > 0 ? e.GetString()!.Trim() : throw Bad(key, $"'{e}' is not a non-empty string")).ToArray();
    }
}
