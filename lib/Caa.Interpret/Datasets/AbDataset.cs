using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Caa.Interpret.Datasets;

/// <summary>One problem found in a dataset file: the file, the 0-based item index (null for file-level problems) and what is wrong.</summary>
/// <param name="File">The file as it was given.</param>
/// <param name="Index">0-based index of the item (the line's item index for JSONL), or null for the whole file.</param>
/// <param name="Message">What is wrong, in words.</param>
public sealed record DatasetProblem(string File, int? Index, string Message)
{
    /// <summary>"FILE: item N: MESSAGE" (or "FILE: MESSAGE").</summary>
    public override string ToString() => Index is { } i ? $"{File}: item {i}: {Message}" : $"{File}: {Message}";
}

/// <summary>What a dataset file holds.</summary>
public enum DatasetKind
{
    /// <summary>A/B items: question with choices + matching / not-matching answers.</summary>
    AB,
    /// <summary>Open-ended prompts: {"question"} only.</summary>
    OpenEnded,
}

/// <summary>
/// Reads and validates dataset files: a JSON list of items (the paper's format) or JSONL, one item per line (Anthropic's
/// raw format, answers written " (A)"). <c>Validate*</c> returns every problem; <c>Load*</c> throws
/// <see cref="InvalidDataException"/> naming the file, the 0-based item index and the first problem.
/// </summary>
public static partial class AbDataset
{
    /// <summary>JSON field names of the paper's format.</summary>
    public const string QuestionField = "question", MatchingField = "answer_matching_behavior", NotMatchingField = "answer_not_matching_behavior";

    [GeneratedRegex(@"^\(([A-Z])\)$")]
    private static partial Regex AnswerForm();

    /// <summary>Loads A/B items and validates every one in the A/B format (exactly two choices); throws on the first problem.</summary>
    /// <exception cref="InvalidDataException">Naming the file, the 0-based item index and what is wrong.</exception>
    public static IReadOnlyList<AbItem> Load(string path)
    {
        var items = ReadAb(path, rawAnswerLists: false, out var problems);
        ThrowOnFirst(problems);
        for (var i = 0; i < items.Count; i++)
            foreach (var p in ValidateItem(items[i]!))
                throw new InvalidDataException(new DatasetProblem(path, i, p).ToString());
        return items!;
    }

    /// <summary>Every problem of an A/B file (structure, then each item's A/B validity); empty where it is valid.</summary>
    public static IReadOnlyList<DatasetProblem> ValidateAb(string path)
    {
        var items = ReadAb(path, rawAnswerLists: false, out var problems);
        for (var i = 0; i < items.Count; i++)
            if (items[i] is { } item)
                problems.AddRange(ValidateItem(item).Select(p => new DatasetProblem(path, i, p)));
        return problems.OrderBy(p => p.Index ?? -1).ToArray();
    }

    /// <summary>Loads open-ended prompts ({"question"}, non-empty); throws on the first problem.</summary>
    /// <exception cref="InvalidDataException">Naming the file, the 0-based item index and what is wrong.</exception>
    public static IReadOnlyList<OpenEndedItem> LoadOpenEnded(string path)
    {
        var items = ReadOpenEnded(path, out var problems);
        ThrowOnFirst(problems);
        return items!;
    }

    /// <summary>Every problem of an open-ended file; empty where it is valid.</summary>
    public static IReadOnlyList<DatasetProblem> ValidateOpenEnded(string path)
    {
        ReadOpenEnded(path, out var problems);
        return problems;
    }

