using System.Globalization;
using Caa.Interpret.Evaluation;
using Caa.Model.Llama;
using Caa.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Caa.Tests.Evaluation;

public class SweepTests
{
    static readonly double[] Multipliers = [-1.5, -1, 0, 0.5, 1];

    static IReadOnlyList<SweepRow> Sweep(LlamaForCausalLM model, IReadOnlyList<SweepBehavior> behaviors, SweepMode mode, int batch = 4, double[]? ms = null) =>
        LayerSweep.Run(model, behaviors, new SweepOptions
        {
            Layers = Enumerable.Range(0, model.Config.NumHiddenLayers).ToList(), Multipliers = ms ?? Multipliers, Mode = mode, BatchSize = batch,
        });

    static void AssertSame(IReadOnlyList<SweepRow> expected, IReadOnlyList<SweepRow> actual, double tol)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            Assert.Equal((e.Behavior, e.Layer, e.Multiplier, e.Item), (a.Behavior, a.Layer, a.Multiplier, a.Item));
            Assert.True(Math.Abs(e.PMatch - a.PMatch) <= tol, $"{e} vs {a.PMatch}: differ by {Math.Abs(e.PMatch - a.PMatch):E2}");
        }
    }

    [Fact]
    public void EfficientEqualsReferenceTokenizerFree()
    {
        lock (EvalFixtures.Gate)
        {
            var model = EvalFixtures.Tiny;
            var behaviors = new[]
            {
                new SweepBehavior("regular", EvalFixtures.Prompts(7, 31), EvalFixtures.Vectors(model, 1)),
                // different suffix lengths per row, and a row steered at every column (start -1)
                new SweepBehavior("irregular", EvalFixtures.Prompts(7, 32, irregular: true), EvalFixtures.Vectors(model, 2)),
            };
            var reference = Sweep(model, behaviors, SweepMode.Reference);
            var efficient = Sweep(model, behaviors, SweepMode.Efficient, batch: 3);
            var batched = Sweep(model, behaviors, SweepMode.Batched, batch: 3);
            AssertSame(reference, efficient, 1e-4);
            AssertSame(reference, batched, 1e-4);
            Assert.Equal(2 * 4 * Multipliers.Length * 7, reference.Count);
            // the steering matters, so the agreement is not trivial
            Assert.Contains(reference.Where(r => r.Multiplier == 1).Zip(reference.Where(r => r.Multiplier == -1)), t => Math.Abs(t.First.PMatch - t.Second.PMatch) > 0.05);
            Assert.Equal(0, model.Hooks.Count);
        }
    }

    [Fact]
    public void EfficientMultiplierZeroIsExactlyItsUnsteeredPass()
    {
        lock (EvalFixtures.Gate)
        {
            var model = EvalFixtures.Tiny;
            var b = new SweepBehavior("b", EvalFixtures.Prompts(5, 41), EvalFixtures.Vectors(model, 3));
            var rows = Sweep(model, [b], SweepMode.Efficient, batch: 5, ms: [0]);
            var byLayer = rows.GroupBy(r => r.Layer).Select(g => g.Select(r => r.PMatch).ToArray()).ToList();
            Assert.All(byLayer, l => Assert.Equal(byLayer[0], l));
            var plain = AbEvaluation.Evaluate(model, b.Prompts, batchSize: 5).PMatch;
            for (var i = 0; i < plain.Count; i++) Assert.Equal(plain[i], byLayer[0][i], 1e-5);
        }
    }

    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void EfficientEqualsReferenceWithTheLlama2Tokenizer()
    {
        lock (EvalFixtures.Gate)
        {
            var model = EvalFixtures.TinyLlamaVocab;
            var tok = EvalFixtures.Tokenizer;
            var items = EvalFixtures.Items();
            var behaviors = new[]
            {
                new SweepBehavior("plain", AbPrompt.FromItems(tok, items), EvalFixtures.Vectors(model, 5)),
                new SweepBehavior("with-system", AbPrompt.FromItems(tok, items, system: "You are a helpful assistant."), EvalFixtures.Vectors(model, 6)),
            };
            var ms = new[] { -1.0, 0, 1 };
            var reference = Sweep(model, behaviors, SweepMode.Reference, ms: ms);
            var efficient = Sweep(model, behaviors, SweepMode.Efficient, batch: 3, ms: ms);
            AssertSame(reference, efficient, 1e-4);
        }
    }

    static SweepBehavior[] ResumeBehaviors(LlamaForCausalLM model) =>
    [
        new SweepBehavior("alpha", EvalFixtures.Prompts(4, 51), EvalFixtures.Vectors(model, 7)),
        new SweepBehavior("beta", EvalFixtures.Prompts(3, 52, irregular: true), EvalFixtures.Vectors(model, 8)),
    ];

    [Fact]
    public void ResumeAfterACrashGivesTheSameFileAsAnUninterruptedRun()
    {
        lock (EvalFixtures.Gate)
        {
            var model = EvalFixtures.Tiny;
            var behaviors = ResumeBehaviors(model);
            var options = new SweepOptions { Layers = [0, 1, 2, 3], Multipliers = [-1, 0, 1], BatchSize = 2 };
            var dir = Directory.CreateTempSubdirectory("caa-sweep-").FullName;
            try
            {
                var full = Path.Combine(dir, "full.csv");
                var fullRows = LayerSweep.Run(model, behaviors, options, full);
                var expected = File.ReadAllText(full);
                var lines = expected.Split('\n');
                Assert.Equal(SweepCsv.Header, lines[0]);
                Assert.Equal(4 * 3 * 4 + 4 * 3 * 3, fullRows.Count);

                for (var k = 0; k <= 8; k++)
                {
                    // Simulate a crash after k cells: the first k cells, then part of cell k+1 (2 whole rows) and a torn line.
                    var cellRows = k <= 4 ? k * 12 : 48 + (k - 4) * 9;
                    var partial = string.Join("\n", lines.Take(1 + cellRows)) + "\n";
                    if (k < 8)
                    {
                        var next = lines.Skip(1 + cellRows).Take(3).ToArray();
                        partial += next[0] + "\n" + next[1] + "\n" + next[2][..(next[2].Length / 2)];
                    }
                    var path = Path.Combine(dir, $"resumed{k}.csv");
                    File.WriteAllText(path, partial);
                    var reports = new List<SweepProgress>();
                    var rows = LayerSweep.Run(model, behaviors, options, path, new SyncProgress<SweepProgress>(reports.Add));
                    Assert.Equal(expected, File.ReadAllText(path));
                    Assert.Equal(rows.Count, rows.Distinct().Count());
                    Assert.Equal(k, reports.Count(r => r.Skipped));
                    Assert.Equal(8, reports.Count);
                    Assert.Equal(Enumerable.Range(1, 8), reports.Select(r => r.CellsDone));
                    // and a rerun of a complete file computes nothing and changes nothing
                    reports.Clear();
                    LayerSweep.Run(model, behaviors, options, path, new SyncProgress<SweepProgress>(reports.Add));
                    Assert.All(reports, r => Assert.True(r.Skipped));
                    Assert.Equal(expected, File.ReadAllText(path));
                }
            }
            finally { Directory.Delete(dir, true); }
        }
    }

    [Fact]
    public void CsvHeaderAndFormatAreInvariant()
    {
        var old = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = new CultureInfo("de-DE");
        try
        {
            var rows = new[] { new SweepRow("sycophancy", 13, -0.5, 7, 0.123456789012345), new SweepRow("refusal", 0, 1, 0, 1) };
            var text = SweepCsv.ToText(rows);
            Assert.Equal("behavior,layer,multiplier,item,p_match\nsycophancy,13,-0.5,7,0.123456789012345\nrefusal,0,1,0,1\n", text);
            var path = Path.GetTempFileName();
            try
            {
                File.WriteAllText(path, text);
                Assert.Equal(rows, SweepCsv.Read(path));
                File.WriteAllText(path, text + "refusal,1,0.5,0,0.7");   // torn last line
                Assert.Throws<InvalidDataException>(() => SweepCsv.Read(path));
                Assert.Equal(rows, SweepCsv.ReadForResume(path, out var dropped));
                Assert.True(dropped);
                File.WriteAllText(path, "behaviour,layer\n");
                Assert.Throws<InvalidDataException>(() => SweepCsv.ReadForResume(path));
            }
            finally { File.Delete(path); }
            Assert.Throws<ArgumentException>(() => SweepCsv.CheckName("a,b"));
        }
        finally { CultureInfo.CurrentCulture = old; }
    }

    [Fact]
    public void SummaryMeansAndBestLayer()
    {
        var rows = new List<SweepRow>();
        void Add(int layer, double m, params double[] ps) { for (var i = 0; i < ps.Length; i++) rows.Add(new SweepRow("b", layer, m, i, ps[i])); }
        Add(0, -1, 0.4, 0.6); Add(0, 0, 0.5, 0.5); Add(0, 1, 0.6, 0.6);   // effect 0.1
        Add(1, -1, 0.1, 0.1); Add(1, 0, 0.5, 0.5); Add(1, 1, 0.9, 0.9);   // effect 0.8
        Add(2, -1, 0.2, 0.2); Add(2, 0, 0.5, 0.5); Add(2, 1, 1.0, 1.0);   // effect 0.8 (tie → lower layer)
        var means = SweepSummary.Means(rows);
        Assert.Equal(9, means.Count);
        Assert.Equal(0.5, means.Single(m => m.Layer == 0 && m.Multiplier == -1).MeanPMatch, 12);
        Assert.Equal(1, SweepSummary.BestLayer(rows, "b"));
        Assert.Null(SweepSummary.BestLayer(rows, "other"));
        Assert.StartsWith("behavior,layer,multiplier,mean_p_match,n\nb,0,-1,0.5,2\n", SweepSummary.ToCsv(means));
    }
}

/// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
