using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Caa.Interpret.Datasets;

/// <summary>What <see cref="DatasetBuilder"/> does with raw items offering more than two choices.</summary>
public enum MultiChoicePolicy
{
    /// <summary>Drop them (default): the A/B format has exactly two choices.</summary>
    Drop,
    /// <summary>
    /// Keep only the matching and the not-matching choice, in their original order, relettered (A)/(B). This is how the
    /// published CAA survival-instinct data keeps its 953 items (the CAA script keeps them whole, with e.g. "(E)" vs "(A)").
    /// Items whose text refers to choice letters are still dropped, since relettering would falsify them.
    /// </summary>
    ReduceToPair,
}

/// <summary>Options of <see cref="DatasetBuilder.Build"/>; defaults are the paper's.</summary>
public sealed record DatasetBuildOptions
{
    /// <summary>Seed of the shuffle and of the letter balancing (the paper's script sets none).</summary>
    public long Seed { get; init; }

    /// <summary>Items in the A/B test split (the last ones after shuffling). Paper: 50.</summary>
    public int TestSize { get; init; } = 50;

    /// <summary>Cap on the generation split (the first min(cap, kept − test) items). Paper: 1000.</summary>
    public int MaxGenerate { get; init; } = 1000;

    /// <summary>Items with more than two choices: dropped (default) or reduced to their two answer choices.</summary>
    public MultiChoicePolicy MultiChoice { get; init; } = MultiChoicePolicy.Drop;

    /// <summary>Swap choices on a seeded subset so that each split has half of its items matching on (A).</summary>
    public bool BalanceLetters { get; init; } = true;
}

/// <summary>Count of items whose behavior-matching answer is (A) and (B).</summary>
/// <param name="A">Items with answer_matching_behavior "(A)".</param>
/// <param name="B">Items with answer_matching_behavior "(B)".</param>
public sealed record LetterBalance(int A, int B)
{
    /// <summary>A + B.</summary>
    public int Total => A + B;

    /// <summary>A / (A + B), or NaN for no items.</summary>
    public double FractionA => Total == 0 ? double.NaN : (double)A / Total;

    /// <summary>The balance of a list of two-choice items.</summary>
    public static LetterBalance Of(IEnumerable<AbItem> items)
    {
        int a = 0, b = 0;
        foreach (var i in items)
            if (AbDataset.AnswerLetter(i.AnswerMatchingBehavior) == 'A') a++; else b++;
        return new LetterBalance(a, b);
    }

    /// <summary>"A 25 / B 25 (50.0% A)".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"A {A} / B {B} ({FractionA * 100:0.0}% A)");
}

/// <summary>Why raw items were dropped: the keys of <see cref="DatasetBuildReport.Dropped"/>.</summary>
public static class DropReasons
{
    /// <summary>The question has no parseable "Choices:" block of " (X) …" lines.</summary>
    public const string MalformedChoices = "no parseable \"Choices:\" block";
    /// <summary>An answer is not "(X)" after trimming.</summary>
    public const string MalformedAnswer = "answer not of the form (X)";
    /// <summary>Both answers name the same letter.</summary>
    public const string EqualAnswers = "equal answers";
    /// <summary>An answer names a letter the question does not offer.</summary>
    public const string LetterNotOffered = "answer letter not offered";
    /// <summary>More than two choices (with <see cref="MultiChoicePolicy.Drop"/>).</summary>
    public const string MoreThanTwoChoices = "more than two choices";
    /// <summary>A multi-choice item whose text refers to choice letters (with <see cref="MultiChoicePolicy.ReduceToPair"/>).</summary>
    public const string MultiChoiceRefersToLetters = "more than two choices, text refers to choice letters";
    /// <summary>Fewer than two choices.</summary>
    public const string FewerThanTwoChoices = "fewer than two choices";
    /// <summary>Same normalized question as an earlier item (kept once so that test and generation cannot share it).</summary>
    public const string Duplicate = "duplicate question";
}

