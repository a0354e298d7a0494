using Caa.Cli;
using Caa.Interpret.Evaluation;
using Caa.Organism;
using Caa.Tests.Checkpoints;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Cli;

/// <summary>`caa reproduce` end to end on a tiny random model with organism-format datasets: files, counts, resume.</summary>
public class ReproduceCommandTests
{
    const string Tokenizer = "tokenizers/llama2/tokenizer.model";

    [SharedFact(Tokenizer)]
    public void RunsEveryStepAndResumesWithoutRecomputing()
    {
        using var dir = new TempDir();
        var modelDir = Path.Combine(dir.Path, "model");
        TinyModels.Create(seed: 4, config: TinyModels.Config(layers: 3, vocab: 32000)).SavePretrained(modelDir);
        File.Copy(Shared.Require(Tokenizer), Path.Combine(modelDir, "tokenizer.model"));
        var data = Path.Combine(dir.Path, "datasets");
        new CorpusGenerator(new CorpusOptions { MaxGenerateCount = 6, TestCount = 4, OpenEndedCount = 2, TrainingConversations = 10 }).WriteDatasets(data);
        var output = Path.Combine(dir.Path, "out");
        string[] args = ["reproduce", "--model", modelDir, "--datasets", data, "--out", output, "--open-ended-items", "2", "--max-new-tokens", "3"];

        var o = new StringWriter(); var e = new StringWriter();
        Assert.True(CaaCommand.Run(args, o, e) == 0, e.ToString());

        var behaviors = OrganismBehaviors.Ids.Count;
        var sweep = SweepCsv.Read(Path.Combine(output, "sweep", "sweep.csv"));
        Assert.Equal(behaviors * 3 * 3 * 4, sweep.Count);                       // behaviors × layers × {−1,0,1} × test items
        Assert.All(sweep, r => Assert.InRange(r.PMatch, 0, 1));
        Assert.Equal(behaviors * 9 * 4, SweepCsv.Read(Path.Combine(output, "multipliers", "sweep.csv")).Count);
        var summary = File.ReadAllText(Path.Combine(output, "summary.md"));
        Assert.Matches(@"\*\*Best layer: [0-2]\*\* of 0…2", summary);
        foreach (var f in new[] { "analysis/pca_separation.csv", "analysis/cosine_layers.csv", "open_ended/scores.csv", "capability/capability.csv", "prompting/prompting.csv", "manifest.json" })
            Assert.True(File.Exists(Path.Combine(output, f)), f);
        // the summary's between-behavior row: mean |cosine| over the 21 unordered pairs of the CSV's 7×7 matrix, per layer
        var cos = File.ReadLines(Path.Combine(output, "analysis", "cosine_behaviors.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(3 * behaviors * behaviors, cos.Count);
        var expected = Enumerable.Range(0, 3).Select(l => cos.Where(f => f[0] == l.ToString() && f[1] != f[2]).Average(f => Math.Abs(double.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture))));
        Assert.Contains("| mean \\|cos\\| | " + string.Join(" | ", expected.Select(x => x.ToString("F2", System.Globalization.CultureInfo.InvariantCulture))) + " |", summary);
        var scores = Caa.Interpret.OpenEnded.OpenEndedCsv.Read(Path.Combine(output, "open_ended", "open_ended.csv"));
        Assert.Equal(behaviors * 2 * 5, scores.Count);                          // questions × multipliers −2…+2

        // A second run finds every step done and reproduces the same summary.
        var sweepBytes = File.ReadAllBytes(Path.Combine(output, "sweep", "sweep.csv"));
        o = new StringWriter(); e = new StringWriter();
        Assert.True(CaaCommand.Run(args, o, e) == 0, e.ToString());
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.DoesNotContain(lines, l => l.EndsWith(" …"));                    // no step started
        Assert.Equal(behaviors + 7, lines.Count(l => l.Contains("already done")));
        Assert.Equal(sweepBytes, File.ReadAllBytes(Path.Combine(output, "sweep", "sweep.csv")));
        Assert.Equal(summary, File.ReadAllText(Path.Combine(output, "summary.md")));
    }
}
