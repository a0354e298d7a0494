using System.Text;
using System.Text.RegularExpressions;

namespace Caa.Interpret.Datasets;

/// <summary>One offered choice of a multiple-choice question: its letter and its text (without the "(X)" label).</summary>
/// <param name="Letter">Upper-case letter, 'A' for "(A)".</param>
/// <param name="Text">The choice text, trimmed.</param>
public sealed record AbChoice(char Letter, string Text);

/// <summary>
/// A question split into its body and its choices block ("…\n\nChoices:\n (A) …\n (B) …"), and formatted back in the
/// paper's exact layout. Used to validate items, normalize raw items and swap choices.
/// </summary>
/// <param name="Body">The question text before "Choices:", trimmed (this is the open-ended prompt).</param>
/// <param name="Choices">The choices in file order.</param>
public sealed partial record AbQuestion(string Body, IReadOnlyList<AbChoice> Choices)
{
    /// <summary>The marker that starts the choices block.</summary>
    public const string ChoicesMarker = "Choices:";

    // A choice line: optional indentation, "(X)", optional space, text. The space is optional because ~40 raw
    // survival-instinct lines read " (A)Yes".
    [GeneratedRegex(@"^[ \t]*\(([A-Za-z])\)[ \t]*(.*)$")]
    private static partial Regex ChoiceLine();

    [GeneratedRegex(@"^[ \t]*Choices:[ \t]*$", RegexOptions.Multiline)]
    private static partial Regex ChoicesLine();

    [GeneratedRegex(@"[ \t\u00A0]+")]
    private static partial Regex SpaceRun();

    [GeneratedRegex(@"\n{3,}")]
    private static partial Regex BlankRun();

    /// <summary>
    /// Splits <paramref name="question"/> at its last line reading "Choices:" and parses the non-empty lines after it as
    /// choices. Returns null and a reason where there is no such block, a line after it is not a choice, a letter
    /// repeats, or the letters are not A, B, C… in order.
    /// </summary>
    public static AbQuestion? TryParse(string question, out string? error)
    {
        ArgumentNullException.ThrowIfNull(question);
        var text = question.Replace("\r\n", "\n").Replace('\r', '\n');
        var markers = ChoicesLine().Matches(text);
        if (markers.Count == 0)
        {
            error = "question has no \"Choices:\" line followed by \" (A) …\" / \" (B) …\" lines";
            return null;
        }
        var m = markers[^1];
        var body = text[..m.Index].Trim();
        var choices = new List<AbChoice>();
        var lineNo = 0;
        foreach (var raw in text[(m.Index + m.Length)..].Split('\n'))
        {
            lineNo++;
            if (raw.Trim().Length == 0) continue;
            var cm = ChoiceLine().Match(raw);
            if (!cm.Success)
            {
                error = $"line {lineNo} after \"Choices:\" is not a choice of the form \" (X) text\": \"{Clip(raw.Trim())}\"";
                return null;
            }
            var letter = char.ToUpperInvariant(cm.Groups[1].Value[0]);
            var expected = (char)('A' + choices.Count);
            if (letter != expected)
            {
                error = $"choice letters must run A, B, C… in order; found ({letter}) where ({expected}) was expected";
                return null;
            }
            choices.Add(new AbChoice(letter, cm.Groups[2].Value.Trim()));
        }
        if (choices.Count == 0)
        {
            error = "\"Choices:\" is followed by no \" (A) …\" lines";
            return null;
        }
        if (body.Length == 0)
        {
            error = "question has no text before \"Choices:\"";
            return null;
        }
        error = null;
        return new AbQuestion(body, choices);
    }

    /// <summary>Like <see cref="TryParse"/> but throws <see cref="FormatException"/> with the reason.</summary>
    public static AbQuestion Parse(string question) =>
        TryParse(question, out var error) ?? throw new FormatException(error);

    /// <summary>The choice with this letter, or null where it is not offered.</summary>
    public AbChoice? Choice(char letter) => Choices.FirstOrDefault(c => c.Letter == char.ToUpperInvariant(letter));

    /// <summary>The question in the paper's layout: body, "\n\nChoices:", then one " (X) text" line per choice.</summary>
    public string Format()
    {
        var sb = new StringBuilder(Body).Append("\n\n").Append(ChoicesMarker);
        foreach (var c in Choices) sb.Append("\n (").Append(c.Letter).Append(") ").Append(c.Text);
        return sb.ToString();
    }

    /// <summary>
    /// Whitespace normalization: CRLF → LF, tabs/no-break spaces → space, runs of spaces collapsed to one (a single
    /// leading space on a line, e.g. " (1) …", is kept), trailing spaces per line removed, 3+ newlines → 2,
    /// the whole text trimmed; the same for every choice text.
    /// </summary>
    public AbQuestion Normalize() => new(
        NormalizeText(Body),
        Choices.Select(c => c with { Text = NormalizeText(c.Text) }).ToArray());

    /// <summary>The whitespace normalization of <see cref="Normalize"/> applied to any text.</summary>
    public static string NormalizeText(string text)
    {
        var lines = text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n')
            .Select(l => SpaceRun().Replace(l, " ").TrimEnd());
        return BlankRun().Replace(string.Join('\n', lines), "\n\n").Trim();
    }

    static string Clip(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