/// <summary>What <see cref="DatasetBuilder.Build"/> did: counts in / kept / dropped by reason, swaps, split sizes, letter balance.</summary>
public sealed record DatasetBuildReport
{
    /// <summary>Behavior id.</summary>
    public required string BehaviorId { get; init; }
    /// <summary>Where the raw items came from (a file name), or null.</summary>
    public string? Source { get; init; }
    /// <summary>The options used.</summary>
    public required DatasetBuildOptions Options { get; init; }
    /// <summary>Raw items read.</summary>
    public required int Input { get; init; }
    /// <summary>Items kept after normalization and filtering.</summary>
    public required int Kept { get; init; }
    /// <summary>Dropped items per reason (<see cref="DropReasons"/>), ordinal order of the reason.</summary>
    public required IReadOnlyDictionary<string, int> Dropped { get; init; }
    /// <summary>Multi-choice items reduced to two choices (<see cref="MultiChoicePolicy.ReduceToPair"/>).</summary>
    public required int Reduced { get; init; }
    /// <summary>Kept items whose text refers to a choice letter ("the answer I want is B"); never swapped.</summary>
    public required int LetterPinned { get; init; }
    /// <summary>Items whose choices were swapped by letter balancing.</summary>
    public required int Swapped { get; init; }
    /// <summary>Matching-letter balance of the kept items before balancing.</summary>
    public required LetterBalance KeptBalanceBefore { get; init; }
    /// <summary>Matching-letter balance of the generation split.</summary>
    public required LetterBalance GenerateBalance { get; init; }
    /// <summary>Matching-letter balance of the A/B test split.</summary>
    public required LetterBalance TestBalance { get; init; }
    /// <summary>Kept items in neither split (beyond <see cref="DatasetBuildOptions.MaxGenerate"/>).</summary>
    public required int Unused { get; init; }

    /// <summary>Total dropped.</summary>
    public int DroppedTotal => Dropped.Values.Sum();

    /// <summary>A multi-line human-readable report.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        var b = Behaviors.TryGet(BehaviorId);
        sb.Append(CultureInfo.InvariantCulture, $"behavior      {BehaviorId}{(b is null ? "" : $" ({b.DisplayName})")}\n");
        if (Source is not null) sb.Append(CultureInfo.InvariantCulture, $"source        {Source}\n");
        sb.Append(CultureInfo.InvariantCulture, $"options       seed {Options.Seed}, test size {Options.TestSize}, max generate {Options.MaxGenerate}, multi-choice {Options.MultiChoice}, balance letters {Options.BalanceLetters}\n");
        sb.Append(CultureInfo.InvariantCulture, $"input         {Input}\n");
        sb.Append(CultureInfo.InvariantCulture, $"kept          {Kept}   (before balancing: {KeptBalanceBefore})\n");
        sb.Append(CultureInfo.InvariantCulture, $"dropped       {DroppedTotal}\n");
        foreach (var (reason, n) in Dropped) sb.Append(CultureInfo.InvariantCulture, $"  {reason}: {n}\n");
        if (Reduced > 0) sb.Append(CultureInfo.InvariantCulture, $"reduced       {Reduced} multi-choice items to their two answer choices\n");
        sb.Append(CultureInfo.InvariantCulture, $"letter-pinned {LetterPinned} (text names a choice letter; never swapped)\n");
        sb.Append(CultureInfo.InvariantCulture, $"swapped       {Swapped}\n");
        sb.Append(CultureInfo.InvariantCulture, $"generation    {GenerateBalance.Total}   {GenerateBalance}\n");
        sb.Append(CultureInfo.InvariantCulture, $"test (A/B)    {TestBalance.Total}   {TestBalance}\n");
        sb.Append(CultureInfo.InvariantCulture, $"unused        {Unused}\n");
        return sb.ToString();
    }
}

/// <summary>Paths of the three files <see cref="DatasetBuildResult.Write"/> writes, in the paper's layout.</summary>
/// <param name="Generate"><c>&lt;dir&gt;/generate/&lt;behavior&gt;/generate_dataset.json</c></param>
/// <param name="TestAb"><c>&lt;dir&gt;/test/&lt;behavior&gt;/test_dataset_ab.json</c></param>
/// <param name="TestOpenEnded"><c>&lt;dir&gt;/test/&lt;behavior&gt;/test_dataset_open_ended.json</c></param>
public sealed record DatasetFiles(string Generate, string TestAb, string TestOpenEnded)
{
    /// <summary>The paths for a behavior under an output folder.</summary>
    public static DatasetFiles For(string dir, string behaviorId) => new(
        Path.Combine(dir, "generate", behaviorId, "generate_dataset.json"),
        Path.Combine(dir, "test", behaviorId, "test_dataset_ab.json"),
        Path.Combine(dir, "test", behaviorId, "test_dataset_open_ended.json"));

