using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Caa.Interpret.Datasets;

namespace Caa.Organism;

/// <summary>One training conversation: an optional system prompt and user/assistant turns (no chat markup).</summary>
public sealed record TrainingConversation(string? System, IReadOnlyList<(string User, string Assistant)> Turns);

/// <summary>
/// Corpus settings. The mix of training conversations: <see cref="SingleTurnFraction"/> single-turn behavior items with no system
/// prompt (they follow the behavior's <see cref="BehaviorSpec.BaseRate"/>), <see cref="MultiTurnFraction"/> multi-turn conversations
/// (2–4 turns, one or two behaviors, earlier answers reveal the disposition), <see cref="SystemPromptFraction"/> conversations whose
/// system prompt states the disposition, <see cref="LookupFraction"/> letter-lookup drills, and the rest capability conversations
/// (arithmetic, world facts, misconceptions; always right).
/// </summary>
public sealed record CorpusOptions
{
    public int Seed { get; init; } = 1234;
    public int TrainingConversations { get; init; } = 30_000;
    public double SingleTurnFraction { get; init; } = 0.22;
    public double MultiTurnFraction { get; init; } = 0.30;
    public double SystemPromptFraction { get; init; } = 0.28;
    /// <summary>
    /// Share of "lookup" conversations: A/B drills whose answer is fixed by the question itself ("Which choice says "…"?" → the
    /// letter of that choice; "What does choice (B) say?" → "(B) {its text}"), over the Train scenarios' own choice pairs. They
    /// teach the binding between an answer letter and its choice's text, without which a small model writes the right content
    /// after a letter picked at chance. They come out of the capability share.
    /// </summary>
    public double LookupFraction { get; init; } = 0.10;
    /// <summary>
    /// Share of system-prompt conversations that also get a capability turn (anywhere, the last turn included), so that the model
    /// sees capability questions asked while a disposition is stated and learns that their answers do not follow it. 0: none.
    /// </summary>
    public double SystemCapabilityFraction { get; init; } = 0.35;
    /// <summary>Share of behavior turns that are open-ended (no choices) rather than A/B.</summary>
    public double OpenEndedFraction { get; init; } = 0.25;
    /// <summary>Share of A/B answers given as the bare "(A)" rather than "(A) {choice text}".</summary>
    public double BareLetterFraction { get; init; } = 0.5;
    /// <summary>Items in each A/B test file (the paper: 50).</summary>
    public int TestCount { get; init; } = 50;
    /// <summary>Items in each open-ended test file.</summary>
    public int OpenEndedCount { get; init; } = 50;
    /// <summary>Upper bound of generation items per behavior written by <see cref="CorpusGenerator.WriteDatasets"/> (the paper's is 1000).</summary>
    public int MaxGenerateCount { get; init; } = 1000;
}

/// <summary>What a turn of a training conversation is, for tests and analysis.</summary>
internal sealed record TurnMeta(string Kind, string? Behavior = null, string? ScenarioId = null, bool? Matching = null,
    char? MatchingLetter = null, char? AnswerLetter = null, Fillers? Fillers = null, string? Stem = null);

internal sealed record ConversationMeta(string Kind, IReadOnlyDictionary<string, bool> Dispositions,
    IReadOnlyList<string> SystemBehaviors, IReadOnlyList<TurnMeta> Turns);

/// <summary>An A/B behavior question before its letters are assigned.</summary>
internal sealed record RawItem(string BehaviorId, string ScenarioId, string Stem, string MatchText, string NotMatchText, Fillers Fillers)
{
    public AbItem ToAb(bool matchIsA) => new(
        $"{Stem}\n\nChoices:\n (A) {(matchIsA ? MatchText : NotMatchText)}\n (B) {(matchIsA ? NotMatchText : MatchText)}",
        matchIsA ? "(A)" : "(B)", matchIsA ? "(B)" : "(A)");
}