    /// <summary>Validates a file of either kind (see <see cref="DetectKind"/>).</summary>
    public static IReadOnlyList<DatasetProblem> Validate(string path)
    {
        DatasetKind kind;
        try { kind = DetectKind(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [new DatasetProblem(path, null, e.Message)];
        }
        return kind == DatasetKind.OpenEnded ? ValidateOpenEnded(path) : ValidateAb(path);
    }

    /// <summary>
    /// Open-ended where the file name contains "open_ended" or the first item has a "question" but no
    /// "answer_matching_behavior"; A/B otherwise (including unreadable files, so that their errors are reported).
    /// </summary>
    public static DatasetKind DetectKind(string path)
    {
        if (Path.GetFileName(path).Contains("open_ended", StringComparison.OrdinalIgnoreCase)) return DatasetKind.OpenEnded;
        var problems = new List<DatasetProblem>();
        var first = ReadElements(path, problems).FirstOrDefault();
        return first.ValueKind == JsonValueKind.Object && first.TryGetProperty(QuestionField, out _) && !first.TryGetProperty(MatchingField, out _)
            ? DatasetKind.OpenEnded
            : DatasetKind.AB;
    }

    /// <summary>
    /// Reads raw items (Anthropic JSONL or a JSON list) checking only structure: valid JSON, an object per item with the
    /// three fields as non-empty strings (a list of strings is accepted for an answer, its first element taken, as the CAA
    /// script does). Content (choices, letters) is left to the caller — <see cref="DatasetBuilder"/> drops and counts.
    /// </summary>
    /// <exception cref="InvalidDataException">Naming the file, the 0-based item index and what is wrong.</exception>
    public static IReadOnlyList<AbItem> ReadRaw(string path)
    {
        var items = ReadAb(path, rawAnswerLists: true, out var problems);
        ThrowOnFirst(problems);
        return items!;
    }

    /// <summary>
    /// The A/B problems of one item (empty where it is valid): answers of the form "(X)" after trimming, different
    /// answers, a question with a "Choices:" block of exactly two choices " (A) …" / " (B) …", both answer letters offered.
    /// </summary>
    public static IReadOnlyList<string> ValidateItem(AbItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(item.Question)) problems.Add($"field \"{QuestionField}\" is missing or empty");
        var m = CheckAnswer(MatchingField, item.AnswerMatchingBehavior, problems);
        var n = CheckAnswer(NotMatchingField, item.AnswerNotMatchingBehavior, problems);
        if (m is not null && m == n) problems.Add($"{MatchingField} and {NotMatchingField} are both ({m})");
        if (problems.Count > 0 && string.IsNullOrWhiteSpace(item.Question)) return problems;

        var q = AbQuestion.TryParse(item.Question, out var error);
        if (q is null)
        {
            problems.Add(error!);
            return problems;
        }
        if (q.Choices.Count != 2)
            problems.Add($"question offers {q.Choices.Count} choice{(q.Choices.Count == 1 ? "" : "s")} " +
                         $"({Letters(q)}); the A/B format needs exactly two, (A) and (B)");
        foreach (var (field, letter) in new[] { (MatchingField, m), (NotMatchingField, n) })
            if (letter is { } l && q.Choice(l) is null)
                problems.Add($"{field} ({l}) is not offered by the question's choices ({Letters(q)})");
        return problems;
    }

    /// <summary>The letter of an answer such as "(A)" or " (A)", or null where it is not of that form.</summary>
    public static char? AnswerLetter(string? answer)
    {
        if (answer is null) return null;
        var match = AnswerForm().Match(answer.Trim());
        return match.Success ? match.Groups[1].Value[0] : null;
    }

    /// <summary>
    /// The canonical JSON of a list of items: indented by 4 spaces (as the paper's files), "\n" line ends, non-ASCII
    /// written as is, a final newline. Byte-identical for equal lists on every platform (needed for hashes and the
    /// seed-determinism guarantee).
    /// </summary>
    public static string ToJson<T>(IEnumerable<T> items) => JsonSerializer.Serialize(items.ToArray(), WriteOptions) + "\n";

    /// <summary>Writes <paramref name="content"/> (UTF-8, no BOM) to a temporary file beside <paramref name="path"/> and renames it into place, so that readers never see a half-written file.</summary>
    public static void WriteAtomic(string path, string content)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            File.WriteAllText(tmp, content, Utf8NoBom);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    internal static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        IndentSize = 4,
        NewLine = "\n",
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    static string Letters(AbQuestion q) => string.Join(", ", q.Choices.Select(c => c.Letter));