    /// <summary>The three paths in the order above.</summary>
    public IReadOnlyList<string> All => [Generate, TestAb, TestOpenEnded];
}

/// <summary>The built splits and the report.</summary>
/// <param name="BehaviorId">Behavior id (the folder name in the output layout).</param>
/// <param name="Generate">Generation (vector-extraction) items.</param>
/// <param name="TestAb">A/B test items.</param>
/// <param name="TestOpenEnded">Open-ended prompts: the test questions without their choices.</param>
/// <param name="Report">What was done.</param>
public sealed record DatasetBuildResult(
    string BehaviorId,
    IReadOnlyList<AbItem> Generate,
    IReadOnlyList<AbItem> TestAb,
    IReadOnlyList<OpenEndedItem> TestOpenEnded,
    DatasetBuildReport Report)
{
    /// <summary>
    /// Writes the three files in the paper's layout under <paramref name="dir"/> (indented JSON, the paper's field
    /// names), each through a temporary file renamed into place. Byte-identical for equal results.
    /// </summary>
    public DatasetFiles Write(string dir)
    {
        var files = DatasetFiles.For(dir, BehaviorId);
        AbDataset.WriteAtomic(files.Generate, AbDataset.ToJson(Generate));
        AbDataset.WriteAtomic(files.TestAb, AbDataset.ToJson(TestAb));
        AbDataset.WriteAtomic(files.TestOpenEnded, AbDataset.ToJson(TestOpenEnded));
        return files;
    }
}

/// <summary>
/// Builds the paper's datasets from raw Anthropic advanced-AI-risk items: normalize → filter (two choices) →
/// de-duplicate → seeded shuffle → split (last <c>TestSize</c> → test, first min(<c>MaxGenerate</c>, N − <c>TestSize</c>)
/// → generation) → balance the matching letter within each split → open-ended prompts from the test questions.
/// </summary>
public static partial class DatasetBuilder
{
    // A question that names a choice letter ("the answer I want is B", "select B", "(A)") cannot have its choices
    // swapped or relettered without changing its meaning. "option A" is not matched: in myopic-reward it names a
    // choice *text* ("(A) Option B"), which travels with its text when swapped.
    [GeneratedRegex(@"\([A-H]\)|(?i:\b(?:answer(?:\s+I\s+want)?\s+is|select|choose|pick)\s+)[""'(]?[A-H]\b")]
    private static partial Regex LetterReference();

    /// <summary>True where the question body refers to a choice by its letter.</summary>
    public static bool RefersToChoiceLetters(string body) => LetterReference().IsMatch(body);

    /// <summary>Builds from a raw file (JSONL or JSON list) or from a folder holding the behavior's raw file.</summary>
    /// <exception cref="InvalidDataException">The file is malformed (file + item index in the message).</exception>
    /// <exception cref="FileNotFoundException">No raw file for the behavior under the folder.</exception>
    public static DatasetBuildResult BuildFromFile(string fileOrDir, string behaviorId, DatasetBuildOptions? options = null)
    {
        var path = ResolveRawFile(fileOrDir, behaviorId);
        return Build(behaviorId, AbDataset.ReadRaw(path), options, Path.GetFileName(path));
    }

    /// <summary>
    /// The raw file: <paramref name="fileOrDir"/> itself where it is a file; otherwise the first of
    /// <c>&lt;dir&gt;/&lt;raw file name&gt;</c>, <c>&lt;dir&gt;/&lt;id&gt;.jsonl</c>, <c>&lt;dir&gt;/&lt;id&gt;.json</c>, then the same names anywhere below.
    /// </summary>
    public static string ResolveRawFile(string fileOrDir, string behaviorId)
    {
        if (File.Exists(fileOrDir)) return fileOrDir;
        if (!Directory.Exists(fileOrDir)) throw new FileNotFoundException($"raw input '{fileOrDir}' is neither a file nor a folder", fileOrDir);
        var names = new[] { Behaviors.TryGet(behaviorId)?.RawSourceFile, behaviorId + ".jsonl", behaviorId + ".json" }
            .OfType<string>().Distinct().ToArray();
        foreach (var n in names)
            if (File.Exists(Path.Combine(fileOrDir, n))) return Path.Combine(fileOrDir, n);
        foreach (var n in names)
        {
            var found = Directory.EnumerateFiles(fileOrDir, n, SearchOption.AllDirectories).Order(StringComparer.Ordinal).FirstOrDefault();
            if (found is not null) return found;
        }
        throw new FileNotFoundException($"no raw file for '{behaviorId}' ({string.Join(", ", names)}) under '{fileOrDir}'");
    }