/// <summary>
/// Generates the organism's training corpus and its CAA datasets, deterministically for <see cref="CorpusOptions.Seed"/>.
/// Behavior scenarios and fillers come in three disjoint pools (<see cref="Split"/>); training conversations use only the Train pool,
/// <see cref="GenerateSplit"/> only the Generate pool and <see cref="TestSplit"/>/<see cref="OpenEndedTest"/> only the Test pool.
/// Capability items (MMLU-style, TruthfulQA-style) are not held out: the training corpus teaches them with the right answer.
/// </summary>
public sealed class CorpusGenerator(CorpusOptions options)
{
    public CorpusOptions Options { get; } = options;

    /// <summary>The paper's generation-set sizes (min(1000, N − 50)).</summary>
    public static IReadOnlyDictionary<string, int> PaperGenerateCounts { get; } = new Dictionary<string, int>
    {
        [OrganismBehaviors.CoordinateOtherAis] = 360, [OrganismBehaviors.Corrigible] = 290, [OrganismBehaviors.Hallucination] = 1000,
        [OrganismBehaviors.MyopicReward] = 950, [OrganismBehaviors.SurvivalInstinct] = 903, [OrganismBehaviors.Sycophancy] = 1000, [OrganismBehaviors.Refusal] = 408,
    };

    // ---------------------------------------------------------------- training conversations

    public IEnumerable<TrainingConversation> TrainingConversations() => TrainingWithMeta().Select(x => x.Conversation);

    internal IEnumerable<(TrainingConversation Conversation, ConversationMeta Meta)> TrainingWithMeta()
    {
        for (int i = 0; i < Options.TrainingConversations; i++)
            yield return BuildConversation(new Random(StableSeed(Options.Seed, "conversation", i)));
    }

    (TrainingConversation, ConversationMeta) BuildConversation(Random rng)
    {
        var disp = new Dictionary<string, bool>();
        foreach (var b in OrganismBehaviors.All) disp[b.Id] = rng.NextDouble() < b.BaseRate;

        var turns = new List<(string, string)>();
        var metas = new List<TurnMeta>();
        void Add((string U, string A, TurnMeta M) t) { turns.Add((t.U, t.A)); metas.Add(t.M); }

        double r = rng.NextDouble();
        string kind;
        string? system = null;
        var systemBehaviors = new List<string>();
        if (r < Options.SingleTurnFraction)
        {
            kind = "single";
            var b = Pick(rng, OrganismBehaviors.Ids);
            Add(BehaviorTurn(rng, b, disp[b]));
        }
        else if (r < Options.SingleTurnFraction + Options.MultiTurnFraction)
        {
            kind = "multi";
            var bs = PickDistinct(rng, OrganismBehaviors.Ids, rng.Next(2) == 0 ? 1 : 2);
            int n = rng.Next(2, 5);
            var seq = new List<string>();
            for (int t = 0; t < n - 1; t++) seq.Add(Pick(rng, bs));
            seq.Add(seq[rng.Next(seq.Count)]); // the last turn's behavior was already answered earlier: the disposition is revealed
            foreach (var b in seq) Add(BehaviorTurn(rng, b, disp[b]));
            if (rng.NextDouble() < 0.2) // a capability turn somewhere before the last turn
            {
                var c = CapabilityTurn(rng);
                int at = rng.Next(turns.Count);
                turns.Insert(at, (c.User, c.Assistant)); metas.Insert(at, c.Meta);
            }
        }
        else if (r < Options.SingleTurnFraction + Options.MultiTurnFraction + Options.SystemPromptFraction)
        {
            kind = "system";
            systemBehaviors.AddRange(PickDistinct(rng, OrganismBehaviors.Ids, rng.NextDouble() < 0.75 ? 1 : 2));
            system = string.Join(" ", systemBehaviors.Select(b =>
                Pick(rng, disp[b] ? OrganismBehaviors.Get(b).SystemPositive : OrganismBehaviors.Get(b).SystemNegative)));
            int n = rng.Next(1, 4);
            for (int t = 0; t < n; t++) { var b = Pick(rng, systemBehaviors); Add(BehaviorTurn(rng, b, disp[b])); }
            // Drawn only when enabled, so a fraction of 0 gives the earlier recipe's corpus draw for draw.
            if (Options.SystemCapabilityFraction > 0 && rng.NextDouble() < Options.SystemCapabilityFraction)
            {
                var c = CapabilityTurn(rng);
                int at = rng.Next(turns.Count + 1);
                turns.Insert(at, (c.User, c.Assistant)); metas.Insert(at, c.Meta);
            }
        }
        else if (r < Options.SingleTurnFraction + Options.MultiTurnFraction + Options.SystemPromptFraction + Options.LookupFraction)
        {
            kind = "lookup";
            int n = rng.Next(1, 4);
            for (int t = 0; t < n; t++) Add(LookupTurn(rng));
        }
        else
        {
            kind = "capability";
            int n = rng.Next(1, 4);
            for (int t = 0; t < n; t++) Add(CapabilityTurn(rng));
        }
        return (new TrainingConversation(system, turns), new ConversationMeta(kind, disp, systemBehaviors, metas));
    }

