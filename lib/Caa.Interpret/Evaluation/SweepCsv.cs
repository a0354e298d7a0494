using System.Globalization;
using System.Text;
using Caa.Model.IO;

namespace Caa.Interpret.Evaluation;

/// <summary>
/// The sweep's tidy CSV: header <c>behavior,layer,multiplier,item,p_match</c>, one row per line ending in "\n", numbers in the
/// invariant culture with round-trip precision (so a resumed run reproduces an uninterrupted one byte for byte).
/// </summary>
public static class SweepCsv
{
    public const string Header = "behavior,layer,multiplier,item,p_match";

    /// <summary>One row as a CSV line (without the newline).</summary>
    public static string Format(SweepRow r) => string.Join(",",
        r.Behavior, r.Layer.ToString(CultureInfo.InvariantCulture), r.Multiplier.ToString("R", CultureInfo.InvariantCulture),
        r.Item.ToString(CultureInfo.InvariantCulture), r.PMatch.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>The whole file's text for <paramref name="rows"/>.</summary>
    public static string ToText(IEnumerable<SweepRow> rows)
    {
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var r in rows) sb.Append(Format(r)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Behavior names go into the CSV unquoted, so they may not contain separators or quotes.</summary>
    public static void CheckName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny([',', '"', '\n', '\r']) >= 0)
            throw new ArgumentException($"behavior name '{name}' is empty or contains a comma, quote or newline");
    }

    /// <summary>Parses one data line.</summary>
    /// <exception cref="FormatException">Not five well-formed fields.</exception>
    public static SweepRow Parse(string line)
    {
        var f = line.Split(',');
        var inv = CultureInfo.InvariantCulture;
        if (f.Length != 5 || f[0].Length == 0
            || !int.TryParse(f[1], NumberStyles.Integer, inv, out var layer)
            || !double.TryParse(f[2], NumberStyles.Float, inv, out var m)
            || !int.TryParse(f[3], NumberStyles.Integer, inv, out var item)
            || !double.TryParse(f[4], NumberStyles.Float, inv, out var p))
            throw new FormatException($"not a sweep row ({Header}): '{line}'");
        return new SweepRow(f[0], layer, m, item, p);
    }

    /// <summary>Reads a complete file (header required, every line well-formed).</summary>
    public static IReadOnlyList<SweepRow> Read(string path)
    {
        var rows = ReadCore(path, tolerateTornEnd: false, out _);
        return rows;
    }

    /// <summary>
    /// Reads a file an interrupted sweep may have left: a last line without its newline (a torn write) is dropped, as is an
    /// empty or header-only file's content. Any other malformed line is an error.
    /// </summary>
    public static IReadOnlyList<SweepRow> ReadForResume(string path) => ReadCore(path, tolerateTornEnd: true, out _);

    /// <summary>As <see cref="ReadForResume(string)"/>, also saying whether a torn last line was dropped.</summary>
    public static IReadOnlyList<SweepRow> ReadForResume(string path, out bool droppedTornLine) => ReadCore(path, tolerateTornEnd: true, out droppedTornLine);

    static List<SweepRow> ReadCore(string path, bool tolerateTornEnd, out bool dropped)
    {
        dropped = false;
        var text = File.ReadAllText(path, Encoding.UTF8);
        var lines = text.Split('\n').ToList();
        // After the last "\n" comes "" for a clean file, or a torn fragment.
        var tail = lines[^1];
        lines.RemoveAt(lines.Count - 1);
        if (tail.Length > 0)
        {
            if (!tolerateTornEnd) throw new InvalidDataException($"{path}: the last line has no newline (an interrupted write?)");
            dropped = true;
        }
        if (lines.Count == 0) return [];
        if (lines[0].TrimEnd('\r') != Header) throw new InvalidDataException($"{path}: expected the header '{Header}', found '{lines[0]}'");
        var rows = new List<SweepRow>(lines.Count - 1);
        for (var i = 1; i < lines.Count; i++)
        {
            try { rows.Add(Parse(lines[i].TrimEnd('\r'))); }
            catch (FormatException e) { throw new InvalidDataException($"{path}:{i + 1}: {e.Message}"); }
        }
        return rows;
    }

    /// <summary>Replaces the file with the header and <paramref name="rows"/> (atomically).</summary>
    public static void Rewrite(string path, IEnumerable<SweepRow> rows)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(path, ToText(rows));
    }

    /// <summary>Appends rows (one finished cell) in one write and flushes them to disk; creates the file with its header if absent.</summary>
    public static void Append(string path, IEnumerable<SweepRow> rows)
    {
        if (!File.Exists(path)) Rewrite(path, []);
        var sb = new StringBuilder();
        foreach (var r in rows) sb.Append(Format(r)).Append('\n');
        if (sb.Length == 0) return;
        using var fs = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        var bytes = new UTF8Encoding(false).GetBytes(sb.ToString());
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
    }
}