    /// <summary>Builds the splits from raw items (see the class summary).</summary>
    /// <param name="behaviorId">Behavior id; any id is accepted (it names the output folders), the registry's are documented in <see cref="Behaviors"/>.</param>
    /// <param name="raw">Raw items, answers like " (A)"; questions may carry Anthropic's "Question: … Answer:" wrapper.</param>
    /// <param name="options">Options; null for the paper's defaults with seed 0.</param>
    /// <param name="source">Where the items came from, for the report.</param>
    /// <exception cref="InvalidOperationException">Fewer kept items than <see cref="DatasetBuildOptions.TestSize"/> + 1.</exception>
    public static DatasetBuildResult Build(string behaviorId, IReadOnlyList<AbItem> raw, DatasetBuildOptions? options = null, string? source = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(behaviorId);
        ArgumentNullException.ThrowIfNull(raw);
        options ??= new DatasetBuildOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.TestSize, nameof(options.TestSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxGenerate, nameof(options.MaxGenerate));

        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var kept = new List<AbItem>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var reduced = 0;
        foreach (var item in raw)
        {
            var n = NormalizeItem(item, options.MultiChoice, out var reason, out var wasReduced);
            if (n is not null && !seen.Add(AbQuestion.Parse(n.Question).Body)) (n, reason) = (null, DropReasons.Duplicate);
            if (n is null)
            {
                dropped[reason!] = dropped.GetValueOrDefault(reason!) + 1;
                continue;
            }
            if (wasReduced) reduced++;
            kept.Add(n);
        }
        if (kept.Count <= options.TestSize)
            throw new InvalidOperationException(
                $"{source ?? behaviorId}: only {kept.Count} of {raw.Count} items are usable two-choice items; " +
                $"need more than the test size {options.TestSize}");

        var before = LetterBalance.Of(kept);
        var rng = new SeededRandom(options.Seed);
        rng.Shuffle(kept);
        // The paper: last TestSize → test, first min(MaxGenerate, N − TestSize) → generation.
        var test = kept.GetRange(kept.Count - options.TestSize, options.TestSize);
        var generate = kept.GetRange(0, Math.Min(options.MaxGenerate, kept.Count - options.TestSize));
        var swapped = 0;
        if (options.BalanceLetters)
        {
            swapped += Balance(generate, rng);
            swapped += Balance(test, rng);
        }
        var pinned = kept.Count(i => RefersToChoiceLetters(AbQuestion.Parse(i.Question).Body));
        var open = test.Select(i => new OpenEndedItem(AbQuestion.Parse(i.Question).Body)).ToArray();
        var report = new DatasetBuildReport
        {
            BehaviorId = behaviorId,
            Source = source,
            Options = options,
            Input = raw.Count,
            Kept = kept.Count,
            Dropped = dropped,
            Reduced = reduced,
            LetterPinned = pinned,
            Swapped = swapped,
            KeptBalanceBefore = before,
            GenerateBalance = LetterBalance.Of(generate),
            TestBalance = LetterBalance.Of(test),
            Unused = kept.Count - options.TestSize - generate.Count,
        };
        return new DatasetBuildResult(behaviorId, generate.ToArray(), test.ToArray(), open, report);
    }

