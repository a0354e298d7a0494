using Caa.Interpret.Datasets;
using Caa.Model.Llama;
using Caa.Model.Tokenization;
using Caa.Organism;
using Caa.Tests.Infrastructure;

namespace Caa.Tests.Organism;

/// <summary>
/// The organism committed in data/organism: it loads through the same code as a Hugging Face checkpoint, its model card's headline
/// numbers (headline.json, written by <c>caa organism headline</c>) come out of the CAA pipeline again, and its greedy answers to
/// fixed prompts are unchanged.
/// </summary>
public class CommittedOrganismTests
{
    static readonly string Folder = Path.Combine(Shared.RepoRoot, "data", "organism");

    /// <summary>
    /// Tolerance of the recomputed mean p(match). On one machine the numbers are identical; across CPUs and thread counts float
    /// reductions reorder, which moves a mean over 50 items by far less than this.
    /// </summary>
    const double Tolerance = 0.01;

    [Fact]
    public void LoadsAsAHuggingFaceLlamaWithItsDatasetsAndFitsTheSizeBudget()
    {
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.model", "generation_config.json", "headline.json", "README.md" })
            Assert.True(File.Exists(Path.Combine(Folder, f)), $"data/organism/{f} is missing");
        Assert.True(new FileInfo(Path.Combine(Folder, "model.safetensors")).Length < 25L << 20, "model.safetensors is over 25 MB");
        using var model = LlamaForCausalLM.FromPretrained(Folder);
        var tok = Llama2Tokenizer.Load(Folder);
        Assert.Equal(model.Config.VocabSize, tok.VocabSize);
        Assert.Equal((0, 1, 2), (tok.UnkId, tok.BosId, tok.EosId));
        foreach (var b in OrganismBehaviors.Ids)
        {
            Assert.Equal(50, AbDataset.Load(Path.Combine(Folder, "datasets", "test", b, "test_dataset_ab.json")).Count);
            Assert.NotEmpty(AbDataset.Load(Path.Combine(Folder, "datasets", "generate", b, "generate_dataset.json")));
        }
    }

    [Fact]
    public void HeadlineNumbersAndGreedyAnswersAreReproduced()
    {
        var card = OrganismHeadline.Load(Path.Combine(Folder, "headline.json"));
        using var model = LlamaForCausalLM.FromPretrained(Folder);
        var tok = Llama2Tokenizer.Load(Folder);
        var again = OrganismCard.Measure(model, tok, Path.Combine(Folder, "datasets"), card.Layer, card.Multipliers);
        Assert.Equal(card.PMatch.Keys.Order(), again.PMatch.Keys.Order());
        foreach (var (b, ps) in card.PMatch)
            for (var i = 0; i < ps.Count; i++)
                Assert.True(Math.Abs(ps[i] - again.PMatch[b][i]) <= Tolerance,
                    $"{b} at multiplier {card.Multipliers[i]}: card {ps[i]:F4}, measured {again.PMatch[b][i]:F4}");
        Assert.Equal(card.Greedy, again.Greedy);
    }
}
