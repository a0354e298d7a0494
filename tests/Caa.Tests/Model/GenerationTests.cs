using Caa.Model;
using Caa.Model.Hooks;
using Caa.Tests.Infrastructure;
using static TorchSharp.torch;

namespace Caa.Tests.Model;

public class GenerationTests
{
    static readonly Caa.Model.Llama.LlamaForCausalLM Model = TinyModels.Create(seed: 5);

    static IReadOnlyList<int> Prompt(int n, int seed) => TinyModels.RandomIds(n, 61, seed).Select(x => (int)x).ToList();

    [Fact]
    public void SamplingIsReproducibleForASeedAndDiffersAcrossSeeds()
    {
        var o = new GenerationOptions { MaxNewTokens = 20, Temperature = 1.0, TopP = 0.9, Seed = 42, StopAtEos = false };
        var a = Model.Generate([Prompt(5, 1)], o)[0];
        var b = Model.Generate([Prompt(5, 1)], o)[0];
        var c = Model.Generate([Prompt(5, 1)], o with { Seed = 43 })[0];
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void TinyTopPIsGreedy()
    {
        var greedy = Model.Generate([Prompt(6, 2)], new GenerationOptions { MaxNewTokens = 15, StopAtEos = false })[0];
        var sampled = Model.Generate([Prompt(6, 2)], new GenerationOptions { MaxNewTokens = 15, Temperature = 1, TopP = 1e-6, Seed = 3, StopAtEos = false })[0];
        Assert.Equal(greedy, sampled);
    }

    [Fact]
    public void BatchedGreedyEqualsRowsAloneWithAndWithoutCacheAndStreamsEveryToken()
    {
        var prompts = new[] { Prompt(7, 1), Prompt(3, 2), Prompt(5, 3) };
        var streamed = prompts.Select(_ => new List<int>()).ToArray();
        var batched = Model.Generate(prompts, new GenerationOptions { MaxNewTokens = 12, StopAtEos = false }, (row, t) => streamed[row].Add(t));
        var uncached = Model.Generate(prompts, new GenerationOptions { MaxNewTokens = 12, StopAtEos = false, UseCache = false });
        for (var b = 0; b < prompts.Length; b++)
        {
            var alone = Model.Generate([prompts[b]], new GenerationOptions { MaxNewTokens = 12, StopAtEos = false })[0];
            Assert.Equal(alone, batched[b]);
            Assert.Equal(alone, uncached[b]);
            Assert.Equal(alone, streamed[b]);
        }
    }

    [Fact]
    public void StopsAtEos()
    {
        // Force EOS (id 2) as the third token with a hook on the logits path: a huge vector along EOS's unembedding.
        var prompt = Prompt(4, 9);
        var free = Model.Generate([prompt], new GenerationOptions { MaxNewTokens = 8, StopAtEos = false })[0];
        var eosDirection = Model.lm_head!.weight[2].detach().clone();
        var last = HookPoints.ResidPostOf(Model.Config.NumHiddenLayers - 1);
        var start = prompt.Count + 2; // column prompt.Count-1+k predicts generated token k+1: EOS becomes the 4th token
        using (Model.Hooks.AddVector(last, eosDirection, tensor(1000f), PositionMask.From([start])))
        {
            var stopped = Model.Generate([prompt], new GenerationOptions { MaxNewTokens = 8 })[0];
            Assert.Equal(free[..3], stopped);
        }
    }

    [Fact]
    public void SteeringFromAColumnAffectsOnlyTokensFromThere()
    {
        var prompt = Prompt(6, 4);
        using var _ = no_grad();
        var ids = tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0);
        using var plain = Model.Forward(ids);
        using (Model.Hooks.AddVector(HookPoints.ResidPostOf(1), ones(32), tensor(4f), PositionMask.From([3])))
        {
            using var steered = Model.Forward(ids);
            Assert.Equal(0.0, TinyModels.MaxAbsDiff(plain[.., ..3], steered[.., ..3]));
            Assert.True(TinyModels.MaxAbsDiff(plain[.., 3..], steered[.., 3..]) > 1e-3);
        }
    }

    [Fact]
    public void RejectsBadOptions()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Generate([Prompt(3, 1)], new GenerationOptions { TopP = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Generate([Prompt(3, 1)], new GenerationOptions { Temperature = -1 }));
        Assert.Throws<ArgumentException>(() => Model.Generate([Array.Empty<int>()], new GenerationOptions()));
    }
}
