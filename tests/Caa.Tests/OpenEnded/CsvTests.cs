using Caa.Interpret.OpenEnded;
using FsCheck;
using FsCheck.Xunit;

namespace Caa.Tests.OpenEnded;

public class CsvTests
{
    static string Clean(string? s) => new((s ?? "").Select(c => char.IsSurrogate(c) ? '?' : c).ToArray());

    [Property(MaxTest = 100)]
    public bool ResultsRoundTrip(string? question, string? answer, NonNegativeInt item, int m)
    {
        var dir = Directory.CreateTempSubdirectory("caa-csv-");
        try
        {
            var rows = new[]
            {
                new OpenEndedResult("sycophancy", 13, m / 4.0, item.Get, Clean(question), Clean(answer)),
                new OpenEndedResult("refusal", 0, -0.5, 0, "q, \"quoted\"\r\nnext", " padded "),
            };
            var path = Path.Combine(dir.FullName, "open_ended.csv");
            OpenEndedCsv.Write(path, rows);
            return OpenEndedCsv.Read(path).SequenceEqual(rows);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ScoredRowsAndMeansAreWritten()
    {
        var dir = Directory.CreateTempSubdirectory("caa-csv-");
        try
        {
            var r = new OpenEndedResult("refusal", 13, 1, 0, "q", "a");
            var report = OpenEndedScoring.Summarize([new ScoredResult(r, 4, "4"), new ScoredResult(r with { Item = 1 }, null, "no"), new ScoredResult(r with { Item = 2 }, 8, "8")]);
            Assert.Equal(1, report.Unparsable);
            var mean = Assert.Single(report.Means);
            Assert.Equal((3, 2, 1, 6.0), (mean.Answers, mean.Scored, mean.Unparsable, mean.Mean!.Value));
            OpenEndedCsv.WriteScored(Path.Combine(dir.FullName, "scores.csv"), report.Rows);
            var back = Csv.Read(Path.Combine(dir.FullName, "scores.csv"), OpenEndedCsv.ScoredColumns);
            Assert.Equal(["4", "", "8"], back.Select(x => x["score"]));
            OpenEndedCsv.WriteMeans(Path.Combine(dir.FullName, "means.csv"), report.Means);
            Assert.Equal("6", Csv.Read(Path.Combine(dir.FullName, "means.csv"), "mean_score").Single()["mean_score"]);
        }
        finally { dir.Delete(true); }
    }
}
