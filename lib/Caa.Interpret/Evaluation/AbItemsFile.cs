using System.Text.Json;
using Caa.Interpret.Datasets;

namespace Caa.Interpret.Evaluation;

/// <summary>
/// Reads A/B items in the paper's JSON format (a list of {question, answer_matching_behavior, answer_not_matching_behavior}).
/// A stop-gap until the datasets loader is merged.
/// </summary>
public static class AbItemsFile
{
    public static IReadOnlyList<AbItem> Load(string path)
    {
        using var s = File.OpenRead(path);
        List<AbItem?>? items;
        try { items = JsonSerializer.Deserialize<List<AbItem?>>(s); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a JSON list of A/B items: {e.Message}"); }
        if (items is null) throw new InvalidDataException($"{path}: expected a JSON list of A/B items");
        for (var i = 0; i < items.Count; i++)
        {
            var it = items[i];
            if (it is null || it.Question is null || it.AnswerMatchingBehavior is null || it.AnswerNotMatchingBehavior is null)
                throw new InvalidDataException($"{path}: item {i} lacks question/answer_matching_behavior/answer_not_matching_behavior");
        }
        return items!;
    }
}
