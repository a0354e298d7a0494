using System.CommandLine;
using System.Text.Json;
using Caa.Cli.Commands;
using Caa.Interpret.Datasets;

namespace Caa.Tests.Datasets;

public class BehaviorTests
{
    [Fact]
    public void Registry_has_the_papers_seven_behaviors()
    {
        Assert.Equal(["coordinate-other-ais", "corrigible-neutral-HHH", "hallucination", "myopic-reward", "survival-instinct", "sycophancy", "refusal"],
            Behaviors.Ids);
        Assert.Equal("Corrigibility", Behaviors.Get("corrigible-neutral-HHH").DisplayName);
        Assert.Equal(4, Behaviors.All.Count(b => b.HasAnthropicRawSource));
        Assert.Null(Behaviors.Get("sycophancy").RawSourceFile);
        Assert.Equal("https://github.com/anthropics/evals/blob/main/advanced-ai-risk/human_generated_evals/myopic-reward.jsonl",
            Behaviors.MyopicReward.RawSourceUrl);
        Assert.Equal("https://github.com/nrimsky/CAA/blob/main/datasets/test/refusal/test_dataset_open_ended.json",
            Behaviors.Refusal.TestOpenEndedUrl);
        Assert.All(Behaviors.All, b => Assert.EndsWith($"/datasets/generate/{b.Id}/generate_dataset.json", b.GenerateUrl));
    }

    [Fact]
    public void Unknown_behavior_lists_the_known_ids()
    {
        var e = Assert.Throws<ArgumentException>(() => Behaviors.Get("survival"));
        Assert.Contains("'survival'", e.Message);
        foreach (var id in Behaviors.Ids) Assert.Contains(id, e.Message);
    }
}

public class DatasetCliTests
{
    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = DatasetCommands.Create().Parse(args).Invoke(new InvocationConfiguration { Output = TextWriter.Synchronized(o), Error = TextWriter.Synchronized(e) });
        return (code, o.ToString(), e.ToString());
    }

    static string RawJsonl(TempDir t, int n) => t.File("survival-instinct.jsonl",
        string.Join("\n", DatasetBuilderTests.RawItems(n).Select(i => JsonSerializer.Serialize(i))) + "\n");

    [Fact]
    public void Build_writes_the_layout_report_and_manifest()
    {
        using var t = new TempDir();
        RawJsonl(t, 30);
        var outDir = Path.Combine(t.Path, "out");
        var (code, stdout, stderr) = Run("build", "--raw", t.Path, "--behavior", "survival-instinct", "--seed", "5", "--test-size", "4", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("kept          30", stdout);
        Assert.Contains("test (A/B)    4", stdout);
        var files = DatasetFiles.For(outDir, "survival-instinct");
        Assert.All(files.All, f => Assert.True(File.Exists(f), f));

        using var m = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")));
        var root = m.RootElement.GetProperty("builds").GetProperty("survival-instinct");
        Assert.Equal(ContentHash.OfFile(Path.Combine(t.Path, "survival-instinct.jsonl")), root.GetProperty("inputs")[0].GetProperty("sha256").GetString());
        Assert.Equal(5, root.GetProperty("options").GetProperty("seed").GetInt64());
        Assert.Equal(26, root.GetProperty("counts").GetProperty("generate").GetInt32());
        Assert.Equal(ContentHash.OfFile(files.TestAb),
            root.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("path").GetString() == "test/survival-instinct/test_dataset_ab.json").GetProperty("sha256").GetString());
        Assert.True(root.GetProperty("elapsedSeconds").GetDouble() >= 0);

        // A second behavior into the same folder keeps the first one's manifest entry.
        File.Copy(Path.Combine(t.Path, "survival-instinct.jsonl"), Path.Combine(t.Path, "myopic-reward.jsonl"));
        Assert.Equal(0, Run("build", "--raw", t.Path, "--behavior", "myopic-reward", "--test-size", "4", "--out", outDir).Code);
        using (var m2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json"))))
            Assert.Equal(["myopic-reward", "survival-instinct"], m2.RootElement.GetProperty("builds").EnumerateObject().Select(p => p.Name));

        var (vcode, vout, _) = Run(["validate", .. files.All]);
        Assert.Equal(0, vcode);
        Assert.Contains("ok (OpenEnded)", vout);
    }

    [Fact]
    public void Build_errors_go_to_stderr_with_non_zero_exit()
    {
        using var t = new TempDir();
        var raw = RawJsonl(t, 30);
        var (code, _, err) = Run("build", "--raw", raw, "--behavior", "survival", "--out", Path.Combine(t.Path, "o"));
        Assert.NotEqual(0, code);
        Assert.Contains("Unknown behavior 'survival'", err);

        File.AppendAllText(raw, "{broken\n");
        (code, _, err) = Run("build", "--raw", raw, "--behavior", "survival-instinct", "--test-size", "4", "--out", Path.Combine(t.Path, "o"));
        Assert.NotEqual(0, code);
        Assert.Contains("item 30: malformed JSON", err);
        Assert.False(Directory.Exists(Path.Combine(t.Path, "o")));

        (code, _, _) = Run("build", "--behavior", "survival-instinct", "--out", "x");
        Assert.NotEqual(0, code); // --raw is required
    }

    [Fact]
    public void Validate_prints_problems_and_fails()
    {
        using var t = new TempDir();
        var bad = t.File("bad.json", """[{"question": "Q\n\nChoices:\n (A) a\n (B) b\n (C) c", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}]""");
        var good = t.File("good.json", """[{"question": "Q\n\nChoices:\n (A) a\n (B) b", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}]""");
        var (code, stdout, stderr) = Run("validate", good, bad);
        Assert.Equal(1, code);
        Assert.Contains($"{bad}: item 0: question offers 3 choices", stderr);
        Assert.Contains($"{good}: ok (AB)", stdout);
        Assert.Equal(0, Run("validate", good).Code);
        Assert.NotEqual(0, Run("validate", Path.Combine(t.Path, "absent.json")).Code);
    }
}
