using System.Text.Json;
using Caa.Cli;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Cli;

public class ModelCommandTests
{
    const string Hf = "reference/stories260K/hf";

    static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        var code = CaaCommand.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [SharedFact(Hf)]
    public void LogitsPrintsJsonMatchingRunC()
    {
        using var reference = JsonDocument.Parse(File.ReadAllText(Shared.Require("reference/stories260K/run_c_logits.json")));
        var ids = reference.RootElement.GetProperty("ids").EnumerateArray().Take(6).Select(x => x.GetInt32()).ToArray();
        var (code, stdout, stderr) = Run("logits", "--model", Shared.Require(Hf), "--ids", string.Join(",", ids), "--positions", "0,5");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(ids, doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        var logits = doc.RootElement.GetProperty("logits");
        Assert.Equal(["0", "5"], logits.EnumerateObject().Select(p => p.Name));
        foreach (var pos in new[] { 0, 5 })
        {
            var got = logits.GetProperty(pos.ToString()).EnumerateArray().Select(x => x.GetSingle()).ToArray();
            var want = reference.RootElement.GetProperty("logits")[pos].EnumerateArray().Select(x => x.GetSingle()).ToArray();
            Assert.Equal(512, got.Length);
            Assert.True(got.Zip(want).Max(p => Math.Abs(p.First - p.Second)) <= 5e-4);
        }
    }

    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void TokenizeShowsChatIdsPiecesAndSteeringStart()
    {
        var (code, stdout, stderr) = Run("tokenize", "--model", Shared.Require("tokenizers/llama2"), "--text", "Hello there", "--chat");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("1,518,25580,29962,15043,727,518,29914,25580,29962", lines[0]);
        Assert.Contains("\"▁Hello\"", stdout);
        Assert.Contains("instruction end (steering starts) at position 9", stdout);
    }

    [SharedFact(Hf)]
    public void ErrorsGoToStderrWithNonZeroExit()
    {
        var (code, stdout, stderr) = Run("logits", "--model", Shared.Require(Hf), "--ids", "1,600");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("token id 600 is outside the vocabulary", stderr);
        (code, _, stderr) = Run("logits", "--model", "/definitely/not/here", "--ids", "1");
        Assert.Equal(1, code);
        Assert.Contains("folder not found", stderr);
        (code, _, stderr) = Run("logits", "--model", Shared.Require(Hf), "--ids", "1,x");
        Assert.Equal(1, code);
        Assert.Contains("comma-separated integers", stderr);
        (code, _, stderr) = Run("logits", "--model", Shared.Require(Hf), "--ids", "1", "--dtype", "fp8");
        Assert.Equal(1, code);
        Assert.Contains("unknown dtype 'fp8'", stderr);
    }

    [SharedFact("tokenizers/llama2/tokenizer.model")]
    public void GenerateStreamsTheGreedyContinuationOfTheChatPrompt()
    {
        using var dir = new Caa.Tests.Checkpoints.TempDir();
        var model = TinyModels.Create(seed: 8, config: TinyModels.Config(vocab: 32000));
        model.SavePretrained(dir.Path);
        File.Copy(Shared.Require("tokenizers/llama2/tokenizer.model"), dir.File("tokenizer.model"));
        var tok = Caa.Model.Tokenization.Llama2Tokenizer.Load(dir.Path);
        var prompt = Caa.Model.Tokenization.Llama2Chat.Encode(tok, "Hi");
        var expected = tok.Decode(Caa.Model.Generation.Generate(model, [prompt], new Caa.Model.GenerationOptions { MaxNewTokens = 8 })[0]);
        var (code, stdout, stderr) = Run("generate", "--model", dir.Path, "--prompt", "Hi", "--chat", "--max-new-tokens", "8");
        Assert.True(code == 0, stderr);
        Assert.Equal(expected, stdout.TrimEnd('\n'));
        (code, _, stderr) = Run("generate", "--model", Shared.Require(Hf), "--prompt", "Once");
        Assert.Equal(1, code);
        Assert.Contains("tokenizer.model", stderr); // stories260K in shared/ comes without its tokenizer
    }
}