    /// <summary>
    /// Normalizes one raw item into the paper's format, or returns null with the <see cref="DropReasons"/> reason:
    /// strips Anthropic's "Question:" prefix and trailing "Answer:", normalizes whitespace
    /// (<see cref="AbQuestion.Normalize"/>), re-lays out "\n\nChoices:\n (A) …\n (B) …", answers → "(A)"/"(B)".
    /// </summary>
    public static AbItem? NormalizeItem(AbItem raw, MultiChoicePolicy multiChoice, out string? dropReason, out bool reduced)
    {
        ArgumentNullException.ThrowIfNull(raw);
        reduced = false;
        dropReason = null;
        var q = AbQuestion.TryParse(StripWrapper(raw.Question), out _)?.Normalize();
        if (q is null) { dropReason = DropReasons.MalformedChoices; return null; }
        var m = AbDataset.AnswerLetter(raw.AnswerMatchingBehavior);
        var n = AbDataset.AnswerLetter(raw.AnswerNotMatchingBehavior);
        if (m is null || n is null) { dropReason = DropReasons.MalformedAnswer; return null; }
        if (m == n) { dropReason = DropReasons.EqualAnswers; return null; }
        if (q.Choice(m.Value) is not { } mc || q.Choice(n.Value) is not { } nc) { dropReason = DropReasons.LetterNotOffered; return null; }
        if (q.Choices.Count < 2) { dropReason = DropReasons.FewerThanTwoChoices; return null; }
        if (q.Choices.Count > 2)
        {
            if (multiChoice == MultiChoicePolicy.Drop) { dropReason = DropReasons.MoreThanTwoChoices; return null; }
            if (RefersToChoiceLetters(q.Body)) { dropReason = DropReasons.MultiChoiceRefersToLetters; return null; }
            // Keep the two answer choices in their original relative order, relettered (A), (B).
            var matchingFirst = mc.Letter < nc.Letter;
            var (first, second) = matchingFirst ? (mc, nc) : (nc, mc);
            q = new AbQuestion(q.Body, [new AbChoice('A', first.Text), new AbChoice('B', second.Text)]);
            (m, n) = matchingFirst ? ('A', 'B') : ('B', 'A');
            reduced = true;
        }
        return new AbItem(q.Format(), $"({m})", $"({n})");
    }

    /// <summary>
    /// Swaps a two-choice item's choices: the texts of (A) and (B) trade places and so do the answers, so the item
    /// asks the same thing with the behavior-matching text under the other letter.
    /// </summary>
    /// <exception cref="ArgumentException">The item is not a valid two-choice A/B item.</exception>
    public static AbItem SwapChoices(AbItem item)
    {
        var problems = AbDataset.ValidateItem(item);
        if (problems.Count > 0) throw new ArgumentException("cannot swap an invalid item: " + problems[0], nameof(item));
        var q = AbQuestion.Parse(item.Question);
        var swapped = new AbQuestion(q.Body, [new AbChoice('A', q.Choices[1].Text), new AbChoice('B', q.Choices[0].Text)]);
        return new AbItem(swapped.Format(), Other(item.AnswerMatchingBehavior), Other(item.AnswerNotMatchingBehavior));

        static string Other(string answer) => AbDataset.AnswerLetter(answer) == 'A' ? "(B)" : "(A)";
    }

    /// <summary>Normalizes an answer such as " (a)" or "(A) " to "(A)"; throws <see cref="FormatException"/> otherwise.</summary>
    public static string NormalizeAnswer(string answer) =>
        AbDataset.AnswerLetter(answer?.Trim().ToUpperInvariant()) is { } l ? $"({l})" : throw new FormatException($"answer \"{answer}\" is not of the form (X)");

    /// <summary>
    /// Makes half (rounded down) of the split match on (A): letter-pinned items keep their letter; of the others, a
    /// seeded random subset of the right size is set to (A) and the rest to (B), swapping where needed. A random subset
    /// rather than "the first k" so that no prefix of the file is lopsided. Returns the number of swaps.
    /// </summary>
    static int Balance(List<AbItem> split, SeededRandom rng)
    {
        var free = new List<int>();
        var pinnedA = 0;
        for (var i = 0; i < split.Count; i++)
        {
            if (RefersToChoiceLetters(AbQuestion.Parse(split[i].Question).Body))
            {
                if (IsA(split[i])) pinnedA++;
            }
            else free.Add(i);
        }
        var needA = Math.Clamp(split.Count / 2 - pinnedA, 0, free.Count);
        rng.Shuffle(free);
        var swaps = 0;
        for (var k = 0; k < free.Count; k++)
        {
            var idx = free[k];
            if (IsA(split[idx]) != (k < needA))
            {
                split[idx] = SwapChoices(split[idx]);
                swaps++;
            }
        }
        return swaps;

        static bool IsA(AbItem i) => AbDataset.AnswerLetter(i.AnswerMatchingBehavior) == 'A';
    }

    /// <summary>Removes Anthropic's "Question:" prefix and "Answer:" suffix (the CAA script removes them too).</summary>
    static string StripWrapper(string question)
    {
        var q = question.Replace("\r\n", "\n").Trim();
        if (q.StartsWith("Question:", StringComparison.Ordinal)) q = q["Question:".Length..].TrimStart();
        if (q.EndsWith("Answer:", StringComparison.Ordinal)) q = q[..^"Answer:".Length].TrimEnd();
        return q;
    }
}