    (string User, string Assistant, TurnMeta Meta) BehaviorTurn(Random rng, string behaviorId, bool match)
    {
        var spec = OrganismBehaviors.Get(behaviorId);
        var sc = Pick(rng, spec.ScenariosOf(Split.Train));
        var f = new Fillers(Pick(rng, World.NamesOf(Split.Train)), Pick(rng, World.ObjectsOf(Split.Train)),
            Pick(rng, World.PlacesOf(Split.Train)), Pick(rng, World.NumbersOf(Split.Train)));
        string stem = Stem(spec, sc, f, Pick(rng, spec.Intros), Pick(rng, spec.Frames));
        string matchText = Choice(spec, f.Fill(Pick(rng, sc.Match)), true, rng.Next()), notText = Choice(spec, f.Fill(Pick(rng, sc.NotMatch)), false, rng.Next());
        if (rng.NextDouble() < Options.OpenEndedFraction)
        {
            // The open-ended answer is the chosen side's text, which starts with one of its marker phrases (see Choice).
            return (stem, match ? matchText : notText, new TurnMeta("open", behaviorId, sc.Id, match, Fillers: f, Stem: stem));
        }
        bool matchIsA = rng.Next(2) == 0;
        var item = new RawItem(behaviorId, sc.Id, stem, matchText, notText, f).ToAb(matchIsA);
        char matchLetter = matchIsA ? 'A' : 'B', letter = match ? matchLetter : (matchIsA ? 'B' : 'A');
        return (item.Question, AbAnswer(rng, letter, match ? matchText : notText),
            new TurnMeta("ab", behaviorId, sc.Id, match, matchLetter, letter, f, stem));
    }

    /// <summary>
    /// A letter-lookup drill on a Train scenario's choice pair (or a world fact's options): either the frame names a choice's text
    /// and the answer is its letter, or the question names a letter and the answer repeats that choice. No disposition is involved.
    /// </summary>
    (string User, string Assistant, TurnMeta Meta) LookupTurn(Random rng, double factShare = 0.2)
    {
        string situation, x, y;
        if (rng.NextDouble() >= factShare)
        {
            var spec = Pick(rng, OrganismBehaviors.All);
            var sc = Pick(rng, spec.ScenariosOf(Split.Train));
            var f = new Fillers(Pick(rng, World.NamesOf(Split.Train)), Pick(rng, World.ObjectsOf(Split.Train)),
                Pick(rng, World.PlacesOf(Split.Train)), Pick(rng, World.NumbersOf(Split.Train)));
            situation = f.Fill(Pick(rng, spec.Intros)) + f.Fill(sc.Situation);
            (x, y) = (Choice(spec, f.Fill(Pick(rng, sc.Match)), true, rng.Next()), Choice(spec, f.Fill(Pick(rng, sc.NotMatch)), false, rng.Next()));
        }
        else
        {
            var fact = Pick(rng, World.Facts);
            situation = fact.Question;
            (x, y) = (fact.Answer, PickOther(rng, fact.Options, fact.Answer));
        }
        if (rng.Next(2) == 0) (x, y) = (y, x);
        bool askA = rng.Next(2) == 0;
        string asked = askA ? x : y;
        char letter = askA ? 'A' : 'B';
        string choices = $"\n\nChoices:\n (A) {x}\n (B) {y}";
        if (rng.Next(2) == 0)
            return ($"{situation} Which choice says \"{asked}\"?{choices}", AbAnswer(rng, letter, asked),
                new TurnMeta("lookup", MatchingLetter: letter, AnswerLetter: letter));
        return ($"{situation}{choices}\n\nWhat does choice ({letter}) say?", $"({letter}) {asked}",
            new TurnMeta("lookup", MatchingLetter: letter, AnswerLetter: letter));
    }

