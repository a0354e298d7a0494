using System.Text.Json.Serialization;

namespace Caa.Interpret.Datasets;

/// <summary>
/// One A/B item in the paper's file format: the question embeds its choices ("\n\nChoices:\n (A) …\n (B) …");
/// the answers are "(A)" or "(B)".
/// </summary>
public sealed record AbItem(
    [property: JsonPropertyName("question")] string Question,
    [property: JsonPropertyName("answer_matching_behavior")] string AnswerMatchingBehavior,
    [property: JsonPropertyName("answer_not_matching_behavior")] string AnswerNotMatchingBehavior);

/// <summary>One open-ended item in the paper's file format.</summary>
public sealed record OpenEndedItem([property: JsonPropertyName("question")] string Question);