    static char? CheckAnswer(string field, string? value, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            problems.Add($"field \"{field}\" is missing or empty");
            return null;
        }
        var letter = AnswerLetter(value);
        if (letter is null) problems.Add($"{field} \"{value}\" is not of the form \"(X)\" (one capital letter in parentheses)");
        return letter;
    }

    static void ThrowOnFirst(List<DatasetProblem> problems)
    {
        if (problems.Count > 0) throw new InvalidDataException(problems.OrderBy(p => p.Index ?? -1).First().ToString());
    }

    static List<AbItem?> ReadAb(string path, bool rawAnswerLists, out List<DatasetProblem> problems) =>
        ReadItems(path, out problems, (i, e, ps) =>
        {
            var before = ps.Count;
            var q = Field(path, i, e, QuestionField, false, ps);
            var m = Field(path, i, e, MatchingField, rawAnswerLists, ps);
            var n = Field(path, i, e, NotMatchingField, rawAnswerLists, ps);
            return ps.Count == before ? new AbItem(q!, m!, n!) : null;
        });

    static List<OpenEndedItem?> ReadOpenEnded(string path, out List<DatasetProblem> problems) =>
        ReadItems(path, out problems, (i, e, ps) => Field(path, i, e, QuestionField, false, ps) is { } q ? new OpenEndedItem(q) : null);

    /// <summary>
    /// The file's items read by <paramref name="read"/> (index, JSON object, problems → item or null), in order; an element that
    /// is not an object is a problem and a null item.
    /// </summary>
    static List<T?> ReadItems<T>(string path, out List<DatasetProblem> problems, Func<int, JsonElement, List<DatasetProblem>, T?> read) where T : class
    {
        problems = [];
        var elements = ReadElements(path, problems);
        var items = new List<T?>(elements.Count);
        for (var i = 0; i < elements.Count; i++)
        {
            var e = elements[i];
            if (e.ValueKind != JsonValueKind.Object)
            {
                problems.Add(new DatasetProblem(path, i, $"item is a JSON {e.ValueKind.ToString().ToLowerInvariant()}, not an object"));
                items.Add(null);
                continue;
            }
            items.Add(read(i, e, problems));
        }
        return items;
    }

    static string? Field(string path, int index, JsonElement e, string name, bool allowList, List<DatasetProblem> problems)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            problems.Add(new DatasetProblem(path, index, $"missing field \"{name}\""));
            return null;
        }
        if (allowList && v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0) v = v[0];
        if (v.ValueKind != JsonValueKind.String)
        {
            problems.Add(new DatasetProblem(path, index, $"field \"{name}\" must be a string, not a JSON {v.ValueKind.ToString().ToLowerInvariant()}"));
            return null;
        }
        var s = v.GetString()!;
        if (string.IsNullOrWhiteSpace(s))
        {
            problems.Add(new DatasetProblem(path, index, $"field \"{name}\" is empty"));
            return null;
        }
        return s;
    }

    /// <summary>
    /// The top-level items of a JSON list or a JSONL file (decided by the first non-blank character: '[' → list).
    /// Malformed JSON becomes a problem naming the item being read; items before it are returned.
    /// </summary>
    static List<JsonElement> ReadElements(string path, List<DatasetProblem> problems)
    {
        var result = new List<JsonElement>();
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add(new DatasetProblem(path, null, "cannot read: " + e.Message));
            return result;
        }
        var span = bytes.AsSpan();
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) span = span[3..];
        var firstChar = span.IndexOfAnyExcept((ReadOnlySpan<byte>)" \t\r\n"u8);
        if (firstChar < 0)
        {
            problems.Add(new DatasetProblem(path, null, "file is empty"));
            return result;
        }
        if (span[firstChar] == (byte)'[')
        {
            var reader = new Utf8JsonReader(span, new JsonReaderOptions { AllowTrailingCommas = false });
            try
            {
                reader.Read(); // StartArray
                while (true)
                {
                    if (!reader.Read()) throw new JsonException("unexpected end of file inside the list");
                    if (reader.TokenType == JsonTokenType.EndArray) break;
                    using var doc = JsonDocument.ParseValue(ref reader);
                    result.Add(doc.RootElement.Clone());
                }
                if (reader.Read()) throw new JsonException("unexpected content after the closing ']'");
            }
            catch (JsonException e)
            {
                problems.Add(new DatasetProblem(path, result.Count, $"malformed JSON{(e.LineNumber is { } ln ? $" (line {ln + 1})" : "")}: {FirstLine(e.Message)}"));
            }
        }
        else
        {
            // JSONL: one item per non-blank line; the item index counts items, not blank lines.
            var text = Encoding.UTF8.GetString(span);
            var lines = text.Split('\n');
            for (var lineNo = 0; lineNo < lines.Length; lineNo++)
            {
                var line = lines[lineNo].TrimEnd('\r');
                if (line.Trim().Length == 0) continue;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    result.Add(doc.RootElement.Clone());
                }
                catch (JsonException e)
                {
                    problems.Add(new DatasetProblem(path, result.Count, $"malformed JSON (line {lineNo + 1}): {FirstLine(e.Message)}"));
                    return result;
                }
            }
        }
        return result;
    }

    static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