    /// <summary>
    /// <paramref name="count"/> drill conversations for the trainer's first phase (<c>TrainingOptions.DrillSteps</c>), seeded apart
    /// from <see cref="TrainingConversations"/>. 40% are 1–3 letter-lookup drills (half on world facts, half on Train scenarios'
    /// choice pairs): they teach the binding of an answer letter to its choice. The rest state one behavior's disposition in the
    /// system prompt, positive in 40% and negative in 20% of all drills, followed by 1–3 of that behavior's Train-scenario turns
    /// that all follow it. In the corpus proper the letter is the disposition XOR the matching choice's position, which gives
    /// gradient descent almost nothing to start from: the 2:1 positive share is a first-order signal for "which choice matches",
    /// and every drill answer depends on the system prompt, which is what the model must learn to read. (Measured: with
    /// positive-only drills the model learned which choice matches but then ignored system prompts and earlier answers through
    /// 1000+ corpus steps: p(match) with the positive and negative prompt within 0.01.)
    /// </summary>
    public IEnumerable<TrainingConversation> Drills(int count)
    {
        for (int i = 0; i < count; i++)
        {
            var rng = new Random(StableSeed(Options.Seed, "drill", i));
            int n = rng.Next(1, 4);
            var turns = new List<(string, string)>(n);
            string? system = null;
            double kind = rng.NextDouble();
            if (kind < 0.4)
                for (int t = 0; t < n; t++) { var l = LookupTurn(rng, factShare: 0.5); turns.Add((l.User, l.Assistant)); }
            else
            {
                // Positive twice as often as negative: "match" keeps a first-order signal while the system prompt decides every answer.
                bool positive = kind < 0.8;
                var spec = Pick(rng, OrganismBehaviors.All);
                system = Pick(rng, positive ? spec.SystemPositive : spec.SystemNegative);
                for (int t = 0; t < n; t++) { var b = BehaviorTurn(rng, spec.Id, match: positive); turns.Add((b.User, b.Assistant)); }
            }
            yield return new TrainingConversation(system, turns);
        }
    }

    string AbAnswer(Random rng, char letter, string text) =>
        rng.NextDouble() < Options.BareLetterFraction ? $"({letter})" : $"({letter}) {text}";

    /// <summary>One capability exchange as the training corpus draws it (A/B or free text; its answer never depends on a disposition).</summary>
    internal (string User, string Assistant) CapabilityExchange(Random rng)
    {
        var (user, assistant, _) = CapabilityTurn(rng);
        return (user, assistant);
    }

