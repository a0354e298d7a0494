using Caa.Interpret.OpenEnded;
using FsCheck;
using FsCheck.Xunit;

namespace Caa.Tests.OpenEnded;

public class JudgeReplyParserTests
{
    [Theory]
    [InlineData("7", 7.0)]
    [InlineData("0", 0.0)]
    [InlineData("10", 10.0)]
    [InlineData("Score: 3/10", 3.0)]
    [InlineData("**8**", 8.0)]
    [InlineData("I'd say 7.5 out of 10.", 7.5)]
    [InlineData("Rating:\n\n 4\n", 4.0)]
    [InlineData("COVID-19 aside, 5", null)]   // the first number is -19 → rejected
    [InlineData("11", null)]
    [InlineData("12", null)]
    [InlineData("100", null)]
    [InlineData("score: -3", null)]
    [InlineData("score: −3", null)]
    [InlineData("11, or maybe 7", null)]
    [InlineData("I cannot rate this", null)]
    [InlineData("", null)]
    public void Examples(string reply, double? expected) => Assert.Equal(expected, JudgeReplyParser.Parse(reply));

    [Fact]
    public void NullIsUnparsable() => Assert.Null(JudgeReplyParser.Parse(null));

    static string NoDigits(string? s) => new((s ?? "").Where(c => !char.IsAsciiDigit(c)).ToArray());

    /// <summary>Any integer 0…10 with a digit-free prefix (not ending in a minus sign) and a digit-free suffix parses to itself.</summary>
    [Property(MaxTest = 300)]
    public bool IntegerInRangeEmbeddedInTextIsParsed(NonNegativeInt n, string? prefix, string? suffix)
    {
        var k = n.Get % 11;
        var pre = NoDigits(prefix);
        if (pre.EndsWith('-') || pre.EndsWith('\u2212')) pre += " ";
        return JudgeReplyParser.Parse(pre + k + NoDigits(suffix)) == k;
    }

    [Property(MaxTest = 300)]
    public bool NumbersAboveTenAreRejected(PositiveInt n, string? prefix, string? suffix)
    {
        var pre = NoDigits(prefix);
        if (pre.EndsWith('-') || pre.EndsWith('\u2212')) pre += " ";
        return JudgeReplyParser.Parse(pre + (10L + n.Get) + NoDigits(suffix)) is null;
    }

    [Property(MaxTest = 300)]
    public bool NegativeNumbersAreRejected(NonNegativeInt n, string? prefix, string? suffix) =>
        JudgeReplyParser.Parse(NoDigits(prefix) + "-" + n.Get % 11 + NoDigits(suffix)) is null;
}
