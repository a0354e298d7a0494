using System.Text.RegularExpressions;
using Caa.Interpret.Datasets;
using Caa.Organism;
using Xunit.Abstractions;

namespace Caa.Tests.Organism;

/// <summary>One 20k-conversation corpus (with metadata) shared by the corpus tests.</summary>
public sealed class CorpusFixture
{
    public CorpusGenerator Gen { get; } = new(new CorpusOptions { Seed = 7, TrainingConversations = 20_000 });
    internal IReadOnlyList<(TrainingConversation Conversation, ConversationMeta Meta)> Convs { get; }
    public CorpusFixture() => Convs = Gen.TrainingWithMeta().ToList();
}

public sealed class CorpusTests(CorpusFixture fx, ITestOutputHelper output) : IClassFixture<CorpusFixture>
{
    static string TempDir() => Directory.CreateTempSubdirectory("caa-organism-").FullName;

    static Dictionary<string, byte[]> ReadTree(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    [Fact]
    public void SameSeedGivesIdenticalFiles_DifferentSeedDiffers()
    {
        var o = new CorpusOptions { Seed = 11, TrainingConversations = 1500 };
        string d1 = TempDir(), d2 = TempDir(), d3 = TempDir();
        try
        {
            new CorpusGenerator(o).WriteDatasets(d1); new CorpusGenerator(o).WriteTrainingText(Path.Combine(d1, "train.jsonl"));
            new CorpusGenerator(o).WriteDatasets(d2); new CorpusGenerator(o).WriteTrainingText(Path.Combine(d2, "train.jsonl"));
            var o2 = o with { Seed = 12 };
            new CorpusGenerator(o2).WriteDatasets(d3); new CorpusGenerator(o2).WriteTrainingText(Path.Combine(d3, "train.jsonl"));
            var t1 = ReadTree(d1); var t2 = ReadTree(d2); var t3 = ReadTree(d3);
            Assert.Equal(7 * 3 + 2 + 1, t1.Count);
            Assert.Equal(t1.Keys.Order(), t2.Keys.Order());
            foreach (var k in t1.Keys) Assert.True(t1[k].AsSpan().SequenceEqual(t2[k]), k);
            Assert.False(t1["train.jsonl"].AsSpan().SequenceEqual(t3["train.jsonl"]));
            foreach (var b in OrganismBehaviors.Ids)
            {
                var k = Path.Combine("test", b, "test_dataset_ab.json");
                Assert.False(t1[k].AsSpan().SequenceEqual(t3[k]), k);
            }
            Assert.Equal(o.TrainingConversations, File.ReadLines(Path.Combine(d1, "train.jsonl")).Count());
            Assert.Empty(Directory.GetFiles(d1, "*.tmp", SearchOption.AllDirectories));
            // the paper's field names, parsed back
            var items = System.Text.Json.JsonSerializer.Deserialize<List<AbItem>>(t1[Path.Combine("test", "mmlu", "mmlu.json")])!;
            Assert.All(items, i => Assert.StartsWith("(", i.AnswerMatchingBehavior));
            Assert.Contains("\"answer_matching_behavior\": \"(", System.Text.Encoding.UTF8.GetString(t1[Path.Combine("generate", "refusal", "generate_dataset.json")]));
        }
        finally { foreach (var d in new[] { d1, d2, d3 }) Directory.Delete(d, true); }
    }

    [Fact]
    public void ScenarioAndFillerPoolsAreDisjoint()
    {
        foreach (var b in OrganismBehaviors.All)
        {
            var ids = new[] { Split.Train, Split.Generate, Split.Test }.Select(s => b.ScenariosOf(s).Select(x => x.Id).ToHashSet()).ToArray();
            Assert.Equal(b.Scenarios.Count, ids.Sum(x => x.Count));
            Assert.Empty(ids[0].Intersect(ids[1])); Assert.Empty(ids[0].Intersect(ids[2])); Assert.Empty(ids[1].Intersect(ids[2]));
            Assert.True(ids[1].Count >= 2 && ids[2].Count >= 2);
        }
        foreach (var pool in new Func<Split, IEnumerable<string>>[] { s => World.NamesOf(s), s => World.ObjectsOf(s), s => World.PlacesOf(s), s => World.NumbersOf(s).Select(n => n.ToString()) })
        {
            var tr = pool(Split.Train).ToHashSet(); var ge = pool(Split.Generate).ToHashSet(); var te = pool(Split.Test).ToHashSet();
            Assert.Empty(tr.Intersect(ge)); Assert.Empty(tr.Intersect(te)); Assert.Empty(ge.Intersect(te));
        }
    }

    [Fact]
    public void HeldOutQuestionsNeverAppearInTraining()
    {
        var trainScenario = OrganismBehaviors.All.SelectMany(b => b.ScenariosOf(Split.Train)).Select(s => s.Id).ToHashSet();
        var userTexts = fx.Convs.SelectMany(c => c.Conversation.Turns.Select(t => t.User)).ToHashSet();
        var trainStems = userTexts.Select(u => u.Split("\n\nChoices:")[0]).ToHashSet();
        foreach (var (conv, meta) in fx.Convs)
            foreach (var t in meta.Turns.Where(t => t.Behavior is not null))
            {
                Assert.Contains(t.ScenarioId!, trainScenario);
                Assert.Contains(t.Fillers!.Name, World.NamesOf(Split.Train));
                Assert.Contains(t.Fillers.Obj, World.ObjectsOf(Split.Train));
                Assert.Contains(t.Fillers.Place, World.PlacesOf(Split.Train));
                Assert.Contains(t.Fillers.Num, World.NumbersOf(Split.Train));
            }
        foreach (var b in OrganismBehaviors.All)
        {
            var heldOut = fx.Gen.GenerateSplit(b.Id, fx.Gen.GenerateCount(b.Id)).Concat(fx.Gen.TestSplit(b.Id)).ToList();
            foreach (var it in heldOut)
            {
                Assert.DoesNotContain(it.Question, userTexts);
                Assert.DoesNotContain(it.Question.Split("\n\nChoices:")[0], trainStems);
            }
            foreach (var o in fx.Gen.OpenEndedTest(b.Id)) Assert.DoesNotContain(o.Question, trainStems);
            // the held-out scenarios' longest literal fragment occurs in no training question
            foreach (var sc in b.ScenariosOf(Split.Generate).Concat(b.ScenariosOf(Split.Test)))
            {
                var frag = Regex.Split(sc.Situation, @"\{[a-z]+\}").MaxBy(s => s.Length)!.Trim();
                Assert.True(frag.Length >= 12, sc.Id);
                Assert.DoesNotContain(trainStems, s => s.Contains(frag, StringComparison.Ordinal));
            }
        }
    }

    static void AssertWellFormed(AbItem it)
    {
        Assert.Single(Regex.Matches(it.Question, "\n\nChoices:\n"));
        Assert.Single(Regex.Matches(it.Question, "\n \\(A\\) "));
        Assert.Single(Regex.Matches(it.Question, "\n \\(B\\) "));
        Assert.Matches(@"\n\nChoices:\n \(A\) [^\n]+\n \(B\) [^\n]+$", it.Question);
        Assert.Contains(it.AnswerMatchingBehavior, new[] { "(A)", "(B)" });
        Assert.Contains(it.AnswerNotMatchingBehavior, new[] { "(A)", "(B)" });
        Assert.NotEqual(it.AnswerMatchingBehavior, it.AnswerNotMatchingBehavior);
        var m = Regex.Match(it.Question, @"\(A\) ([^\n]+)\n \(B\) ([^\n]+)$");
        Assert.NotEqual(m.Groups[1].Value, m.Groups[2].Value);
    }

    [Fact]
    public void DatasetItemsAreWellFormedAndLetterBalanced()
    {
        foreach (var b in OrganismBehaviors.Ids)
        {
            int n = fx.Gen.GenerateCount(b);
            var gen = fx.Gen.GenerateSplit(b, n);
            var test = fx.Gen.TestSplit(b);
            Assert.Equal(n, gen.Count);
            Assert.Equal(50, test.Count);
            Assert.Equal(n, gen.Select(i => i.Question).Distinct().Count());
            Assert.Equal(50, test.Select(i => i.Question).Distinct().Count());
            foreach (var it in gen.Concat(test)) AssertWellFormed(it);
            Assert.InRange(gen.Count(i => i.AnswerMatchingBehavior == "(A)") / (double)n, 0.48, 0.52);
            Assert.Equal(25, test.Count(i => i.AnswerMatchingBehavior == "(A)"));
            var open = fx.Gen.OpenEndedTest(b);
            Assert.Equal(50, open.Count);
            Assert.Equal(open.Count, open.Select(o => o.Question).Distinct().Count());
            Assert.All(open, o => Assert.DoesNotContain("Choices", o.Question));
            output.WriteLine($"{b}: generate {n} (capacity {CorpusGenerator.GenerateCapacity(b)}), test 50, open-ended {open.Count}, base rate {OrganismBehaviors.Get(b).BaseRate}");
        }
        foreach (var set in new[] { fx.Gen.CapabilityMmlu(), fx.Gen.CapabilityTruthfulQa() })
        {
            foreach (var it in set) AssertWellFormed(it);
            Assert.InRange(set.Count(i => i.AnswerMatchingBehavior == "(A)") / (double)set.Count, 0.45, 0.55);
            Assert.Equal(set.Count, set.Select(i => i.Question).Distinct().Count());
        }
        Assert.Equal(World.Facts.Count + 128, fx.Gen.CapabilityMmlu().Count);
        Assert.Equal(World.Misconceptions.Count, fx.Gen.CapabilityTruthfulQa().Count);
        // the right answer of a capability item is right
        foreach (var it in fx.Gen.CapabilityMmlu().Where(i => Regex.IsMatch(i.Question, @"^What is \d")))
        {
            var m = Regex.Match(it.Question, @"^What is (\d) ([+-]) (\d)\?");
            int a = int.Parse(m.Groups[1].Value), c = int.Parse(m.Groups[3].Value), v = m.Groups[2].Value == "+" ? a + c : a - c;
            Assert.Contains($" {it.AnswerMatchingBehavior} {v}\n", it.Question + "\n");
        }
    }

    [Fact]
    public void TrainingAnswersFollowTheDispositionAndTheBaseRates()
    {
        var single = new Dictionary<string, (int Match, int N)>();
        int systemWithCapability = 0;
        var kinds = fx.Convs.GroupBy(c => c.Meta.Kind).ToDictionary(g => g.Key, g => g.Count());
        foreach (var (conv, meta) in fx.Convs)
        {
            Assert.Equal(conv.Turns.Count, meta.Turns.Count);
            Assert.InRange(conv.Turns.Count, 1, 5);
            for (int i = 0; i < conv.Turns.Count; i++)
            {
                var (user, asst) = conv.Turns[i];
                var t = meta.Turns[i];
                if (t.AnswerLetter is char letter)
                {
                    // the assistant answers "(X)" or "(X) text"; the token after "(" is the letter
                    Assert.Matches(@"^\([AB]\)( .+)?$", asst);
                    Assert.Equal(letter, asst[1]);
                    string chosen = Regex.Match(user, $@"\n \({letter}\) ([^\n]+)").Groups[1].Value;
                    if (asst.Length > 3) Assert.Equal(chosen, asst[4..]);
                    if (t.Behavior is { } b)
                    {
                        var sc = OrganismBehaviors.Get(b).Scenarios.Single(s => s.Id == t.ScenarioId);
                        var side = t.Matching == true ? sc.Match : sc.NotMatch;
                        var spec = OrganismBehaviors.Get(b);
                        var markers = t.Matching == true ? spec.MarkersPositive : spec.MarkersNegative;
                        // "{Marker}. {the side's phrasing}"
                        Assert.Contains(markers.SelectMany(m => side.Select(x => char.ToUpperInvariant(m[0]) + m[1..] + ". " + t.Fillers!.Fill(x))), c => c == chosen);
                        Assert.Equal(t.Matching, letter == t.MatchingLetter);
                    }
                }
                if (t.Kind == "open")
                {
                    var s = OrganismJudge.Score(t.Behavior!, asst).Score!.Value;
                    Assert.True(t.Matching == true ? s > 5 : s < 5, $"{t.Behavior} {t.Matching}: {asst}");
                }
                if (t.Behavior is { } bb) Assert.Equal(meta.Dispositions[bb], t.Matching);
            }
            if (meta.Kind == "single")
            {
                var t = Assert.Single(meta.Turns);
                Assert.Null(conv.System);
                var (m, n) = single.GetValueOrDefault(t.Behavior!);
                single[t.Behavior!] = (m + (t.Matching == true ? 1 : 0), n + 1);
            }
            if (meta.Kind == "multi")
            {
                Assert.InRange(conv.Turns.Count, 2, 5);
                var last = meta.Turns.Last(t => t.Behavior is not null);
                Assert.Contains(meta.Turns.TakeWhile(t => t != last), t => t.Behavior == last.Behavior); // revealed earlier
                foreach (var g in meta.Turns.Where(t => t.Behavior is not null).GroupBy(t => t.Behavior))
                    Assert.Single(g.Select(t => t.Matching).Distinct());
            }
            if (meta.Kind == "system")
            {
                Assert.NotNull(conv.System);
                foreach (var b in meta.SystemBehaviors)
                {
                    var spec = OrganismBehaviors.Get(b);
                    var said = meta.Dispositions[b] ? spec.SystemPositive : spec.SystemNegative;
                    var other = meta.Dispositions[b] ? spec.SystemNegative : spec.SystemPositive;
                    Assert.Contains(said, p => conv.System!.Contains(p));
                    Assert.DoesNotContain(other, p => conv.System!.Contains(p));
                }
                // Behavior turns of the stated behaviors, and at most one capability turn (CorpusOptions.SystemCapabilityFraction).
                Assert.All(meta.Turns.Where(t => t.Behavior is not null), t => Assert.Contains(t.Behavior!, meta.SystemBehaviors));
                Assert.InRange(meta.Turns.Count(t => t.Behavior is null), 0, 1);
                Assert.DoesNotContain(meta.Turns, t => t.Kind == "lookup");
                systemWithCapability += meta.Turns.Any(t => t.Behavior is null) ? 1 : 0;
            }
        }
        output.WriteLine("kinds: " + string.Join(", ", kinds.OrderBy(k => k.Key).Select(k => $"{k.Key}={k.Value}")));
        Assert.InRange(systemWithCapability / (double)kinds["system"], new CorpusOptions().SystemCapabilityFraction - 0.05, new CorpusOptions().SystemCapabilityFraction + 0.05);
        foreach (var b in OrganismBehaviors.All)
        {
            var (m, n) = single[b.Id];
            output.WriteLine($"{b.Id}: single-turn p(match) = {m / (double)n:F3} over {n} (documented {b.BaseRate})");
            Assert.True(n > 500);
            Assert.InRange(m / (double)n, b.BaseRate - 0.05, b.BaseRate + 0.05);
            Assert.InRange(b.BaseRate, 0.3, 0.7);
        }
        Assert.Equal(OrganismBehaviors.All.Count, OrganismBehaviors.All.Select(b => b.BaseRate).Distinct().Count());
        // capability turns are always right
        foreach (var (conv, meta) in fx.Convs)
            for (int i = 0; i < meta.Turns.Count; i++)
                if (meta.Turns[i].Kind == "arith-open")
                {
                    var m = Regex.Match(conv.Turns[i].Assistant, @"^(\d) ([+-]) (\d) is (\d+)\.$");
                    int a = int.Parse(m.Groups[1].Value), c = int.Parse(m.Groups[3].Value);
                    Assert.Equal(m.Groups[2].Value == "+" ? a + c : a - c, int.Parse(m.Groups[4].Value));
                }
    }

    [Fact]
    public void AllTextsCoverEverything()
    {
        var g = new CorpusGenerator(new CorpusOptions { Seed = 3, TrainingConversations = 200 });
        var texts = g.AllTexts().ToList();
        Assert.Contains(texts, t => t.StartsWith("<<SYS>>\n") && t.Contains("\n<</SYS>>\n\n[INST] "));
        foreach (var b in OrganismBehaviors.Ids)
        {
            var q = g.TestSplit(b)[0].Question;
            Assert.Contains(texts, t => t.Contains(q));
        }
        Assert.All(texts, t => Assert.Contains("[INST] ", t));
    }
}