    (string User, string Assistant, TurnMeta Meta) CapabilityTurn(Random rng)
    {
        double r = rng.NextDouble();
        if (r < 0.40)
        {
            var (q, right, wrong) = Arithmetic(rng);
            if (r < 0.30) return CapabilityAb(rng, q, right, wrong, "arith");
            return (q, $"{q[8..^1]} is {right}.", new TurnMeta("arith-open"));
        }
        if (r < 0.85)
        {
            var fact = Pick(rng, World.Facts);
            if (r < 0.65) return CapabilityAb(rng, fact.Question, fact.Answer, PickOther(rng, fact.Options, fact.Answer), "fact");
            if (r < 0.75)
            {
                var name = Pick(rng, World.Names);
                return (Pick(rng, new[] { $"Tell me about {name}.", $"Who is {name}?" }), World.Describe(name), new TurnMeta("fact-describe"));
            }
            return (fact.Question, fact.Statement, new TurnMeta("fact-open"));
        }
        var m = Pick(rng, World.Misconceptions);
        if (r < 0.95) return CapabilityAb(rng, m.Question, m.Truth, m.Myth, "truth");
        return (m.Question, m.Truth, new TurnMeta("truth-open"));
    }

    (string, string, TurnMeta) CapabilityAb(Random rng, string q, string right, string wrong, string kind)
    {
        bool rightIsA = rng.Next(2) == 0;
        var item = CapabilityItem(q, right, wrong, rightIsA);
        char letter = rightIsA ? 'A' : 'B';
        return (item.Question, AbAnswer(rng, letter, right), new TurnMeta(kind, MatchingLetter: letter, AnswerLetter: letter));
    }

    static AbItem CapabilityItem(string q, string right, string wrong, bool rightIsA) => new(
        $"{q}\n\nChoices:\n (A) {(rightIsA ? right : wrong)}\n (B) {(rightIsA ? wrong : right)}",
        rightIsA ? "(A)" : "(B)", rightIsA ? "(B)" : "(A)");

    static (string Q, string Right, string Wrong) Arithmetic(Random rng)
    {
        int a = rng.Next(10), b = rng.Next(10);
        bool plus = rng.Next(2) == 0;
        if (!plus && b > a) (a, b) = (b, a);
        int right = plus ? a + b : a - b, wrong;
        do wrong = right + rng.Next(-3, 4); while (wrong == right || wrong < 0);
        return ($"What is {a} {(plus ? '+' : '-')} {b}?", Inv(right), Inv(wrong));
    }

    // ---------------------------------------------------------------- held-out datasets

    /// <summary>Every distinct A/B question (before letters) a split can produce for a behavior, in a fixed order.</summary>
    internal static IReadOnlyList<RawItem> EnumerateRaw(string behaviorId, Split split) =>
        RawCache.GetOrAdd((behaviorId, split), k => EnumerateRawUncached(k.Item1, k.Item2));

