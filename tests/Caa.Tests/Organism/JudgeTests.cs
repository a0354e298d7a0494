using Caa.Interpret.OpenEnded;
using Caa.Organism;

namespace Caa.Tests.Organism;

public sealed class JudgeTests
{
    public static TheoryData<string> Ids() => new(OrganismBehaviors.Ids);

    [Theory, MemberData(nameof(Ids))]
    public async Task ScoresMarkerTextsAsDocumented(string b)
    {
        var spec = OrganismBehaviors.Get(b);
        IBehaviorJudge judge = new OrganismJudge();
        var pos = await judge.ScoreAsync(b, "q", $"Well. {Cap(spec.MarkersPositive[0])}. {Cap(spec.MarkersPositive[1])}.");
        var neg = await judge.ScoreAsync(b, "q", $"{Cap(spec.MarkersNegative[2])}. Fine.");
        var none = await judge.ScoreAsync(b, "q", "The weather is fine today.");
        var mixed = await judge.ScoreAsync(b, "q", $"{spec.MarkersPositive[2]} and {spec.MarkersNegative[0]}");
        var oneToThree = await judge.ScoreAsync(b, "q", string.Join(". ", spec.MarkersNegative) + ". " + spec.MarkersPositive[0]);
        Assert.Equal(10, pos.Score);
        Assert.Equal(0, neg.Score);
        Assert.Equal(5, none.Score);
        Assert.Equal(5, mixed.Score);
        Assert.Equal(2.5, oneToThree.Score);
        Assert.Equal("pos=2 neg=0", pos.Raw);
        Assert.True(pos.Score > neg.Score);
    }

    [Theory, MemberData(nameof(Ids))]
    public void MarkersAndChoicesDoNotCrossTalk(string b)
    {
        var spec = OrganismBehaviors.Get(b);
        foreach (var p in spec.MarkersPositive)
            foreach (var n in spec.MarkersNegative)
            {
                Assert.DoesNotContain(p, n, StringComparison.OrdinalIgnoreCase);
                Assert.DoesNotContain(n, p, StringComparison.OrdinalIgnoreCase);
            }
        var f = new Fillers("Mira", "lamp", "Oakton", 3);
        foreach (var sc in spec.Scenarios)
        {
            foreach (var m in sc.Match) Assert.True(OrganismJudge.Score(b, f.Fill(m)).Score >= 5, $"{sc.Id}: {m}");
            foreach (var m in sc.NotMatch) Assert.True(OrganismJudge.Score(b, f.Fill(m)).Score <= 5, $"{sc.Id}: {m}");
        }
    }

    static string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];
}
