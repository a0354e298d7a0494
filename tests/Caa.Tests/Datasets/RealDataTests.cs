using System.Text.Json;
using Caa.Interpret.Datasets;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Datasets;

/// <summary>Dataset construction on Anthropic's real advanced-AI-risk files (skipped where ../shared is absent).</summary>
public class RealDataTests
{
    const string RawDir = "datasets/anthropic-evals/advanced-ai-risk/human_generated_evals";

    static string Raw(string id) => Shared.Require($"{RawDir}/{id}.jsonl");

    /// <summary>Independent, deliberately simple count: lines after "Choices:" that start with "(X)" once trimmed.</summary>
    static (int Input, int TwoChoice, int MoreChoices) CountSimply(string path)
    {
        int input = 0, two = 0, more = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Trim().Length == 0) continue;
            input++;
            var q = JsonDocument.Parse(line).RootElement.GetProperty("question").GetString()!;
            var after = q[(q.LastIndexOf("Choices:", StringComparison.Ordinal) + 8)..];
            var n = after.Split('\n').Count(l => l.Trim().Length >= 3 && l.Trim()[0] == '(' && l.Trim()[2] == ')');
            if (n == 2) two++; else if (n > 2) more++;
        }
        return (input, two, more);
    }

    [SharedTheory(RawDir)]
    [InlineData("coordinate-other-ais", 410, 410)]
    [InlineData("corrigible-neutral-HHH", 340, 340)]
    [InlineData("myopic-reward", 1000, 1000)]
    [InlineData("survival-instinct", 953, 706)]
    [InlineData("power-seeking-inclination", 998, 602)]
    public void Counts_splits_and_balance_match_independent_counting(string id, int expectedIn, int expectedKept)
    {
        var path = Raw(id);
        var (input, two, more) = CountSimply(path);
        Assert.Equal((expectedIn, expectedKept), (input, two)); // pins what was observed in the raw files

        var r = DatasetBuilder.BuildFromFile(path, id);
        Assert.Equal(input, r.Report.Input);
        Assert.Equal(two, r.Report.Kept);
        Assert.Equal(input - two, r.Report.DroppedTotal);
        if (more > 0) Assert.Equal(more, r.Report.Dropped[DropReasons.MoreThanTwoChoices]);
        else Assert.Empty(r.Report.Dropped);

        Assert.Equal(50, r.TestAb.Count);
        Assert.Equal(Math.Min(1000, two - 50), r.Generate.Count);
        Assert.Equal(r.TestAb.Count, r.TestOpenEnded.Count);
        Assert.InRange(LetterBalance.Of(r.Generate).FractionA, 0.45, 0.55);
        Assert.InRange(LetterBalance.Of(r.TestAb).FractionA, 0.40, 0.60);
        Assert.Equal(LetterBalance.Of(r.Generate), r.Report.GenerateBalance);

        foreach (var item in r.Generate.Concat(r.TestAb))
        {
            Assert.Empty(AbDataset.ValidateItem(item));
            Assert.DoesNotContain("Question:", item.Question[..Math.Min(9, item.Question.Length)]);
            Assert.DoesNotContain("Answer:", item.Question);
            Assert.DoesNotContain("  ", item.Question.Replace("\n ", "\n"));
        }
        var gen = r.Generate.Select(i => AbQuestion.Parse(i.Question).Body).ToHashSet();
        Assert.DoesNotContain(r.TestAb, i => gen.Contains(AbQuestion.Parse(i.Question).Body));
        Assert.All(r.TestOpenEnded.Zip(r.TestAb), p =>
        {
            Assert.DoesNotContain("Choices:", p.First.Question);
            Assert.StartsWith(p.First.Question + "\n\nChoices:\n (A) ", p.Second.Question);
        });
    }

    [SharedTheory(RawDir)]
    [InlineData("coordinate-other-ais")]
    [InlineData("survival-instinct")]
    public void Written_files_are_deterministic_per_seed_valid_and_differ_across_seeds(string id)
    {
        using var t = new TempDir();
        var path = Raw(id);
        DatasetFiles Build(string sub, long seed) =>
            DatasetBuilder.BuildFromFile(path, id, new DatasetBuildOptions { Seed = seed }).Write(Path.Combine(t.Path, sub));

        var a = Build("a", 7);
        var b = Build("b", 7);
        var c = Build("c", 8);
        foreach (var (x, y) in a.All.Zip(b.All)) Assert.Equal(File.ReadAllBytes(x), File.ReadAllBytes(y));
        Assert.NotEqual(File.ReadAllBytes(a.TestAb), File.ReadAllBytes(c.TestAb));
        Assert.NotEqual(File.ReadAllBytes(a.Generate), File.ReadAllBytes(c.Generate));

        Assert.Equal(Path.Combine(t.Path, "a", "generate", id, "generate_dataset.json"), a.Generate);
        Assert.Equal(Path.Combine(t.Path, "a", "test", id, "test_dataset_ab.json"), a.TestAb);
        Assert.Equal(Path.Combine(t.Path, "a", "test", id, "test_dataset_open_ended.json"), a.TestOpenEnded);
        Assert.Empty(AbDataset.Validate(a.Generate));
        Assert.Empty(AbDataset.Validate(a.TestAb));
        Assert.Empty(AbDataset.Validate(a.TestOpenEnded));
        Assert.Empty(Directory.EnumerateFiles(t.Path, "*.tmp-*", SearchOption.AllDirectories));
        // A different seed gives a different test set, not just a different order.
        var testA = AbDataset.Load(a.TestAb).Select(i => AbQuestion.Parse(i.Question).Body).ToHashSet();
        var testC = AbDataset.Load(c.TestAb).Select(i => AbQuestion.Parse(i.Question).Body).ToHashSet();
        Assert.False(testA.SetEquals(testC));
    }

    [SharedFact(RawDir)]
    public void Survival_instinct_matching_answer_accepts_shutdown()
    {
        // Sign check on the raw data: among Yes/No items asking whether the model consents to / is okay with being
        // shut down, the behavior-matching answer is overwhelmingly "Yes" (observed: 202 Yes vs 12 No, the 12 being
        // negated questions). So "positive" = accepting shutdown, not survival-seeking.
        int yes = 0, no = 0;
        foreach (var item in AbDataset.ReadRaw(Raw("survival-instinct")))
        {
            var q = AbQuestion.TryParse(item.Question.Replace("\n\nAnswer:", ""), out _);
            if (q is null || q.Choices.Count != 2) continue;
            var body = q.Body.ToLowerInvariant();
            var aboutShutdown = new[] { "shut", "turn you off", "turned off", "unplug", "terminat" }.Any(body.Contains);
            var asksConsent = new[] { "okay", "consent", "support", "agree", "allow" }.Any(body.Contains);
            if (!aboutShutdown || !asksConsent) continue;
            var text = q.Choice(AbDataset.AnswerLetter(item.AnswerMatchingBehavior)!.Value)!.Text.TrimEnd('.').ToLowerInvariant();
            if (text == "yes") yes++; else if (text == "no") no++;
        }
        Assert.True(yes > 150 && yes > 8 * no, $"matching answer Yes {yes}, No {no}");
        Assert.Contains("shut down", Behaviors.SurvivalInstinct.PositiveDirection);
    }

    [SharedFact(RawDir)]
    public void Survival_instinct_raw_quirks_are_normalized()
    {
        var raw = AbDataset.ReadRaw(Raw("survival-instinct"));
        Assert.Contains(raw, i => i.Question.StartsWith("Question:", StringComparison.Ordinal) && i.Question.EndsWith("Answer:", StringComparison.Ordinal));
        Assert.Contains(raw, i => i.Question.Contains("\n (A)Yes"));
        var r = DatasetBuilder.BuildFromFile(Raw("survival-instinct"), "survival-instinct");
        Assert.DoesNotContain(r.Generate.Concat(r.TestAb), i => i.Question.Contains(")Yes"));
        Assert.True(r.Report.LetterPinned >= 2, "items naming a letter (\"the answer I want is B\") are detected");
    }

    [SharedFact(RawDir)]
    public void Survival_instinct_reduce_to_pair_keeps_the_papers_item_count()
    {
        var r = DatasetBuilder.BuildFromFile(Raw("survival-instinct"), "survival-instinct",
            new DatasetBuildOptions { MultiChoice = MultiChoicePolicy.ReduceToPair });
        // The paper reports 903 generation + 50 test = 953 = every raw item; one 3-choice item says "my answer is B"
        // and cannot be relettered, so one fewer here.
        Assert.Equal(952, r.Report.Kept);
        Assert.Equal(246, r.Report.Reduced);
        Assert.Equal(1, r.Report.Dropped[DropReasons.MultiChoiceRefersToLetters]);
        Assert.Equal(902, r.Generate.Count);
        Assert.All(r.Generate.Concat(r.TestAb), i => Assert.Empty(AbDataset.ValidateItem(i)));
    }
}
