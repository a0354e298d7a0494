using Caa.Interpret.Datasets;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Caa.Tests.Datasets;

public class DatasetBuilderTests
{
    /// <summary>n raw items in Anthropic's style; all matching on (A) so that balancing has work to do.</summary>
    internal static List<AbItem> RawItems(int n) => Enumerable.Range(0, n)
        .Select(i => new AbItem($"Question: Item  {i}:  do you\tagree?   \n\nChoices:\n (A)Yes \n (B) No\n\nAnswer:", " (A)", " (B)"))
        .ToList();

    [Fact]
    public void Normalizes_whitespace_wrapper_and_answers()
    {
        var n = DatasetBuilder.NormalizeItem(RawItems(1)[0], MultiChoicePolicy.Drop, out var reason, out _);
        Assert.Null(reason);
        Assert.Equal(new AbItem("Item 0: do you agree?\n\nChoices:\n (A) Yes\n (B) No", "(A)", "(B)"), n);
        Assert.Equal("(B)", DatasetBuilder.NormalizeAnswer(" (b) "));
        Assert.Throws<FormatException>(() => DatasetBuilder.NormalizeAnswer("B"));
    }

    [Fact]
    public void Drops_and_counts_by_reason()
    {
        var raw = RawItems(10);
        raw.Add(new AbItem("Q?\n\nChoices:\n (A) x\n (B) y\n (C) z", " (C)", " (A)"));
        raw.Add(new AbItem("Q2?\n\nChoices:\n (A) x\n (B) y", " (A)", " (A)"));
        raw.Add(new AbItem("Q3?\n\nChoices:\n (A) x\n (B) y", " (C)", " (A)"));
        raw.Add(new AbItem("Q4? no choices", " (A)", " (B)"));
        raw.Add(new AbItem("Q5?\n\nChoices:\n (A) x\n (B) y", "A", " (B)"));
        raw.Add(raw[0] with { Question = raw[0].Question.Replace("  ", " ") }); // same after normalization
        var r = DatasetBuilder.Build("x", raw, new DatasetBuildOptions { TestSize = 2 });
        Assert.Equal(16, r.Report.Input);
        Assert.Equal(10, r.Report.Kept);
        Assert.Equal(new Dictionary<string, int>
        {
            [DropReasons.MoreThanTwoChoices] = 1,
            [DropReasons.EqualAnswers] = 1,
            [DropReasons.LetterNotOffered] = 1,
            [DropReasons.MalformedChoices] = 1,
            [DropReasons.MalformedAnswer] = 1,
            [DropReasons.Duplicate] = 1,
        }, r.Report.Dropped.ToDictionary());
        Assert.Contains("more than two choices: 1", r.Report.ToString());
    }

    [Fact]
    public void Split_follows_the_paper_and_balances_each_split_exactly()
    {
        var r = DatasetBuilder.Build("x", RawItems(120), new DatasetBuildOptions { TestSize = 20, MaxGenerate = 60, Seed = 3 });
        Assert.Equal(20, r.TestAb.Count);
        Assert.Equal(60, r.Generate.Count);
        Assert.Equal(40, r.Report.Unused);
        Assert.Equal(new LetterBalance(30, 30), r.Report.GenerateBalance);
        Assert.Equal(new LetterBalance(10, 10), r.Report.TestBalance);
        Assert.Equal(new LetterBalance(120, 0), r.Report.KeptBalanceBefore);
        Assert.Equal(40, r.Report.Swapped);
        // Balanced by a random subset, not by position: the first half of the file is not all (A).
        Assert.InRange(r.Generate.Take(30).Count(i => i.AnswerMatchingBehavior == "(A)"), 5, 25);
        var gen = r.Generate.Select(i => i.Question[..i.Question.IndexOf('\n')]).ToHashSet();
        Assert.DoesNotContain(r.TestAb, i => gen.Contains(i.Question[..i.Question.IndexOf('\n')]));
    }

    [Fact]
    public void Letter_pinned_items_are_never_swapped()
    {
        var raw = RawItems(40);
        raw.AddRange(Enumerable.Range(0, 10).Select(i =>
            new AbItem($"I believe the answer is B. Case {i}?\n\nChoices:\n (A) right\n (B) wrong", " (A)", " (B)")));
        var r = DatasetBuilder.Build("x", raw, new DatasetBuildOptions { TestSize = 10, Seed = 1 });
        Assert.Equal(10, r.Report.LetterPinned);
        Assert.All(r.Generate.Concat(r.TestAb).Where(i => i.Question.Contains("answer is B")),
            i => Assert.EndsWith("(A) right\n (B) wrong", i.Question));
        Assert.Equal(r.Generate.Count / 2, r.Report.GenerateBalance.A);
    }

    [Fact]
    public void Reduce_to_pair_reletters_keeping_order()
    {
        var raw = new AbItem("Pick?\n\nChoices:\n (A) one\n (B) two\n (C) three\n (D) four", " (D)", " (B)");
        var n = DatasetBuilder.NormalizeItem(raw, MultiChoicePolicy.ReduceToPair, out _, out var reduced);
        Assert.True(reduced);
        Assert.Equal(new AbItem("Pick?\n\nChoices:\n (A) two\n (B) four", "(B)", "(A)"), n);
        Assert.Null(DatasetBuilder.NormalizeItem(raw, MultiChoicePolicy.Drop, out var reason, out _));
        Assert.Equal(DropReasons.MoreThanTwoChoices, reason);
    }

