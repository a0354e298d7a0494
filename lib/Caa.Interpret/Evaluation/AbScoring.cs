namespace Caa.Interpret.Evaluation;

/// <summary>
/// The paper's A/B score as pure functions: at the position after "(", p(match) = p(matching letter) / (p(A) + p(B)),
/// which equals σ(logit_match − logit_other) because the softmax normalizer cancels.
/// </summary>
public static class AbScoring
{
    /// <summary>σ(<paramref name="logitMatch"/> − <paramref name="logitOther"/>), computed without overflow; in [0, 1].</summary>
    public static double PMatch(double logitMatch, double logitOther)
    {
        var d = logitMatch - logitOther;
        if (double.IsNaN(d)) return double.NaN;
        if (d >= 0) return 1.0 / (1.0 + Math.Exp(-d));
        var e = Math.Exp(d);
        return e / (1.0 + e);
    }

    /// <summary>p(match) from a row of next-token logits and the two letter ids.</summary>
    public static double PMatch(ReadOnlySpan<float> logits, int matchId, int otherId) => PMatch(logits[matchId], logits[otherId]);

    /// <summary>
    /// The letter of an answer in the paper's format: "(A)" → 'A'; a leading space (raw Anthropic files: " (A)") and a
    /// missing closing parenthesis are accepted.
    /// </summary>
    /// <exception cref="FormatException">Not of the form "(X)" with X in A–Z.</exception>
    public static char Letter(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var s = answer.Trim();
        if (s.Length is 2 or 3 && s[0] == '(' && s[1] is >= 'A' and <= 'Z' && (s.Length == 2 || s[2] == ')')) return s[1];
        throw new FormatException($"expected an A/B answer like \"(A)\", got \"{answer}\"");
    }
}