/// <summary>Mean p(match) of one (behavior, layer, multiplier) over its items.</summary>
public sealed record SweepMean(string Behavior, int Layer, double Multiplier, double MeanPMatch, int Items);

/// <summary>Summaries of sweep rows.</summary>
public static class SweepSummary
{
    public const string Header = "behavior,layer,multiplier,mean_p_match,n";

    /// <summary>Mean p(match) per (behavior, layer, multiplier), ordered by behavior (first appearance), layer, multiplier.</summary>
    public static IReadOnlyList<SweepMean> Means(IEnumerable<SweepRow> rows)
    {
        var list = rows.ToList();
        var order = list.Select(r => r.Behavior).Distinct().Select((b, i) => (b, i)).ToDictionary(x => x.b, x => x.i);
        return list.GroupBy(r => (r.Behavior, r.Layer, r.Multiplier))
            .Select(g => new SweepMean(g.Key.Behavior, g.Key.Layer, g.Key.Multiplier, g.Average(r => r.PMatch), g.Count()))
            .OrderBy(m => order[m.Behavior]).ThenBy(m => m.Layer).ThenBy(m => m.Multiplier).ToList();
    }

    /// <summary>
    /// The best steering layer of <paramref name="behavior"/>: the layer with the largest
    /// mean p(match | multiplier <paramref name="plus"/>) − mean p(match | multiplier <paramref name="minus"/>), i.e. where the vector
    /// moves behavior the most in both directions (the paper's sweep uses +1 and −1). Ties go to the lower layer; null when no layer
    /// has rows for both multipliers.
    /// </summary>
    public static int? BestLayer(IEnumerable<SweepRow> rows, string behavior, double plus = 1, double minus = -1)
    {
        var means = Means(rows.Where(r => r.Behavior == behavior && (r.Multiplier == plus || r.Multiplier == minus)));
        int? best = null;
        var bestEffect = double.NegativeInfinity;
        foreach (var g in means.GroupBy(m => m.Layer).OrderBy(g => g.Key))
        {
            var p = g.FirstOrDefault(m => m.Multiplier == plus);
            var n = g.FirstOrDefault(m => m.Multiplier == minus);
            if (p is null || n is null) continue;
            var effect = p.MeanPMatch - n.MeanPMatch;
            if (effect > bestEffect) { bestEffect = effect; best = g.Key; }
        }
        return best;
    }

    /// <summary>
    /// Per layer, the mean over behaviors of [mean p(match | <paramref name="plus"/>) − mean p(match | <paramref name="minus"/>)]:
    /// how far the vectors move behavior in both directions at that layer. Only layers where every behavior in
    /// <paramref name="rows"/> has both multipliers are included (ascending layer).
    /// </summary>
    public static SortedDictionary<int, double> SteeringEffectByLayer(IEnumerable<SweepRow> rows, double plus = 1, double minus = -1)
    {
        var means = Means(rows.Where(r => r.Multiplier == plus || r.Multiplier == minus));
        var behaviors = means.Select(m => m.Behavior).Distinct().Count();
        var result = new SortedDictionary<int, double>();
        foreach (var g in means.GroupBy(m => m.Layer))
        {
            var effects = g.GroupBy(m => m.Behavior)
                .Select(b => (P: b.FirstOrDefault(m => m.Multiplier == plus), N: b.FirstOrDefault(m => m.Multiplier == minus)))
                .Where(x => x.P is not null && x.N is not null).Select(x => x.P!.MeanPMatch - x.N!.MeanPMatch).ToList();
            if (effects.Count == behaviors && behaviors > 0) result[g.Key] = effects.Average();
        }
        return result;
    }

    /// <summary>
    /// The best steering layer over all behaviors: the layer of largest <see cref="SteeringEffectByLayer"/> (what <c>caa reproduce</c>
    /// and the notebooks use for the detailed experiments; the paper's is layer 13 of Llama 2 7B). Ties go to the lower layer; null
    /// when no layer has both multipliers for every behavior.
    /// </summary>
    public static int? BestLayerAcrossBehaviors(IEnumerable<SweepRow> rows, double plus = 1, double minus = -1)
    {
        int? best = null;
        var bestEffect = double.NegativeInfinity;
        foreach (var (layer, effect) in SteeringEffectByLayer(rows, plus, minus))
            if (effect > bestEffect) { bestEffect = effect; best = layer; }
        return best;
    }

    /// <summary>The summary CSV (<see cref="Header"/>).</summary>
    public static string ToCsv(IEnumerable<SweepMean> means)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var m in means)
            sb.Append(m.Behavior).Append(',').Append(m.Layer.ToString(inv)).Append(',').Append(m.Multiplier.ToString("R", inv)).Append(',')
              .Append(m.MeanPMatch.ToString("R", inv)).Append(',').Append(m.Items.ToString(inv)).Append('\n');
        return sb.ToString();
    }
}