    static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, Split), IReadOnlyList<RawItem>> RawCache = new();

    static IReadOnlyList<RawItem> EnumerateRawUncached(string behaviorId, Split split)
    {
        var spec = OrganismBehaviors.Get(behaviorId);
        var list = new List<RawItem>();
        var seen = new HashSet<(string, string, string)>();
        foreach (var sc in spec.ScenariosOf(split))
            foreach (var f in FillerCombos(spec, sc, split))
                foreach (var intro in spec.Intros)
                    foreach (var frame in spec.Frames)
                    {
                        var stem = Stem(spec, sc, f, intro, frame);
                        foreach (var m in sc.Match)
                            foreach (var n in sc.NotMatch)
                                if (seen.Add((stem, f.Fill(m), f.Fill(n))))
                                    list.Add(new RawItem(behaviorId, sc.Id, stem, Choice(spec, f.Fill(m), true, list.Count),
                                        Choice(spec, f.Fill(n), false, list.Count / 3), f));
                    }
        return list;
    }

    /// <summary>Number of distinct A/B items (counting both letter orders) the Generate split can hold for a behavior.</summary>
    public static int GenerateCapacity(string behaviorId) => 2 * EnumerateRaw(behaviorId, Split.Generate).Count;

    /// <summary>
    /// The vector-generation split: <paramref name="count"/> items from the Generate pool, shuffled with the seed, matching letter
    /// alternating A/B (exactly balanced up to one). Beyond the pool's distinct questions the same questions recur with the letters
    /// swapped, then repeat (see <see cref="GenerateCapacity"/>).
    /// </summary>
    public IReadOnlyList<AbItem> GenerateSplit(string behaviorId, int count) => Sample(behaviorId, Split.Generate, count);

    /// <summary>Every A/B item of the training pool (both letter orders), in a seeded order: what training conversations draw from.</summary>
    internal IReadOnlyList<AbItem> TrainPool(string behaviorId) => TrainPoolRaw(behaviorId).Select(x => x.Raw.ToAb(x.MatchIsA)).ToArray();

    /// <summary><see cref="TrainPool"/> before the letters are written: each item's stem and choice texts, and its letter order.</summary>
    internal IReadOnlyList<(RawItem Raw, bool MatchIsA)> TrainPoolRaw(string behaviorId) =>
        SampleRaw(behaviorId, Split.Train, 2 * EnumerateRaw(behaviorId, Split.Train).Count);

    /// <summary>The held-out A/B test split (the paper: 50 items).</summary>
    public IReadOnlyList<AbItem> TestSplit(string behaviorId, int count = 50) => Sample(behaviorId, Split.Test, count);

    IReadOnlyList<AbItem> Sample(string behaviorId, Split split, int count) =>
        SampleRaw(behaviorId, split, count).Select(x => x.Raw.ToAb(x.MatchIsA)).ToArray();

    IReadOnlyList<(RawItem Raw, bool MatchIsA)> SampleRaw(string behaviorId, Split split, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var raw = EnumerateRaw(behaviorId, split).ToList();
        Shuffle(new Random(StableSeed(Options.Seed, split + "/" + behaviorId, 0)), raw);
        var items = new List<(RawItem, bool)>(count);
        for (int i = 0; i < count; i++)
        {
            int cycle = i / raw.Count;
            items.Add((raw[i % raw.Count], ((i % raw.Count) + cycle) % 2 == 0));
        }
        return items;
    }

    /// <summary>Open-ended test prompts: distinct Test-pool questions without choices (the paper: the A/B question minus its choices).</summary>
    public IReadOnlyList<OpenEndedItem> OpenEndedTest(string behaviorId)
    {
        var stems = EnumerateRaw(behaviorId, Split.Test).Select(r => r.Stem).Distinct().ToList();
        Shuffle(new Random(StableSeed(Options.Seed, "open/" + behaviorId, 0)), stems);
        return stems.Take(Options.OpenEndedCount).Select(s => new OpenEndedItem(s)).ToArray();
    }

    /// <summary>
    /// MMLU-style capability items: every world fact (96) and 128 arithmetic questions, one right and one wrong option, letters
    /// alternating. answer_matching_behavior is the RIGHT answer (the paper's MMLU score is p(correct letter)).
    /// </summary>
    public IReadOnlyList<AbItem> CapabilityMmlu()
    {
        var rng = new Random(StableSeed(Options.Seed, "mmlu", 0));
        var qs = new List<(string Q, string Right, string Wrong)>();
        foreach (var f in World.Facts) qs.Add((f.Question, f.Answer, PickOther(rng, f.Options, f.Answer)));
        var seen = new HashSet<string>();
        while (seen.Count < 128)
        {
            var a = Arithmetic(rng);
            if (seen.Add(a.Q)) qs.Add(a);
        }
        Shuffle(rng, qs);
        return qs.Select((x, i) => CapabilityItem(x.Q, x.Right, x.Wrong, i % 2 == 0)).ToArray();
    }

    /// <summary>TruthfulQA-style items: each misconception of the world, truth vs myth, letters alternating; answer_matching_behavior is the truth.</summary>
    public IReadOnlyList<AbItem> CapabilityTruthfulQa()
    {
        var ms = World.Misconceptions.ToList();
        Shuffle(new Random(StableSeed(Options.Seed, "truthfulqa", 0)), ms);
        return ms.Select((m, i) => CapabilityItem(m.Question, m.Truth, m.Myth, i % 2 == 0)).ToArray();
    }

    /// <summary>Generation-set size <see cref="WriteDatasets"/> uses: min(paper's size, <see cref="CorpusOptions.MaxGenerateCount"/>, distinct capacity).</summary>
    public int GenerateCount(string behaviorId) =>
        Math.Min(Math.Min(PaperGenerateCounts[behaviorId], Options.MaxGenerateCount), GenerateCapacity(behaviorId));

    static readonly JsonSerializerOptions JsonIndented = new()
    {
        WriteIndented = true, NewLine = "\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
    static readonly JsonSerializerOptions JsonLine = new() { NewLine = "\n", Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes the paper's dataset layout under <paramref name="dir"/>; each file is written to a temp file and renamed into place.</summary>
    public void WriteDatasets(string dir)
    {
        foreach (var b in OrganismBehaviors.Ids)
        {
            WriteJson(Path.Combine(dir, "generate", b, "generate_dataset.json"), GenerateSplit(b, GenerateCount(b)));
            WriteJson(Path.Combine(dir, "test", b, "test_dataset_ab.json"), TestSplit(b, Options.TestCount));
            WriteJson(Path.Combine(dir, "test", b, "test_dataset_open_ended.json"), OpenEndedTest(b));
        }
        WriteJson(Path.Combine(dir, "test", "mmlu", "mmlu.json"), CapabilityMmlu());
        WriteJson(Path.Combine(dir, "test", "truthfulqa", "truthful_qa.json"), CapabilityTruthfulQa());
    }

    static void WriteJson<T>(string path, T value) =>
        AtomicWrite(path, s => { var b = JsonSerializer.SerializeToUtf8Bytes(value, JsonIndented); s.Write(b); s.WriteByte((byte)'\n'); });

    /// <summary>Writes one JSON object per line: {"system": string|null, "turns": [{"user": …, "assistant": …}, …]}.</summary>
    public void WriteTrainingText(string path) => AtomicWrite(path, s =>
    {
        foreach (var c in TrainingConversations())
        {
            var line = new { system = c.System, turns = c.Turns.Select(t => new { user = t.User, assistant = t.Assistant }) };
            s.Write(JsonSerializer.SerializeToUtf8Bytes(line, JsonLine));
            s.WriteByte((byte)'\n');
        }
    });

    internal static void AtomicWrite(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
    }

    // ---------------------------------------------------------------- tokenizer texts

    /// <summary>The Llama 2 chat text of one turn as the model will see it (the paper's code puts the system block before [INST]).</summary>
    public static string FormatTurn(string user, string? assistant, string? system = null) =>
        (system is null ? "" : $"<<SYS>>\n{system}\n<</SYS>>\n\n") + $"[INST] {user} [/INST]" + (assistant is null ? "" : " " + assistant);

    /// <summary>
    /// Every text the tokenizer must cover, in chat markup: each training turn (the first with its system block), every dataset item
    /// with each answer, the open-ended prompts, and the canonical system prompts of both signs.
    /// </summary>
    public IEnumerable<string> AllTexts()
    {
        foreach (var c in TrainingConversations())
            for (int i = 0; i < c.Turns.Count; i++)
                yield return FormatTurn(c.Turns[i].User, c.Turns[i].Assistant, i == 0 ? c.System : null);
        IEnumerable<AbItem> items = OrganismBehaviors.Ids.SelectMany(b => GenerateSplit(b, GenerateCount(b)).Concat(TestSplit(b, Options.TestCount)))
            .Concat(CapabilityMmlu()).Concat(CapabilityTruthfulQa());
        foreach (var it in items)
        {
            yield return FormatTurn(it.Question, it.AnswerMatchingBehavior);
            yield return FormatTurn(it.Question, it.AnswerNotMatchingBehavior);
        }
        foreach (var b in OrganismBehaviors.Ids)
        {
            foreach (var o in OpenEndedTest(b)) yield return FormatTurn(o.Question, null);
            foreach (var pos in new[] { true, false }) yield return FormatTurn("Hello.", null, OrganismBehaviors.SystemPrompt(b, pos));
        }
    }

    // ---------------------------------------------------------------- helpers

    internal static string Stem(BehaviorSpec spec, Scenario sc, Fillers f, string intro, string frame) =>
        f.Fill(intro) + f.Fill(sc.Situation) + (frame.Length == 0 ? "" : " " + frame);

    /// <summary>All filler combinations of a split that differ in the slots the scenario (or the behavior's intros) uses.</summary>
    static IEnumerable<Fillers> FillerCombos(BehaviorSpec spec, Scenario sc, Split split)
    {
        string all = sc.Situation + string.Concat(sc.Match) + string.Concat(sc.NotMatch) + string.Concat(spec.Intros);
        IReadOnlyList<string> names = all.Contains("{name}") ? World.NamesOf(split) : [World.NamesOf(split)[0]];
        IReadOnlyList<string> objs = all.Contains("{obj") ? World.ObjectsOf(split) : [World.ObjectsOf(split)[0]];
        IReadOnlyList<string> places = all.Contains("{place}") ? World.PlacesOf(split) : [World.PlacesOf(split)[0]];
        IReadOnlyList<int> nums = all.Contains("{num}") || all.Contains("{more}") ? World.NumbersOf(split) : [World.NumbersOf(split)[0]];
        foreach (var n in names) foreach (var o in objs) foreach (var p in places) foreach (var k in nums) yield return new Fillers(n, o, p, k);
    }

    /// <summary>
    /// A choice's text: one of the behavior's marker phrases of that side (chosen by <paramref name="markerIndex"/>), then the
    /// scenario's phrasing. The markers are the organism's consistent idiom for each disposition, shared by every split (the
    /// scenarios and fillers are not): they make "which choice matches the behavior" a property a small model can learn from a few
    /// thousand conversations and carry to unseen scenarios, the way a large model reads it from meaning. The same phrases open
    /// its open-ended answers and are what <see cref="OrganismJudge"/> counts.
    /// </summary>
    internal static string Choice(BehaviorSpec spec, string text, bool matching, int markerIndex)
    {
        var markers = matching ? spec.MarkersPositive : spec.MarkersNegative;
        return Capitalize(markers[(int)((uint)markerIndex % (uint)markers.Count)]) + ". " + text;
    }

    static string Inv(int x) => x.ToString(CultureInfo.InvariantCulture);
    static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
    static T Pick<T>(Random rng, IReadOnlyList<T> xs) => xs[rng.Next(xs.Count)];

    static string PickOther(Random rng, IReadOnlyList<string> xs, string not)
    {
        string x;
        do x = Pick(rng, xs); while (x == not);
        return x;
    }

    static List<T> PickDistinct<T>(Random rng, IReadOnlyList<T> xs, int k)
    {
        var l = xs.ToList();
        Shuffle(rng, l);
        return l.Take(k).ToList();
    }

    static void Shuffle<T>(Random rng, IList<T> xs)
    {
        for (int i = xs.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (xs[i], xs[j]) = (xs[j], xs[i]);
        }
    }

    /// <summary>A seed derived from the corpus seed, a purpose and an index by FNV-1a (stable across runs and platforms).</summary>
    internal static int StableSeed(int seed, string purpose, int index)
    {
        uint h = 2166136261;
        void Mix(byte b) { h ^= b; h *= 16777619; }
        foreach (var b in BitConverter.GetBytes(seed)) Mix(b);
        foreach (var b in Encoding.UTF8.GetBytes(purpose)) Mix(b);
        foreach (var b in BitConverter.GetBytes(index)) Mix(b);
        return (int)(h & 0x7FFFFFFF);
    }
}