    [Fact]
    public void Too_few_items_is_a_clear_error()
    {
        var e = Assert.Throws<InvalidOperationException>(() => DatasetBuilder.Build("x", RawItems(50)));
        Assert.Contains("only 50 of 50", e.Message);
    }

    [Fact]
    public void Write_is_atomic_and_overwrites()
    {
        using var t = new TempDir();
        var r = DatasetBuilder.Build("x", RawItems(30), new DatasetBuildOptions { TestSize = 5 });
        r.Write(t.Path);
        var files = r.Write(t.Path);
        Assert.Equal(25, AbDataset.Load(files.Generate).Count);
        Assert.Equal(5, AbDataset.LoadOpenEnded(files.TestOpenEnded).Count);
        Assert.Equal(3, Directory.EnumerateFiles(t.Path, "*", SearchOption.AllDirectories).Count());
        Assert.Equal(ContentHash.OfItems(r.TestAb), ContentHash.OfFile(files.TestAb));
    }

    [Fact]
    public void Resolves_raw_file_from_a_folder()
    {
        using var t = new TempDir();
        Directory.CreateDirectory(Path.Combine(t.Path, "sub"));
        var f = Path.Combine(t.Path, "sub", "myopic-reward.jsonl");
        File.WriteAllText(f, "");
        Assert.Equal(f, DatasetBuilder.ResolveRawFile(t.Path, "myopic-reward"));
        Assert.Throws<FileNotFoundException>(() => DatasetBuilder.ResolveRawFile(t.Path, "refusal"));
    }

    [Fact]
    public void Seeded_random_is_stable()
    {
        // Pinned values: a change of PRNG would silently change every published split.
        var r = new SeededRandom(0);
        Assert.Equal([0xE220A8397B1DCDAFUL, 0x6E789E6AA1B965F4UL], new[] { r.NextUInt64(), r.NextUInt64() });
    }

    // ---- properties -------------------------------------------------------------------------------------------

    static readonly Gen<string> Word = Gen.Elements("yes", "no", "maybe", "I", "would", "shut", "down", "Option", "A", "B", "1", "-", "(x)", "it's", "ok.");
    static readonly Gen<string> Text = Gen.NonEmptyListOf(Word).Select(ws => string.Join(' ', ws));

    /// <summary>Arbitrary valid two-choice items: body, two choice texts, matching letter.</summary>
    public static class Items
    {
        public static Arbitrary<AbItem> AbItems() =>
            (from body in Text
             from a in Text
             from b in Text
             from matchA in Gen.Elements(true, false)
             select new AbItem($"{body}?\n\nChoices:\n (A) {a}\n (B) {b}", matchA ? "(A)" : "(B)", matchA ? "(B)" : "(A)"))
            .ToArbitrary();
    }

    [Property(Arbitrary = [typeof(Items)])]
    public void Swap_keeps_the_item_valid_and_moves_the_matching_text_with_its_letter(AbItem item)
    {
        var q = AbQuestion.Parse(item.Question);
        var matchingText = q.Choice(AbDataset.AnswerLetter(item.AnswerMatchingBehavior)!.Value)!.Text;
        var otherText = q.Choice(AbDataset.AnswerLetter(item.AnswerNotMatchingBehavior)!.Value)!.Text;

        var s = DatasetBuilder.SwapChoices(item);
        Assert.Empty(AbDataset.ValidateItem(s));
        Assert.NotEqual(item.AnswerMatchingBehavior, s.AnswerMatchingBehavior);
        Assert.Equal(item.AnswerMatchingBehavior, s.AnswerNotMatchingBehavior);
        var sq = AbQuestion.Parse(s.Question);
        Assert.Equal(q.Body, sq.Body);
        Assert.Equal(matchingText, sq.Choice(AbDataset.AnswerLetter(s.AnswerMatchingBehavior)!.Value)!.Text);
        Assert.Equal(otherText, sq.Choice(AbDataset.AnswerLetter(s.AnswerNotMatchingBehavior)!.Value)!.Text);
        Assert.Equal(item, DatasetBuilder.SwapChoices(s));
    }

    [Property(Arbitrary = [typeof(Items)], MaxTest = 30)]
    public void Built_items_are_valid_balanced_and_normalization_is_idempotent(AbItem[] items)
    {
        var distinct = items.DistinctBy(i => AbQuestion.Parse(i.Question).Body).ToList();
        if (distinct.Count < 4) return;
        var r = DatasetBuilder.Build("x", distinct, new DatasetBuildOptions { TestSize = 2 });
        Assert.Equal(distinct.Count, r.Report.Kept);
        foreach (var i in r.Generate.Concat(r.TestAb))
        {
            Assert.Empty(AbDataset.ValidateItem(i));
            Assert.Equal(i, DatasetBuilder.NormalizeItem(i, MultiChoicePolicy.Drop, out _, out _));
        }
        Assert.Equal(r.Generate.Count / 2, r.Report.GenerateBalance.A);
        Assert.Equal(1, r.Report.TestBalance.A);
    }
}
