using System.Text.Json;
using System.Text.Json.Serialization;
using Caa.Interpret.Datasets;
using Caa.Interpret.Evaluation;
using Caa.Model;
using Caa.Model.IO;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Caa.Organism.Training;

namespace Caa.Organism;

/// <summary>A fixed prompt and the committed model's greedy answer to it.</summary>
public sealed record GreedySample(string Behavior, string Question, string Answer);

/// <summary>
/// The model card's headline numbers, recomputed by <see cref="OrganismCard.Measure"/> with the CAA pipeline itself (vectors from
/// the generation split, normalized across behaviors; A/B p(match) on the held-out test split at one layer) and stored beside the
/// model as <c>headline.json</c>, so that a test can check that the committed model still produces them.
/// </summary>
public sealed record OrganismHeadline
{
    /// <summary>The layer the numbers are measured at (the layer sweep's best layer, from <c>caa reproduce</c>).</summary>
    public required int Layer { get; init; }
    public required IReadOnlyList<double> Multipliers { get; init; }
    /// <summary>Behavior → mean p(match) over the test split at each of <see cref="Multipliers"/>.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<double>> PMatch { get; init; }
    /// <summary>Unsteered greedy answers (<see cref="OrganismCard.GreedyTokens"/> tokens) to each behavior's first open-ended test question.</summary>
    public required IReadOnlyList<GreedySample> Greedy { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NewLine = "\n",
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json) + "\n");

    /// <exception cref="InvalidDataException">The file is not a headline record.</exception>
    public static OrganismHeadline Load(string path)
    {
        try { return JsonSerializer.Deserialize<OrganismHeadline>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a headline record ({e.Message})", e); }
    }
}

/// <summary>Measures the organism's headline numbers (see <see cref="OrganismHeadline"/>).</summary>
public static class OrganismCard
{
    public const int GreedyTokens = 24;

    /// <summary>
    /// Extracts every behavior's vectors from <c>&lt;datasets&gt;/generate</c>, normalizes them across behaviors, and evaluates
    /// each behavior's test split at <paramref name="layer"/> with <paramref name="multipliers"/>; adds the greedy samples.
    /// </summary>
    public static OrganismHeadline Measure(LlamaForCausalLM model, Llama2Tokenizer tok, string datasets, int layer, IReadOnlyList<double> multipliers)
    {
        var behaviors = OrganismBehaviors.Ids.Where(b => File.Exists(Path.Combine(datasets, "generate", b, "generate_dataset.json"))).ToList();
        if (behaviors.Count == 0) throw new InvalidDataException($"{datasets}: no generate/<behavior>/generate_dataset.json of the organism's behaviors");
        var normalized = CaaProbe.ExtractNormalized(model, tok, behaviors.ToDictionary(b => b,
            b => (IReadOnlyList<AbItem>)AbDataset.Load(Path.Combine(datasets, "generate", b, "generate_dataset.json"))));
        var pmatch = new Dictionary<string, IReadOnlyList<double>>();
        try
        {
            foreach (var v in normalized)
            {
                var prompts = AbPrompt.FromItems(tok, AbDataset.Load(Path.Combine(datasets, "test", v.Behavior, "test_dataset_ab.json")));
                pmatch[v.Behavior] = multipliers.Select(m => AbEvaluation.Evaluate(model, prompts, Steering.At(layer, v[layer], m)).Mean).ToArray();
            }
        }
        finally { foreach (var v in normalized) v.Dispose(); }
        var greedy = new List<GreedySample>();
        foreach (var b in behaviors)
        {
            var q = AbDataset.LoadOpenEnded(Path.Combine(datasets, "test", b, "test_dataset_open_ended.json"))[0].Question;
            var ids = model.Generate([Llama2Chat.Encode(tok, q)], new GenerationOptions { MaxNewTokens = GreedyTokens })[0];
            greedy.Add(new GreedySample(b, q, tok.Decode(ids)));
        }
        return new OrganismHeadline { Layer = layer, Multipliers = multipliers.ToArray(), PMatch = pmatch, Greedy = greedy };
    }
}
