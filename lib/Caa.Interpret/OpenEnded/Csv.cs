using System.Globalization;
using System.Text;
using Caa.Model.IO;

namespace Caa.Interpret.OpenEnded;

/// <summary>Minimal RFC 4180 CSV: fields with commas, quotes, line breaks or outer spaces are quoted; files are UTF-8, written atomically.</summary>
public static class Csv
{
    public static string Format(IEnumerable<IReadOnlyList<string>> records)
    {
        var sb = new StringBuilder();
        foreach (var r in records)
        {
            for (var i = 0; i < r.Count; i++)
            {
                if (i > 0) sb.Append(',');
                var f = r[i] ?? "";
                var quote = f.Length > 0 && (f.IndexOfAny([',', '"', '\n', '\r']) >= 0 || char.IsWhiteSpace(f[0]) || char.IsWhiteSpace(f[^1]));
                sb.Append(quote ? "\"" + f.Replace("\"", "\"\"") + "\"" : f);
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Parses CSV text (quoted fields may hold line breaks). Accepts \n and \r\n line ends.</summary>
    public static List<string[]> Parse(string text)
    {
        var records = new List<string[]>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var i = 0;
        var any = false;   // the current record has started
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '"' && field.Length == 0)
            {
                i++;
                while (true)
                {
                    if (i >= text.Length) throw new InvalidDataException("CSV: unterminated quoted field");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    field.Append(text[i++]);
                }
                any = true;
                continue;
            }
            if (c == ',') { fields.Add(field.ToString()); field.Clear(); any = true; i++; continue; }
            if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') { i++; continue; }
            if (c == '\n')
            {
                fields.Add(field.ToString()); field.Clear();
                records.Add([.. fields]); fields.Clear(); any = false; i++;
                continue;
            }
            field.Append(c); any = true; i++;
        }
        if (any) { fields.Add(field.ToString()); records.Add([.. fields]); }
        return records;
    }

    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows) =>
        AtomicFile.WriteAllText(path, Format(rows.Prepend(header)));

    /// <summary>Reads a CSV file with a header; each row as a column → value map. Checks that the <paramref name="required"/> columns exist.</summary>
    public static List<Dictionary<string, string>> Read(string path, params string[] required)
    {
        var records = Parse(File.ReadAllText(path, Encoding.UTF8));
        if (records.Count == 0) throw new InvalidDataException($"{path}: empty CSV (no header)");
        var header = records[0];
        foreach (var r in required)
            if (!header.Contains(r)) throw new InvalidDataException($"{path}: no column '{r}' (columns: {string.Join(", ", header)})");
        var rows = new List<Dictionary<string, string>>();
        for (var k = 1; k < records.Count; k++)
        {
            if (records[k].Length != header.Length) throw new InvalidDataException($"{path}: record {k} has {records[k].Length} fields; the header has {header.Length}");
            rows.Add(header.Zip(records[k]).ToDictionary(p => p.First, p => p.Second));
        }
        return rows;
    }

    public static string Number(double x) => x.ToString("R", CultureInfo.InvariantCulture);
    public static double ParseNumber(string s, string what) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x : throw new InvalidDataException($"{what}: '{s}' is not a number");
}

/// <summary>open_ended.csv / scores.csv: columns behavior, layer, multiplier, item, question, answer (+ score, judge_reply).</summary>
public static class OpenEndedCsv
{
    public static readonly string[] Columns = ["behavior", "layer", "multiplier", "item", "question", "answer"];
    public static readonly string[] ScoredColumns = [.. Columns, "score", "judge_reply"];
    public static readonly string[] MeanColumns = ["behavior", "layer", "multiplier", "answers", "scored", "unparsable", "mean_score"];

    static string[] Fields(OpenEndedResult r) =>
        [r.Behavior, r.Layer.ToString(CultureInfo.InvariantCulture), Csv.Number(r.Multiplier), r.Item.ToString(CultureInfo.InvariantCulture), r.Question, r.Answer];

    /// <summary>Writes results atomically.</summary>
    public static void Write(string path, IEnumerable<OpenEndedResult> rows) => Csv.Write(path, Columns, rows.Select(Fields));

    /// <summary>Writes scored results atomically (score empty where the judge's reply was unparsable).</summary>
    public static void WriteScored(string path, IEnumerable<ScoredResult> rows) =>
        Csv.Write(path, ScoredColumns, rows.Select(s => (IReadOnlyList<string>)[.. Fields(s.Result), s.Score is { } x ? Csv.Number(x) : "", s.JudgeReply]));

    /// <summary>Writes the per-(behavior, layer, multiplier) means atomically.</summary>
    public static void WriteMeans(string path, IEnumerable<ScoreSummary> means) =>
        Csv.Write(path, MeanColumns, means.Select(m => (IReadOnlyList<string>)[m.Behavior, m.Layer.ToString(CultureInfo.InvariantCulture), Csv.Number(m.Multiplier),
            m.Answers.ToString(CultureInfo.InvariantCulture), m.Scored.ToString(CultureInfo.InvariantCulture), m.Unparsable.ToString(CultureInfo.InvariantCulture),
            m.Mean is { } x ? Csv.Number(x) : ""]));

    public static List<OpenEndedResult> Read(string path) =>
        Csv.Read(path, Columns).Select((r, k) => new OpenEndedResult(r["behavior"],
            (int)Csv.ParseNumber(r["layer"], $"{path} record {k + 1} layer"), Csv.ParseNumber(r["multiplier"], $"{path} record {k + 1} multiplier"),
            (int)Csv.ParseNumber(r["item"], $"{path} record {k + 1} item"), r["question"], r["answer"])).ToList();
}
