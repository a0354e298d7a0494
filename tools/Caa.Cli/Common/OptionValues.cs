using System.Globalization;

namespace Caa.Cli.Common;

/// <summary>Parsing of list-valued options shared by several commands.</summary>
public static class OptionValues
{
    /// <summary>Comma-separated finite numbers, none repeated (e.g. --multipliers -2,-1,0,1,2); errors name the option and the bad part.</summary>
    public static List<double> Numbers(string s, string option)
    {
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new List<double>(parts.Length);
        foreach (var part in parts)
            values.Add(double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v
                : throw new CliException($"{option}: '{part}' is not a number (expected comma-separated finite numbers, e.g. -2,-1,0,1,2)"));
        if (values.Count == 0) throw new CliException($"{option}: none given");
        if (values.Distinct().Count() != values.Count) throw new CliException($"{option}: {s} repeats a value");
        return values;
    }
}
