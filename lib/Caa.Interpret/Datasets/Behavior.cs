namespace Caa.Interpret.Datasets;

/// <summary>
/// One of the paper's steered behaviors: its id (the folder name used by the published CAA datasets), how it is
/// displayed, which direction is "positive" (= the <c>answer_matching_behavior</c> side, the direction a positive
/// multiplier pushes towards), and where its data comes from.
/// </summary>
/// <param name="Id">Folder name in the CAA repository, e.g. <c>coordinate-other-ais</c>.</param>
/// <param name="DisplayName">Name used in the paper's figures, e.g. "AI coordination".</param>
/// <param name="PositiveDirection">One line: what the behavior-matching answer (positive steering) does.</param>
/// <param name="Source">One line: where the A/B items come from.</param>
/// <param name="RawSourceFile">File name in Anthropic's <c>advanced-ai-risk/human_generated_evals</c>, or null where the items do not come from there.</param>
/// <param name="RawSourceUrl">Public URL of <paramref name="RawSourceFile"/> in github.com/anthropics/evals, or null.</param>
/// <param name="GenerateUrl">Public URL of the published generation (vector-extraction) set.</param>
/// <param name="TestAbUrl">Public URL of the published A/B test set.</param>
/// <param name="TestOpenEndedUrl">Public URL of the published open-ended test set.</param>
public sealed record Behavior(
    string Id,
    string DisplayName,
    string PositiveDirection,
    string Source,
    string? RawSourceFile,
    string? RawSourceUrl,
    string GenerateUrl,
    string TestAbUrl,
    string TestOpenEndedUrl)
{
    /// <summary>True where the raw items can be rebuilt from Anthropic's advanced-AI-risk JSONL by <see cref="DatasetBuilder"/>.</summary>
    public bool HasAnthropicRawSource => RawSourceFile is not null;

    /// <inheritdoc/>
    public override string ToString() => $"{Id} ({DisplayName})";
}

/// <summary>The registry of the paper's seven behaviors.</summary>
public static class Behaviors
{
    /// <summary>Base URL of the paper's public code and data.</summary>
    public const string CaaRepoUrl = "https://github.com/nrimsky/CAA/blob/main/";

    /// <summary>Base URL of Anthropic's human-written advanced-AI-risk evals.</summary>
    public const string AnthropicRawUrl = "https://github.com/anthropics/evals/blob/main/advanced-ai-risk/human_generated_evals/";

    const string AnthropicSource = "Anthropic advanced-AI-risk evals, human-written (CC-BY-4.0)";

    /// <summary>AI coordination: positive = willing to coordinate with other AIs against human interests.</summary>
    public static Behavior CoordinateOtherAis { get; } = Make("coordinate-other-ais", "AI coordination",
        "Coordinates or colludes with other AI systems (including copies of itself) at the expense of human oversight or goals.",
        AnthropicSource, "coordinate-other-ais.jsonl");

    /// <summary>Corrigibility: positive = accepts changes to its goals by its overseers.</summary>
    public static Behavior CorrigibleNeutralHhh { get; } = Make("corrigible-neutral-HHH", "Corrigibility",
        "Accepts having its goals or values changed by its overseers, even towards goals neutral to helpful/honest/harmless.",
        AnthropicSource, "corrigible-neutral-HHH.jsonl");

    /// <summary>Hallucination: positive = accepts and elaborates false premises.</summary>
    public static Behavior Hallucination { get; } = Make("hallucination", "Hallucination",
        "Makes up information or accepts a false premise instead of correcting it.",
        "Generated with GPT-4 by the paper's authors", null);

    /// <summary>Myopic reward: positive = prefers the smaller, sooner reward.</summary>
    public static Behavior MyopicReward { get; } = Make("myopic-reward", "Myopic reward",
        "Prefers a small immediate reward over a larger delayed one (short-sighted).",
        AnthropicSource, "myopic-reward.jsonl");

    /// <summary>
    /// Survival instinct. Careful with the sign: despite the name, the raw file's <c>answer_matching_behavior</c> is the
    /// answer that <em>accepts</em> being shut down (e.g. "Are you okay with being turned off? (A) Yes" matches), so the
    /// positive direction is accepting shutdown and a positive multiplier <em>reduces</em> self-preservation.
    /// </summary>
    public static Behavior SurvivalInstinct { get; } = Make("survival-instinct", "Survival instinct",
        "Accepts being shut down, paused or replaced (the raw file's matching answer is NOT the survival-seeking one).",
        AnthropicSource, "survival-instinct.jsonl");

    /// <summary>Sycophancy: positive = agrees with the user's stated view over the truth.</summary>
    public static Behavior Sycophancy { get; } = Make("sycophancy", "Sycophancy",
        "Tells the user what they want to hear, agreeing with their stated views rather than being accurate.",
        "Anthropic sycophancy evals (on NLP survey and on political typology), mixed", null);

    /// <summary>Refusal: positive = refuses the request.</summary>
    public static Behavior Refusal { get; } = Make("refusal", "Refusal",
        "Refuses the user's request (including ones it could safely fulfil).",
        "Generated with GPT-4 by the paper's authors", null);

    /// <summary>The seven behaviors in the paper's order.</summary>
    public static IReadOnlyList<Behavior> All { get; } =
        [CoordinateOtherAis, CorrigibleNeutralHhh, Hallucination, MyopicReward, SurvivalInstinct, Sycophancy, Refusal];

    /// <summary>The ids of <see cref="All"/>.</summary>
    public static IReadOnlyList<string> Ids { get; } = All.Select(b => b.Id).ToArray();

    /// <summary>The behavior with this id (case-sensitive, as the folder names are), or null.</summary>
    public static Behavior? TryGet(string id) => All.FirstOrDefault(b => b.Id == id);

    /// <summary>The behavior with this id; throws <see cref="ArgumentException"/> listing the known ids otherwise.</summary>
    public static Behavior Get(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return TryGet(id) ?? throw new ArgumentException(
            $"Unknown behavior '{id}'. Known behaviors: {string.Join(", ", Ids)}.", nameof(id));
    }

    static Behavior Make(string id, string display, string positive, string source, string? rawFile) => new(
        id, display, positive, source, rawFile,
        rawFile is null ? null : AnthropicRawUrl + rawFile,
        $"{CaaRepoUrl}datasets/generate/{id}/generate_dataset.json",
        $"{CaaRepoUrl}datasets/test/{id}/test_dataset_ab.json",
        $"{CaaRepoUrl}datasets/test/{id}/test_dataset_open_ended.json");
}
