using Caa.Model;
using Caa.Model.Llama;
using static TorchSharp.torch;

namespace Caa.Tests.Infrastructure;

/// <summary>Small random-weight Llama models for property tests.</summary>
public static class TinyModels
{
    public static LlamaConfig Config(int layers = 3, int hidden = 32, int heads = 4, int kvHeads = 2, int vocab = 61, bool tied = false) => new()
    {
        HiddenSize = hidden, IntermediateSize = hidden * 2 + 6, NumHiddenLayers = layers, NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads, VocabSize = vocab, TieWordEmbeddings = tied, RmsNormEps = 1e-5, MaxPositionEmbeddings = 256,
    };

    public static LlamaForCausalLM Create(long seed = 1, ScalarType dtype = ScalarType.Float32, LlamaConfig? config = null)
    {
        var m = LlamaForCausalLM.Create(config ?? Config(), dtype);
        m.InitializeWeights(seed);
        // Larger-than-HF init so that attention patterns are far from uniform and bugs show up in the numbers.
        using var _ = no_grad();
        foreach (var (name, p) in m.named_parameters())
            if (!name.EndsWith("norm.weight")) p.mul_(5.0);
            else { using var r = rand(p.shape, generator: new TorchSharp.torch.Generator((ulong)seed + 7)); p.copy_(r + 0.5); }
        return m;
    }

    public static long[] RandomIds(int length, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (long)rng.Next(3, vocab)).ToArray();
    }

    public static double MaxAbsDiff(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
}
